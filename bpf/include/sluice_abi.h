/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one definition of every layout shared between the datapath and the
 * control plane: map keys and values, the ring-buffer event, drop reasons.
 *
 * TypeScript never re-declares these. scripts/gen-abi.mjs reads the BTF of
 * build/bpf/abi.o (compiled from bpf/abi.c, which references every type
 * below) and writes src/datapath/generated/abi.ts; a test regenerates it and
 * fails on drift.
 *
 * Rules:
 *  - fixed-width types only; fields holding wire-order data use the __be16 /
 *    __be32 typedefs, which the generator encodes big-endian;
 *  - padding is explicit (named pad*) and always zero, so hash keys compare
 *    byte-for-byte;
 *  - a layout change bumps the map's pin name suffix (_v2 ...), never reuses
 *    an old pin with a new layout.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include <linux/types.h>

/* Reserved identities. Allocated identities start at SLUICE_IDENTITY_FIRST. */
enum sluice_identity_reserved {
	SLUICE_IDENTITY_UNKNOWN = 0,
	SLUICE_IDENTITY_HOST = 1,
	SLUICE_IDENTITY_WORLD = 2, /* any address that is not in the ipcache */
	SLUICE_IDENTITY_FIRST = 256,
};

/* Traffic direction, seen from the local endpoint. */
enum sluice_direction {
	SLUICE_DIR_INGRESS = 0, /* towards the pod: tc egress of the host veth */
	SLUICE_DIR_EGRESS = 1,  /* from the pod: tc ingress of the host veth */
	SLUICE_DIR_MAX = 2,
};

/*
 * Why a packet was dropped. 0 means "not dropped" so that one enum serves the
 * metrics index, the event and the flow API. Values are stable: append only.
 */
enum sluice_drop_reason {
	SLUICE_DROP_NONE = 0,
	SLUICE_DROP_POLICY_DENIED = 1,   /* the remote identity is denied */
	SLUICE_DROP_INVALID_L2 = 2,      /* ethernet header truncated */
	SLUICE_DROP_INVALID_IP = 3,      /* IPv4 header truncated or malformed */
	SLUICE_DROP_INVALID_L4 = 4,      /* TCP/UDP/ICMP header truncated */
	SLUICE_DROP_UNSUPPORTED_L3 = 5,  /* neither IPv4 nor ARP (IPv6 comes later) */
	SLUICE_DROP_SPOOFED_SOURCE = 6,  /* from-pod packet whose source is not the pod */
	SLUICE_DROP_REASON_MAX = 64,
};

/* What the datapath did with a packet. */
enum sluice_verdict {
	SLUICE_VERDICT_FORWARDED = 1,
	SLUICE_VERDICT_DROPPED = 2,
};

/* Ring-buffer event types. */
enum sluice_event_type {
	SLUICE_EVENT_DROP = 1,
	SLUICE_EVENT_TRACE = 2, /* an allowed packet, when tracing is on */
};

/* Bits of sluice_event.flags. */
enum sluice_event_flags {
	SLUICE_EVENT_F_FRAGMENT = 1,    /* IPv4 fragment (MF set or offset != 0) */
	SLUICE_EVENT_F_LATER_FRAG = 2,  /* not the first fragment: no L4 ports */
	SLUICE_EVENT_F_IP_OPTIONS = 4,  /* IPv4 header longer than 20 bytes */
};

/* Bits of sluice_global_config.flags. */
enum sluice_config_flags {
	SLUICE_CFG_NONE = 0,
	SLUICE_CFG_TRACE_ALLOWED = 1, /* emit a TRACE event for every allowed packet */
};

/*
 * ipcache: LPM trie, IPv4 address or CIDR -> identity. prefixlen counts the
 * bits of addr that matter (0..32); it must come first for the LPM trie.
 */
struct ipcache_key {
	__u32 prefixlen;
	__be32 addr;
};

struct ipcache_entry {
	__u32 identity;
	__u32 flags; /* reserved, zero */
};

/*
 * policy (first enforcement path): hash, (endpoint, direction, remote
 * identity) -> action. A miss allows: isolation semantics arrive with the
 * NetworkPolicy engine.
 */
struct policy_key {
	__u32 endpoint_id;
	__u32 remote_identity;
	__u8 direction; /* enum sluice_direction */
	__u8 pad0;
	__u16 pad1;
};

