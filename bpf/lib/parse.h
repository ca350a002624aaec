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
 * (offset != 0) start in the middle of the payload: parsing leaves their
 * ports 0 and flags them SLUICE_EVENT_F_LATER_FRAG, and frag.h then gives
 * them the ports of their datagram's first fragment, remembered (by saddr,
 * daddr, IP id, protocol) when that fragment passed; a later fragment whose
 * first fragment was not seen is dropped (FRAG_UNKNOWN), since port-aware
 * policy cannot judge it. The IP id is recorded in struct flow for that.
 *
 * TCP: the flags byte is read too (conntrack follows SYN, FIN and RST).
 * ICMP: type and code go where the ports would be (as events report them)
 * and the echo identifier to icmp_id (conntrack's port for echo). The packet
 * an ICMP error quotes is parsed on demand (parse_icmp_quote), only when
 * conntrack asks whether the error is about one of its connections.
 * Other IP protocols (GRE, ESP, ...) have no ports we know: ports 0, matched
 * by rules without ports only.
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
	/* "Rest of header": identifier and sequence number for echo messages. */
	__be16 echo_id;
	__be16 echo_seq;
};

/* The first 4 bytes of the UDP and SCTP headers. */
struct l4_ports {
	__be16 sport;
	__be16 dport;
};

/* The TCP header up to and including its flags byte. */
struct tcp_head {
	__be16 sport;
	__be16 dport;
	__u8 seq_ack[8]; /* sequence and acknowledgment numbers, not read */
	__u8 doff_res;
	__u8 flags; /* TCP_HDR_* */
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

	BUILD_BUG_ON(sizeof(struct l4_ports) != 4);
	BUILD_BUG_ON(sizeof(struct tcp_head) != 14);
	if (!need)
		return CTX_ACT_OK;
	if (l4_len < need || off + need > ctx->len)
		return -SLUICE_DROP_INVALID_L4;
	/* One fixed-size read per protocol, each within the `need` checked above. */
	if (f->protocol == IPPROTO_TCP) {
		const struct tcp_head *tcp = parse_header(ctx, off, sizeof(*tcp));

		if (!tcp)
			return -SLUICE_DROP_INVALID_L4;
		f->sport = tcp->sport;
		f->dport = tcp->dport;
		f->tcp_flags = tcp->flags;
	} else if (f->protocol == IPPROTO_ICMP) {
		const struct icmp_fixed_hdr *icmp = parse_header(ctx, off, sizeof(*icmp));

		if (!icmp)
			return -SLUICE_DROP_INVALID_L4;
		/* sluice_event: for ICMP the port fields carry type and code. */
		f->sport = bpf_htons(icmp->type);
		f->dport = bpf_htons(icmp->code);
		/* Echo request and reply: identifier, then sequence number (RFC 792). */
		if (icmp->type == ICMP_ECHO_REQUEST || icmp->type == ICMP_ECHO_REPLY)
			f->icmp_id = icmp->echo_id;
	} else {
		const struct l4_ports *l4 = parse_header(ctx, off, sizeof(*l4));

		if (!l4)
			return -SLUICE_DROP_INVALID_L4;
		f->sport = l4->sport;
		f->dport = l4->dport;
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
	int ret;

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
	f->ip_id = ip->id;
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
		/* Not the first fragment: no L4 header here; frag.h fills the ports. */
		f->flags |= SLUICE_EVENT_F_LATER_FRAG;
		return CTX_ACT_OK;
	}
	ret = parse_l4(ctx, ETH_HLEN + hdr_len, tot_len - hdr_len, f);
	if (ret == CTX_ACT_OK)
		f->l4_off = ETH_HLEN + hdr_len;
	return ret;
}

/*
 * The packet an ICMP error f quotes (RFC 792: its IPv4 header and the first
 * 8 bytes of its payload), as a flow of its own: addresses, protocol, ports
 * (or ICMP type, code and echo identifier), and the direction it travelled,
 * which is the opposite of the error's: a pod's packet leaving it (EGRESS)
 * is answered by an error entering it (INGRESS), and the other way round.
 * Returns: 0 with *q filled, -1 when the quote is short, not IPv4, or a later
 * fragment (no ports) — then the error is simply not related to anything.
 */
static __always_inline int parse_icmp_quote(struct __sk_buff *ctx, const struct flow *f, struct flow *q)
{
	/* l4_off is at most ETH_HLEN + 60; the mask tells the verifier so. */
	__u32 off = (f->l4_off & 0xff) + sizeof(struct icmp_fixed_hdr);
	const struct iphdr *ip = parse_header(ctx, off, sizeof(*ip));
	const struct icmp_fixed_hdr *l4;
	__u32 hdr_len;

	if (!ip || ip->version != 4 || ip->ihl < 5 || (bpf_ntohs(ip->frag_off) & IPV4_FRAG_OFFSET))
		return -1;
	flow_init(q, f->direction == SLUICE_DIR_EGRESS ? SLUICE_DIR_INGRESS : SLUICE_DIR_EGRESS);
	hdr_len = ip->ihl * 4;
	q->saddr = ip->saddr;
	q->daddr = ip->daddr;
	q->protocol = ip->protocol;
	/* ip is not used below this line: the next read may pull and move the data. */
	/* Eight bytes whatever the protocol: ports, or the ICMP type, code and identifier. */
	l4 = parse_header(ctx, off + hdr_len, sizeof(*l4));
	if (!l4)
		return -1;
	if (q->protocol == IPPROTO_ICMP) {
		q->sport = bpf_htons(l4->type);
		q->dport = bpf_htons(l4->code);
		q->icmp_id = l4->echo_id;
	} else if (flow_has_ports(q->protocol)) {
		const struct l4_ports *ports = (const void *)l4;

		q->sport = ports->sport;
		q->dport = ports->dport;
	}
	return 0;
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
