/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet rewriting for the load balancer (lb.h): address and port
 * translation with their checksums, and the rejects built in place of a
 * packet (a TCP reset, an ICMP port unreachable) that go back to the sender.
 *
 * Checksums are updated incrementally by the kernel's helpers, which know
 * the skb's checksum state: for a packet whose L4 checksum the stack has
 * not finished yet (CHECKSUM_PARTIAL, what a pod's TCP/UDP stack hands its
 * veth), only the pseudo-header part (the addresses) changes; a port change
 * is then left to whoever completes the checksum. A UDP checksum of 0 means
 * "none" and stays 0 (BPF_F_MARK_MANGLED_0).
 *
 * Fragments: a later fragment has no L4 header; only its addresses change
 * (the first fragment's L4 checksum covers the whole datagram and is fixed
 * there). SCTP: its CRC32c covers the ports but not the addresses, and is
 * not recomputed here, so an SCTP port translation fails (NAT_FAILED);
 * address-only translation works.
 */
#ifndef SLUICE_LIB_NAT_H
#define SLUICE_LIB_NAT_H

#include <stddef.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "common.h"
#include "flow.h"
#include "parse.h"

#define NAT_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define NAT_IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define NAT_IP_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))

/* Which end of the packet a translation rewrites. */
enum nat_side {
	NAT_SRC = 0,
	NAT_DST = 1,
};

/* Returns: the offset of the L4 checksum in the header of protocol, 0 when there is none to fix. */
static __always_inline __u32 nat_l4_csum_off(__u8 protocol)
{
	switch (protocol) {
	case IPPROTO_TCP:
		return offsetof(struct tcphdr, check);
	case IPPROTO_UDP:
		return offsetof(struct udphdr, check);
	default:
		return 0;
	}
}

/* One end of a packet, rewritten (nat_rewrite()). */
struct nat_edit {
	__be32 old_addr;
	__be32 new_addr;
	__be16 old_port;
	__be16 new_port;
	__u8 side; /* enum nat_side */
	__u8 pad[3];
};

/*
 * Rewrites one end of the packet f describes from (old_addr, old_port) to
 * (new_addr, new_port). f itself is not changed.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_FAILED (a helper refused, or an
 * SCTP port change).
 *
 * Verifier workaround (as policy_lookup_classes() in policy.h): a global
 * function, verified once rather than at each of its call sites; its
 * pointer arguments may be NULL as far as the verifier knows.
 */
__noinline int nat_rewrite(struct __sk_buff *ctx, const struct flow *f, const struct nat_edit *e)
{
	bool l4;
	__u32 csum_off, l4_off;
	__u64 mangled;

	if (!ctx || !f || !e)
		return -SLUICE_DROP_NAT_FAILED;
	l4 = f->l4_off && !(f->flags & SLUICE_EVENT_F_LATER_FRAG) && flow_has_ports(f->protocol);
	csum_off = nat_l4_csum_off(f->protocol);
	/* l4_off is at most ETH_HLEN + 60; the mask tells the verifier so. */
	l4_off = f->l4_off & 0xff;
	mangled = f->protocol == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	if (e->old_addr != e->new_addr) {
		if (l4 && csum_off &&
		    bpf_l4_csum_replace(ctx, l4_off + csum_off, e->old_addr, e->new_addr,
					BPF_F_PSEUDO_HDR | mangled | sizeof(e->new_addr)))
			return -SLUICE_DROP_NAT_FAILED;
		if (bpf_l3_csum_replace(ctx, NAT_IP_CSUM_OFF, e->old_addr, e->new_addr, sizeof(e->new_addr)))
			return -SLUICE_DROP_NAT_FAILED;
		if (bpf_skb_store_bytes(ctx, e->side == NAT_DST ? NAT_IP_DADDR_OFF : NAT_IP_SADDR_OFF, &e->new_addr,
					sizeof(e->new_addr), 0))
			return -SLUICE_DROP_NAT_FAILED;
	}
	if (l4 && e->old_port != e->new_port) {
		if (f->protocol == IPPROTO_SCTP)
			return -SLUICE_DROP_NAT_FAILED;
		if (csum_off &&
		    bpf_l4_csum_replace(ctx, l4_off + csum_off, e->old_port, e->new_port, mangled | sizeof(e->new_port)))
			return -SLUICE_DROP_NAT_FAILED;
		/* Source port first, destination port second, in TCP, UDP and SCTP alike. */
		if (bpf_skb_store_bytes(ctx, l4_off + (e->side == NAT_DST ? 2 : 0), &e->new_port, sizeof(e->new_port), 0))
			return -SLUICE_DROP_NAT_FAILED;
	}
	return CTX_ACT_OK;
}

