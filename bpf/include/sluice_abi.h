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
	SLUICE_DROP_POLICY_DENIED = 1,   /* isolated direction, no ALLOW entry matched */
	SLUICE_DROP_INVALID_L2 = 2,      /* ethernet header truncated */
	SLUICE_DROP_INVALID_IP = 3,      /* IPv4 header truncated or malformed */
	SLUICE_DROP_INVALID_L4 = 4,      /* TCP/UDP/ICMP header truncated */
	SLUICE_DROP_UNSUPPORTED_L3 = 5,  /* neither IPv4 nor ARP (IPv6 comes later) */
	SLUICE_DROP_SPOOFED_SOURCE = 6,  /* from-pod packet whose source is not the pod */
	SLUICE_DROP_ENDPOINT_UNKNOWN = 7, /* no sl_endpoints_v1 entry for the program's endpoint */
	SLUICE_DROP_CT_INVALID = 8,      /* TCP flags no stack sends (SYN+FIN, none, ...) */
	SLUICE_DROP_FRAG_UNKNOWN = 9,    /* later fragment whose first fragment was not seen */
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
	SLUICE_EVENT_F_LATER_FRAG = 2,  /* not the first fragment: ports are the first's (sl_frag_v1) */
	SLUICE_EVENT_F_IP_OPTIONS = 4,  /* IPv4 header longer than 20 bytes */
	/* Conntrack's view of the packet (bpf/lib/conntrack.h); one of NEW, ESTABLISHED, REPLY, RELATED. */
	SLUICE_EVENT_F_CT_NEW = 8,          /* no tracked connection: policy decided the packet */
	SLUICE_EVENT_F_CT_ESTABLISHED = 16, /* a tracked connection, in its original direction */
	SLUICE_EVENT_F_CT_REPLY = 32,       /* a tracked connection, in the reply direction */
	SLUICE_EVENT_F_CT_RECHECKED = 64,   /* the endpoint's policy changed: re-checked */
	SLUICE_EVENT_F_CT_RELATED = 128,    /* an ICMP error about a tracked connection */
};

/* Bits of sluice_global_config.flags. */
enum sluice_config_flags {
	SLUICE_CFG_NONE = 0,
	SLUICE_CFG_TRACE_ALLOWED = 1, /* emit a TRACE event for every allowed packet */
	SLUICE_CFG_TRACE_NEW = 2,     /* ... for every allowed packet policy decided (CT_NEW) */
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
 * The datapath allows on ALLOW and drops on any other action (fail closed: a
 * corrupt or newer entry must not open a hole). The compiler writes ALLOW only.
 */
enum sluice_policy_action {
	SLUICE_POLICY_ALLOW = 1,
	SLUICE_POLICY_DENY = 2,
};

/* Value of sl_policy_v2. */
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

/*
 * conntrack: LRU hash sl_ct_v1, one entry per connection per endpoint
 * (bpf/lib/conntrack.h). The key is the connection as the endpoint sees it,
 * not as one packet carries it: local = the endpoint's side, remote = the
 * peer's, so both directions of a connection find the same entry with one
 * lookup, and the two endpoints of a pod-to-pod connection on one node (the
 * client's egress, the server's ingress) keep separate entries.
 */
struct ct_key {
	__u32 endpoint_id;
	__be32 local_addr;
	__be32 remote_addr;
	__be16 local_port;  /* ICMP echo: the identifier when the endpoint pinged, else 0 */
	__be16 remote_port; /* ICMP echo: the identifier when the peer pinged, else 0 */
	__u8 protocol;
	__u8 pad0;
	__u16 pad1;
};

/* TCP progress of a tracked connection; it only moves forward. */
enum sluice_ct_tcp_state {
	SLUICE_CT_TCP_NONE = 0,        /* not TCP */
	SLUICE_CT_TCP_SYN_SENT = 1,    /* opening SYN seen, no reply yet */
	SLUICE_CT_TCP_ESTABLISHED = 2, /* a reply seen, or picked up mid-stream */
	SLUICE_CT_TCP_FIN_WAIT = 3,    /* one side sent FIN (half-closed) */
	SLUICE_CT_TCP_CLOSED = 4,      /* both sides sent FIN, or either sent RST */
};

/* Bits of ct_entry.flags. */
enum sluice_ct_flags {
	SLUICE_CT_F_NONE = 0,
	SLUICE_CT_F_REPLY_SEEN = 1, /* a packet in the reply direction passed */
	SLUICE_CT_F_FIN_ORIG = 2,   /* FIN from the side that opened the connection */
	SLUICE_CT_F_FIN_REPLY = 4,  /* FIN from the other side */
};

struct ct_entry {
	__u64 expires_ns;      /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) deadline; past it = a miss */
	__u32 policy_revision; /* endpoint_entry.policy_revision when policy last allowed it */
	__u32 rule_id;         /* the rule that allowed the original direction, 0 if none was needed */
	__u8 orig_direction;   /* enum sluice_direction of the packet that opened it */
	__u8 tcp_state;        /* enum sluice_ct_tcp_state */
	__u8 flags;            /* enum sluice_ct_flags */
	__u8 pad0;
	__u32 pad1;
};

