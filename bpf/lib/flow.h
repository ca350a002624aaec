/* SPDX-License-Identifier: Apache-2.0 */
/*
 * struct flow: what the datapath knows about the packet it is deciding. Each
 * pipeline step fills its part (parse.h the tuple and flags, ipcache.h the
 * identities, frag.h the ports of later fragments, policy.h and conntrack.h
 * the rule and the connection flags) and events.h reports it. It lives on the
 * program's stack (36 bytes); nothing in it outlives the packet.
 */
#ifndef SLUICE_LIB_FLOW_H
#define SLUICE_LIB_FLOW_H

#include <linux/in.h>

#include "common.h"

struct flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;        /* 0 when the packet has no ports (see parse.h) */
	__be16 dport;
	__u8 protocol;       /* IPPROTO_*; 0 before the IP header is parsed */
	__u8 direction;      /* enum sluice_direction */
	__u16 flags;         /* enum sluice_event_flags */
	__u32 src_identity;  /* SLUICE_IDENTITY_UNKNOWN until ipcache.h ran */
	__u32 dst_identity;
	__u32 rule_id;       /* policy_entry.rule_id that matched, 0 if none */
	__be16 ip_id;        /* IPv4 identification: which datagram a fragment belongs to */
	__be16 icmp_id;      /* ICMP echo identifier (conntrack's "port"), 0 otherwise */
	__u8 tcp_flags;      /* TCP_HDR_* bits of the header; 0 for later fragments */
	__u8 resolved;       /* the identities are filled (ipcache.h) */
	__u8 pad0;
	__u16 l4_off;        /* where the L4 header starts; 0 when there is none */
};

/* TCP header flag bits (byte 13 of the header). */
#define TCP_HDR_FIN 0x01
#define TCP_HDR_SYN 0x02
#define TCP_HDR_RST 0x04
#define TCP_HDR_PSH 0x08
#define TCP_HDR_ACK 0x10
#define TCP_HDR_URG 0x20

/* ICMP echo types (RFC 792). */
#define ICMP_ECHO_REPLY 0
#define ICMP_DEST_UNREACHABLE 3
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETER_PROBLEM 12

/*
 * Returns: true for the protocols whose destination port policy matches on
 * (NetworkPolicy ports: TCP, UDP, SCTP). Every other protocol, ICMP included,
 * is matched by rules without ports only.
 */
static __always_inline bool flow_has_ports(__u8 protocol)
{
	return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP;
}

/*
 * Returns: true for the ICMP errors that quote the packet they are about
 * (RFC 792: its IP header and first 8 bytes), so conntrack can relate them.
 */
static __always_inline bool flow_is_icmp_error(const struct flow *f)
{
	return f->protocol == IPPROTO_ICMP && f->l4_off &&
	       (f->sport == bpf_htons(ICMP_DEST_UNREACHABLE) || f->sport == bpf_htons(ICMP_TIME_EXCEEDED) ||
		f->sport == bpf_htons(ICMP_PARAMETER_PROBLEM));
}

/* Returns: true for an ICMP echo request or reply (the only ICMP conntrack follows). */
static __always_inline bool flow_is_icmp_echo(const struct flow *f)
{
	return f->protocol == IPPROTO_ICMP &&
	       (f->sport == bpf_htons(ICMP_ECHO_REQUEST) || f->sport == bpf_htons(ICMP_ECHO_REPLY));
}

static __always_inline void flow_init(struct flow *f, enum sluice_direction dir)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->direction = dir;
}

/*
 * Returns: the identity on the far side of the local endpoint: the
 * destination for traffic leaving the pod (EGRESS), the source for traffic
 * entering it (INGRESS).
 */
static __always_inline __u32 flow_remote_identity(const struct flow *f)
{
	return f->direction == SLUICE_DIR_EGRESS ? f->dst_identity : f->src_identity;
}

#endif /* SLUICE_LIB_FLOW_H */
