/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet parsing: Ethernet, then IPv4, then the L4 fields policy and flows
 * use (TCP/UDP/SCTP ports, ICMP type and code). Fills struct flow; reads
 * nothing it does not report.
 *
 * What each layer rejects (fail closed: whatever we cannot parse is dropped
 * with a reason, never passed undecided):
 *   Ethernet shorter than 14 bytes              -> SLUICE_DROP_INVALID_L2
 *   ARP                                         -> PARSE_PASS_ARP
 *   any other ethertype, IPv6 and VLAN included -> SLUICE_DROP_UNSUPPORTED_L3
 *   IPv4 version != 4, ihl < 5, header or options beyond the packet, tot_len
 *     shorter than the header or longer than the packet -> SLUICE_DROP_INVALID_IP
 *   TCP/UDP/SCTP/ICMP fixed header not wholly inside both the packet and
 *     tot_len                                   -> SLUICE_DROP_INVALID_L4
 *
 * Fragments: only the first fragment (offset 0) carries the L4 header, so it
 * is parsed like any packet, and must hold the whole fixed L4 header (a
 * "tiny fragment" that splits it, RFC 1858, is INVALID_L4). Later fragments
 * (offset != 0) start in the middle of the payload: their ports are reported
 * as 0 with SLUICE_EVENT_F_LATER_FRAG, and they are decided on identity alone,
 * which is exact while policy is keyed by identity only. Port-aware policy
 * will need the first fragment's ports remembered per datagram (a map keyed
 * by saddr, daddr, id, protocol) before it can judge later fragments.
 *
 * Other IP protocols (GRE, ESP, ...) have no ports we know: ports 0, decided
 * on identity.
 */
#ifndef SLUICE_LIB_PARSE_H
#define SLUICE_LIB_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "common.h"
#include "flow.h"

/* parse_packet() result for frames that pass without a decision. */
#define PARSE_PASS_ARP 1

/* IPv4 frag_off bits, host order (the kernel keeps these out of UAPI). */
#define IPV4_FRAG_MF 0x2000
#define IPV4_FRAG_OFFSET 0x1fff

/* The SCTP common header (RFC 9260 §3.1); UAPI has no struct for it. */
struct sctp_common_hdr {
	__be16 source;
	__be16 dest;
	__be32 vtag;
	__le32 checksum;
};

/*
 * The ICMP header every message has (RFC 792).
 * Workaround: declared here instead of using struct icmphdr because
 * linux/icmp.h includes linux/if.h, which pulls libc's sys/socket.h and fails
 * to build for -target bpf (gnu/stubs-32.h).
 */
struct icmp_fixed_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

/* The first 4 bytes of every L4 header we parse. */
struct l4_head {
	union {
		struct {
			__be16 sport;
			__be16 dport;
		} ports; /* TCP, UDP, SCTP */
		struct {
			__u8 type;
			__u8 code;
		} icmp;
	};
};

/*
 * Direct access to len bytes at off, pulling them into the linear part of the
 * skb when they are in paged data (headers usually are linear; a pull only
 * happens when they are not, because it may copy the packet head).
 * Returns: a packet pointer with len bytes readable, or NULL when the packet
 * is shorter than off + len or the pull failed. A pull invalidates every
 * packet pointer obtained earlier: callers copy what they need out of a
 * header before asking for the next one.
 */
static __always_inline void *parse_header(struct __sk_buff *ctx, __u32 off, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	void *hdr = data + off;

	if (hdr + len <= data_end)
		return hdr;
	if (off + len > ctx->len || bpf_skb_pull_data(ctx, off + len) < 0)
		return NULL;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	hdr = data + off;
	if (hdr + len > data_end)
		return NULL;
	return hdr;
}

/*
 * Returns: the length of the fixed header of protocol the parser insists on,
 * 0 for protocols whose payload it does not read.
 */
static __always_inline __u32 parse_l4_min_len(__u8 protocol)
{
	switch (protocol) {
	case IPPROTO_TCP:
		return sizeof(struct tcphdr);
	case IPPROTO_UDP:
		return sizeof(struct udphdr);
	case IPPROTO_SCTP:
		return sizeof(struct sctp_common_hdr);
	case IPPROTO_ICMP:
		return sizeof(struct icmp_fixed_hdr);
	default:
		return 0;
	}
}