/*
 * Connection lifetimes, renewed by every packet of the connection. A 0 in
 * struct ct_config means the default below, so a never-written config map
 * (array elements start zeroed) gives the defaults.
 */
enum sluice_ct_default_ms {
	SLUICE_CT_DEFAULT_TCP_SYN_MS = 60000,            /* SYN_SENT */
	SLUICE_CT_DEFAULT_TCP_ESTABLISHED_MS = 21600000, /* ESTABLISHED: 6 h */
	SLUICE_CT_DEFAULT_TCP_FIN_MS = 120000,           /* FIN_WAIT */
	SLUICE_CT_DEFAULT_TCP_CLOSED_MS = 10000,         /* CLOSED: last ACKs, retransmits */
	SLUICE_CT_DEFAULT_UDP_MS = 60000,                /* UDP, SCTP, other protocols */
	SLUICE_CT_DEFAULT_ICMP_MS = 30000,               /* ICMP echo */
};

/* ct config: array sl_ct_cfg_v1 with one element; lifetimes in milliseconds. */
struct ct_config {
	__u32 tcp_syn_ms;
	__u32 tcp_established_ms;
	__u32 tcp_fin_ms;
	__u32 tcp_closed_ms;
	__u32 udp_ms;
	__u32 icmp_ms;
};

/*
 * fragments: LRU hash sl_frag_v1, one IPv4 datagram -> the L4 fields of its
 * first fragment, written when that fragment passes, read by the later ones
 * (which carry no L4 header). Lives until evicted.
 */
struct frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id; /* IPv4 identification */
	__u8 protocol;
	__u8 pad0;
};

struct frag_entry {
	__be16 sport;   /* as struct sluice_event reports them (ICMP: type, code) */
	__be16 dport;
	__be16 icmp_id; /* ICMP echo identifier, 0 otherwise */
	__u16 pad0;
};

/*
 * counters: per-CPU array sl_counters_v1 of counter_value, indexed by enum
 * sluice_counter: datapath events that are not packets (lost events, conntrack
 * and fragment bookkeeping), so that every drop and every gap stays explainable.
 */
enum sluice_counter {
	SLUICE_COUNTER_EVENTS_LOST = 0,       /* ring buffer full: an event was not emitted */
	SLUICE_COUNTER_CT_CREATED = 1,        /* conntrack entries written for new connections */
	SLUICE_COUNTER_CT_CREATE_FAILED = 2,  /* ... whose write failed (packet passed anyway) */
	SLUICE_COUNTER_CT_RECHECKED = 3,      /* policy re-checked after a revision change */
	SLUICE_COUNTER_CT_REVOKED = 4,        /* ... and no longer allowed: entry deleted */
	SLUICE_COUNTER_FRAG_TRACKED = 5,      /* first fragments remembered */
	SLUICE_COUNTER_FRAG_TRACK_FAILED = 6, /* ... whose write failed */
	SLUICE_COUNTER_MAX = 16,              /* capacity: counters are appended below it */
};

struct counter_value {
	__u64 value;
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

/* One ring-buffer record. A later fragment carries its first fragment's
 * ports, or zeros when that is unknown (FRAG_UNKNOWN); for ICMP src_port
 * holds the type and dst_port the code. */
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