enum sluice_policy_action {
	SLUICE_POLICY_ALLOW = 1,
	SLUICE_POLICY_DENY = 2,
};

struct policy_entry {
	__u8 action; /* enum sluice_policy_action */
	__u8 pad0;
	__u16 pad1;
	__u32 rule_id; /* the control plane's handle for "which rule did this" */
};

/*
 * policy_v2 (NetworkPolicy enforcement): LPM trie sl_policy_v2, one trie for
 * all endpoints. Byte order of the fields below is the match order; every
 * entry matches endpoint_id, remote_identity and direction exactly
 * (prefixlen >= SLUICE_POLICY_PREFIX_PEER), then optionally the protocol
 * (>= SLUICE_POLICY_PREFIX_PROTO: a rule with ports, or `protocol` without a
 * port = every port of it), then the first (prefixlen - SLUICE_POLICY_PREFIX_PROTO)
 * bits of dport: a port range is stored as the few prefixes that cover it.
 * A rule without ports stops at SLUICE_POLICY_PREFIX_PEER: all protocols and
 * ports, ICMP included. remote_identity 0 means "any peer" (a rule whose
 * from/to is omitted); the datapath looks up the real identity and then 0.
 * Isolation lives in sl_endpoints_v1: only an isolated direction consults
 * this trie, and there a miss drops (POLICY_DENIED).
 */
struct policy_lpm_key {
	__u32 prefixlen;
	__u32 endpoint_id;
	__u32 remote_identity;
	__u8 direction; /* enum sluice_direction */
	__u8 protocol;  /* IPPROTO_TCP / UDP / SCTP */
	__be16 dport;
};

enum sluice_policy_prefix {
	SLUICE_POLICY_PREFIX_PEER = 72,  /* endpoint_id + remote_identity + direction */
	SLUICE_POLICY_PREFIX_PROTO = 80, /* ... + protocol */
	SLUICE_POLICY_PREFIX_FULL = 96,  /* ... + all 16 bits of dport */
};

/* The value is struct policy_entry (action ALLOW; rule_id names the rule). */

/* Bits of endpoint_entry.flags. */
enum sluice_endpoint_flags {
	SLUICE_EP_F_NONE = 0,
	SLUICE_EP_F_INGRESS_ISOLATED = 1, /* some policy selects it for Ingress */
	SLUICE_EP_F_EGRESS_ISOLATED = 2,  /* some policy selects it for Egress */
};

/*
 * endpoints: hash sl_endpoints_v1, endpoint_id (__u32) -> endpoint_entry.
 * Written before the pod's interface comes up; a packet of an endpoint
 * without an entry is dropped (fail closed).
 */
struct endpoint_entry {
	__u32 flags;           /* enum sluice_endpoint_flags */
	__u32 policy_revision; /* bumped whenever the endpoint's policy changes */
};

/* metrics: per-CPU array indexed by metrics_index(direction, reason). */
struct metrics_value {
	__u64 packets;
	__u64 bytes;
};

#define SLUICE_METRICS_ENTRIES (SLUICE_DIR_MAX * SLUICE_DROP_REASON_MAX)

/* config: array with one element. */
struct global_config {
	__u32 flags; /* enum sluice_config_flags */
	__u32 pad0;
};

/*
 * Per-program constants, set in .rodata before load: one program instance per
 * endpoint, so the verifier sees them as constants and the program knows its
 * endpoint without a per-packet lookup.
 */
struct endpoint_config {
	__u32 endpoint_id;
	__be32 ipv4; /* the pod's address; 0 disables the source check */
};

/* One ring-buffer record. Ports are zero for non-first fragments; for ICMP
 * src_port holds the type and dst_port the code. */
struct sluice_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns() */
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 protocol;
	__u8 event_type;   /* enum sluice_event_type */
	__u8 verdict;      /* enum sluice_verdict */
	__u8 direction;    /* enum sluice_direction */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 endpoint_id;
	__u32 ifindex;
	__u32 pkt_len;
	__u16 drop_reason; /* enum sluice_drop_reason */
	__u16 flags;       /* enum sluice_event_flags */
	__u32 rule_id;     /* policy_entry.rule_id that decided, 0 if none */
	__u32 pad0;
};

#endif /* SLUICE_ABI_H */