/* nat_rewrite() of one end of f's packet. */
static __always_inline int nat_rewrite_end(struct __sk_buff *ctx, const struct flow *f, enum nat_side side,
					   __be32 old_addr, __be32 new_addr, __be16 old_port, __be16 new_port)
{
	struct nat_edit e = {
		.old_addr = old_addr,
		.new_addr = new_addr,
		.old_port = old_port,
		.new_port = new_port,
		.side = side,
	};

	return nat_rewrite(ctx, f, &e);
}

/*
 * Swaps the Ethernet addresses, for a frame sent back where it came from
 * (the pod's MAC becomes the destination).
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_FAILED.
 */
static __always_inline int nat_swap_macs(struct __sk_buff *ctx)
{
	__u8 macs[2 * ETH_ALEN], swapped[2 * ETH_ALEN];
	int i;

	if (bpf_skb_load_bytes(ctx, 0, macs, sizeof(macs)))
		return -SLUICE_DROP_NAT_FAILED;
	for (i = 0; i < ETH_ALEN; i++) {
		swapped[i] = macs[ETH_ALEN + i];
		swapped[ETH_ALEN + i] = macs[i];
	}
	if (bpf_skb_store_bytes(ctx, 0, swapped, sizeof(swapped), 0))
		return -SLUICE_DROP_NAT_FAILED;
	return CTX_ACT_OK;
}

/* The one's complement sum a bpf_csum_diff() returned, folded to 16 bits and inverted. */
static __always_inline __sum16 nat_csum_fold(__s64 sum)
{
	__u32 s = (__u32)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__sum16)~s;
}

/* Returns: the checksum of len bytes at p (len a multiple of 4), seeded with seed. */
static __always_inline __s64 nat_csum(void *p, __u32 len, __s64 seed)
{
	return bpf_csum_diff(NULL, 0, p, len, (__wsum)seed);
}

/* A fresh IPv4 header (no options, DF, TTL 64) of tot_len bytes, its checksum filled. */
static __always_inline void nat_ipv4_header(struct iphdr *ip, __u8 protocol, __be32 saddr, __be32 daddr, __u16 tot_len)
{
	__builtin_memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = bpf_htons(tot_len);
	ip->frag_off = bpf_htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->protocol = protocol;
	ip->saddr = saddr;
	ip->daddr = daddr;
	ip->check = nat_csum_fold(nat_csum(ip, sizeof(*ip), 0));
}

/* The TCP reset answering a segment: the whole reply from the IP header on. */
struct nat_tcp_reset {
	struct iphdr ip;
	struct tcphdr tcp;
};

/* The IPv4 pseudo header of the TCP checksum (RFC 9293 §3.1). */
struct nat_pseudo_hdr {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 protocol;
	__be16 len;
};

/*
 * Turns the TCP segment f describes into the reset that refuses it (RFC
 * 9293 §3.10.7.1): from its destination to its source; seq = its ACK number
 * when it carries one, else seq 0 with RST+ACK acknowledging everything it
 * occupied (SYN and FIN count one each). The packet is cut to the reset's
 * 54 bytes and its Ethernet addresses swapped.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_FAILED.
 */
static __always_inline int nat_build_tcp_reset(struct __sk_buff *ctx, const struct flow *f)
{
	struct nat_pseudo_hdr ph = {};
	struct nat_tcp_reset r = {};
	const struct iphdr *ip;
	const struct tcphdr *in;
	__u32 l4_off = f->l4_off & 0xff;
	__u32 seq, ack_seq, payload, tot_len, hdr_len;
	__u16 flags;
	__s64 sum;

	BUILD_BUG_ON(sizeof(struct nat_tcp_reset) != 40);
	BUILD_BUG_ON(sizeof(struct nat_pseudo_hdr) != 12);
	ip = parse_header(ctx, ETH_HLEN, sizeof(*ip));
	if (!ip)
		return -SLUICE_DROP_NAT_FAILED;
	tot_len = bpf_ntohs(ip->tot_len);
	hdr_len = ip->ihl * 4;
	in = parse_header(ctx, l4_off, sizeof(*in));
	if (!in)
		return -SLUICE_DROP_NAT_FAILED;
	seq = bpf_ntohl(in->seq);
	ack_seq = in->ack_seq;
	payload = tot_len - hdr_len - in->doff * 4;
	flags = ((const __u8 *)in)[13];
	/* No packet pointer is used below this line: the length change moves the data. */

	r.tcp.source = f->dport;
	r.tcp.dest = f->sport;
	r.tcp.doff = 5;
	r.tcp.rst = 1;
	if (flags & TCP_HDR_ACK) {
		r.tcp.seq = ack_seq;
	} else {
		r.tcp.ack = 1;
		r.tcp.ack_seq = bpf_htonl(seq + (payload & 0xffff) + !!(flags & TCP_HDR_SYN) + !!(flags & TCP_HDR_FIN));
	}
	nat_ipv4_header(&r.ip, IPPROTO_TCP, f->daddr, f->saddr, sizeof(r));
	ph.saddr = r.ip.saddr;
	ph.daddr = r.ip.daddr;
	ph.protocol = IPPROTO_TCP;
	ph.len = bpf_htons(sizeof(r.tcp));
	sum = nat_csum(&ph, sizeof(ph), 0);
	sum = nat_csum(&r.tcp, sizeof(r.tcp), sum);
	r.tcp.check = nat_csum_fold(sum);

	if (bpf_skb_change_tail(ctx, ETH_HLEN + sizeof(r), 0))
		return -SLUICE_DROP_NAT_FAILED;
	if (bpf_skb_store_bytes(ctx, ETH_HLEN, &r, sizeof(r), 0))
		return -SLUICE_DROP_NAT_FAILED;
	return nat_swap_macs(ctx);
}