/*
 * Reads the L4 fields at off. l4_len is the L4 length according to the IPv4
 * header (tot_len - ihl * 4): padding after tot_len is not L4 data.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_INVALID_L4 when the fixed header is
 * truncated.
 */
static __always_inline int parse_l4(struct __sk_buff *ctx, __u32 off, __u32 l4_len,
				    struct flow *f)
{
	__u32 need = parse_l4_min_len(f->protocol);
	const struct l4_head *l4;

	BUILD_BUG_ON(sizeof(struct l4_head) != 4);
	if (!need)
		return CTX_ACT_OK;
	if (l4_len < need || off + need > ctx->len)
		return -SLUICE_DROP_INVALID_L4;
	l4 = parse_header(ctx, off, sizeof(*l4));
	if (!l4)
		return -SLUICE_DROP_INVALID_L4;
	if (f->protocol == IPPROTO_ICMP) {
		/* sluice_event: for ICMP the port fields carry type and code. */
		f->sport = bpf_htons(l4->icmp.type);
		f->dport = bpf_htons(l4->icmp.code);
	} else {
		f->sport = l4->ports.sport;
		f->dport = l4->ports.dport;
	}
	return CTX_ACT_OK;
}

/*
 * Returns: CTX_ACT_OK with f's tuple and flags filled, or a -SLUICE_DROP_*
 * reason (see the table at the top of this file).
 */
static __always_inline int parse_ipv4(struct __sk_buff *ctx, struct flow *f)
{
	const struct iphdr *ip = parse_header(ctx, ETH_HLEN, sizeof(*ip));
	__u32 hdr_len, tot_len, frag;

	if (!ip)
		return -SLUICE_DROP_INVALID_IP;
	if (ip->version != 4 || ip->ihl < 5)
		return -SLUICE_DROP_INVALID_IP;
	hdr_len = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	frag = bpf_ntohs(ip->frag_off);
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->protocol = ip->protocol;
	/* ip is not used below this line: parse_l4 may pull and move the data. */

	/* Options are not read, only required to be present: L4 starts after them. */
	if (ETH_HLEN + hdr_len > ctx->len)
		return -SLUICE_DROP_INVALID_IP;
	if (hdr_len > sizeof(struct iphdr))
		f->flags |= SLUICE_EVENT_F_IP_OPTIONS;

	/*
	 * BIG TCP (IPv4 GSO packets over 64 KiB) carries tot_len 0 and lets
	 * skb->len speak for the length; anything else needs a sane tot_len.
	 */
	if (tot_len == 0 && ctx->gso_size)
		tot_len = ctx->len - ETH_HLEN;
	if (tot_len < hdr_len || tot_len > ctx->len - ETH_HLEN)
		return -SLUICE_DROP_INVALID_IP;

	if (frag & (IPV4_FRAG_MF | IPV4_FRAG_OFFSET))
		f->flags |= SLUICE_EVENT_F_FRAGMENT;
	if (frag & IPV4_FRAG_OFFSET) {
		/* Not the first fragment: no L4 header here (see the top of this file). */
		f->flags |= SLUICE_EVENT_F_LATER_FRAG;
		return CTX_ACT_OK;
	}
	return parse_l4(ctx, ETH_HLEN + hdr_len, tot_len - hdr_len, f);
}

/*
 * Returns: CTX_ACT_OK for IPv4 with f filled; PARSE_PASS_ARP for ARP (passes
 * without a decision: address resolution must work before any policy can);
 * a -SLUICE_DROP_* reason otherwise.
 */
static __always_inline int parse_packet(struct __sk_buff *ctx, struct flow *f)
{
	const struct ethhdr *eth = parse_header(ctx, 0, sizeof(*eth));
	__be16 proto;

	if (!eth)
		return -SLUICE_DROP_INVALID_L2;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(ctx, f);
	if (proto == bpf_htons(ETH_P_ARP))
		return PARSE_PASS_ARP;
	/* IPv6 is designed in but not enforced yet: fail closed until it is. */
	return -SLUICE_DROP_UNSUPPORTED_L3;
}

#endif /* SLUICE_LIB_PARSE_H */