/* An ICMP destination unreachable quoting a packet (RFC 792): the whole reply from the IP header on. */
struct nat_icmp_unreach {
	struct iphdr ip;
	struct icmp_fixed_hdr icmp;
	struct iphdr quote_ip;
	__u8 quote_l4[8];
};

#define NAT_ICMP_PORT_UNREACHABLE 3

/*
 * Turns the packet f describes into the ICMP port unreachable that refuses
 * it, from its destination to its source, quoting its IPv4 header and first
 * 8 bytes of L4 (a header with options is quoted without them, ihl 5 and
 * its checksum redone, so the quote's L4 bytes follow it). The packet
 * becomes the reply's 70 bytes, Ethernet addresses swapped.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_FAILED.
 */
static __always_inline int nat_build_port_unreachable(struct __sk_buff *ctx, const struct flow *f)
{
	struct nat_icmp_unreach r = {};
	const struct iphdr *ip;
	const __u8 *l4;
	__u32 l4_off = f->l4_off & 0xff;
	__u32 len = sizeof(r.icmp) + sizeof(r.quote_ip) + sizeof(r.quote_l4);

	BUILD_BUG_ON(sizeof(struct nat_icmp_unreach) != 56);
	ip = parse_header(ctx, ETH_HLEN, sizeof(*ip));
	if (!ip)
		return -SLUICE_DROP_NAT_FAILED;
	__builtin_memcpy(&r.quote_ip, ip, sizeof(r.quote_ip));
	l4 = parse_header(ctx, l4_off, sizeof(r.quote_l4));
	if (!l4)
		return -SLUICE_DROP_NAT_FAILED;
	__builtin_memcpy(r.quote_l4, l4, sizeof(r.quote_l4));
	/* No packet pointer is used below this line: the length change moves the data. */
	if (r.quote_ip.ihl != 5) {
		r.quote_ip.ihl = 5;
		r.quote_ip.check = 0;
		r.quote_ip.check = nat_csum_fold(nat_csum(&r.quote_ip, sizeof(r.quote_ip), 0));
	}
	r.icmp.type = ICMP_DEST_UNREACHABLE;
	r.icmp.code = NAT_ICMP_PORT_UNREACHABLE;
	r.icmp.checksum = nat_csum_fold(nat_csum(&r.icmp, len, 0));
	nat_ipv4_header(&r.ip, IPPROTO_ICMP, f->daddr, f->saddr, sizeof(r));

	if (bpf_skb_change_tail(ctx, ETH_HLEN + sizeof(r), 0))
		return -SLUICE_DROP_NAT_FAILED;
	if (bpf_skb_store_bytes(ctx, ETH_HLEN, &r, sizeof(r), 0))
		return -SLUICE_DROP_NAT_FAILED;
	return nat_swap_macs(ctx);
}

/*
 * Turns the packet f describes into the reject that answers it: a TCP
 * reset for TCP (a reset itself is not answered), an ICMP port unreachable
 * for the rest; a later fragment or a packet without an L4 header gets
 * none.
 * Returns: true when the packet now is the reject, to be sent back.
 */
static __always_inline bool nat_build_reject(struct __sk_buff *ctx, const struct flow *f)
{
	if (f->flags & SLUICE_EVENT_F_LATER_FRAG || !f->l4_off)
		return false;
	if (f->protocol == IPPROTO_TCP)
		return !(f->tcp_flags & TCP_HDR_RST) && !IS_ERR(nat_build_tcp_reset(ctx, f));
	return !IS_ERR(nat_build_port_unreachable(ctx, f));
}

#endif /* SLUICE_LIB_NAT_H */
