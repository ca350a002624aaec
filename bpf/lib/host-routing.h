/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host routing in the datapath (SLUICE_CFG_BPF_HOST_ROUTING, agent config
 * hostRouting: bpf): a packet the program let through is sent on by the
 * program itself instead of being forwarded by the node's IP stack. Skipped:
 * ip_rcv, the forwarding path's route lookup and netfilter's PREROUTING,
 * FORWARD and POSTROUTING hooks — a few microseconds per packet.
 *
 *  - For a pod of this node (sl_lxc_addr_v1), from from_container (pod to
 *    pod on one node) and from from_fabric (another node's packet): handed
 *    to the pod's host veth. Its to_container (ingress policy) still runs on
 *    tc egress of that veth.
 *  - For a pod of another node (sl_noderoute_v1: the other nodes'
 *    podCIDRs, a mirror of the kernel routes the node-routes owner installs,
 *    with the same device and next hop), from from_container only: sent out
 *    of that device to that next hop.
 *
 * Both use bpf_redirect_neigh(), which fills in the MAC addresses from the
 * neighbour table (resolving the next hop the way the stack would), and
 * decrement the TTL like forwarding does. Everything else goes to the stack
 * untouched: host routing off (the map's default; a node whose pod traffic
 * must cross netfilter, such as kube-proxy's NAT, keeps it off), any other
 * destination (the node itself, the world, Service addresses the stack
 * handles), a TTL about to expire (the stack answers time-exceeded), a
 * packet longer than the route's MTU that is not GSO (the stack fragments or
 * answers fragmentation-needed), and an sl_lxc_addr_v1 entry that sl_lxc_v1
 * does not confirm (stale: that interface serves another address or none),
 * so a packet is never handed to the wrong pod.
 *
 * bpf_fib_lookup() would answer "where to" from the kernel's own tables,
 * but it is GPL-only and these programs are Apache-2.0; the two maps are
 * written by the owners that also write the kernel's state they mirror.
 */
#ifndef SLUICE_LIB_HOST_ROUTING_H
#define SLUICE_LIB_HOST_ROUTING_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <stddef.h>

#include "common.h"
#include "config.h"
#include "flow.h"

#ifndef AF_INET
#define AF_INET 2
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lxc_address_key);
	__type(value, struct lxc_address);
	__uint(max_entries, SLUICE_LXC_IFACES_MAX_ENTRIES);
	/* Memory follows the number of pods, not the capacity. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lxc_addr_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct node_route_key);
	__type(value, struct node_route);
	__uint(max_entries, SLUICE_NODE_ROUTES_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required for an LPM trie */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_noderoute_v1 SEC(".maps");

#define HOST_ROUTING_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define HOST_ROUTING_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

/* The confirmed host veth of a local pod address, 0 when there is none. */
static __always_inline __u32 local_pod_ifindex(__be32 addr)
{
	struct lxc_address_key key = { .addr = addr };
	const struct endpoint_config *cfg;
	const struct lxc_address *a;
	__u32 ifindex;

	a = bpf_map_lookup_elem(&sl_lxc_addr_v1, &key);
	if (!a)
		return 0;
	ifindex = a->ifindex;
	cfg = bpf_map_lookup_elem(&sl_lxc_v1, &ifindex);
	if (!cfg || !cfg->endpoint_id || cfg->ipv4 != addr)
		return 0;
	return ifindex;
}

/*
 * Decrements the IPv4 TTL in place. Returns false, having written nothing,
 * when the packet must go to the stack: TTL 1 or 0, or an unreadable header.
 */
static __always_inline bool host_routing_decrement_ttl(struct __sk_buff *ctx)
{
	__be16 old_word, new_word; /* TTL and protocol: one 16-bit word of the checksum */
	__u8 ttl;

	if (bpf_skb_load_bytes(ctx, HOST_ROUTING_TTL_OFF, &old_word, sizeof(old_word)) < 0)
		return false;
	ttl = *(__u8 *)&old_word;
	if (ttl <= 1)
		return false;
	new_word = old_word;
	*(__u8 *)&new_word = ttl - 1;
	if (bpf_skb_store_bytes(ctx, HOST_ROUTING_TTL_OFF, &new_word, sizeof(new_word), 0) < 0)
		return false;
	/* Cannot fail after the store: the offset was just written. */
	bpf_l3_csum_replace(ctx, HOST_ROUTING_CSUM_OFF, old_word, new_word, sizeof(new_word));
	return true;
}

/* A packet for another node's pod: out of the route's device to its next hop, or 0 (the stack). */
static __always_inline int host_routing_remote(struct __sk_buff *ctx, __be32 daddr)
{
	struct node_route_key key = { .prefixlen = 32, .addr = daddr };
	struct bpf_redir_neigh nh = { .nh_family = AF_INET };
	const struct node_route *r;
	__u32 ifindex;

	r = bpf_map_lookup_elem(&sl_noderoute_v1, &key);
	if (!r || !r->ifindex)
		return 0;
	/* GSO packets are cut to the pod's MSS, which the pod's MTU (≤ the route's) bounds. */
	if (!ctx->gso_size && ctx->len - ETH_HLEN > r->mtu)
		return 0;
	ifindex = r->ifindex;
	nh.ipv4_nh = r->next_hop;
	if (!host_routing_decrement_ttl(ctx))
		return 0;
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

/*
 * Sends a packet the load balancer translated so that its source is a node
 * address (a masqueraded connection, a reply from a frontend) towards daddr
 * itself: the node's stack would drop it as a martian. Whatever the host
 * routing switch says:
 *  - another node's pod: out of the device and to the next hop of that
 *    podCIDR's route (sl_noderoute_v1: the fabric device in native routing,
 *    the vxlan device in vxlan mode);
 *  - a pod of this node: to its host veth;
 *  - anything else (a client outside the nodes): out of `fallback`, the
 *    device the connection came in on, next hop by route.
 * No TTL decrement: the translation stands for a proxy, not a router.
 * Returns: TC_ACT_REDIRECT, or TC_ACT_SHOT when the helper refuses.
 */
static __always_inline int host_redirect_translated(__be32 daddr, __u32 fallback)
{
	struct node_route_key key = { .prefixlen = 32, .addr = daddr };
	struct bpf_redir_neigh nh = { .nh_family = AF_INET };
	const struct node_route *r;
	__u32 ifindex;

	r = bpf_map_lookup_elem(&sl_noderoute_v1, &key);
	if (r && r->ifindex) {
		ifindex = r->ifindex;
		nh.ipv4_nh = r->next_hop;
		return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
	}
	ifindex = local_pod_ifindex(daddr);
	return bpf_redirect_neigh(ifindex ? ifindex : fallback, NULL, 0, 0);
}

/*
 * Returns: the tc verdict for a packet the program lets through —
 * TC_ACT_REDIRECT when it sent the packet on, CTX_ACT_OK when the node's
 * stack takes it. remote: whether a destination on another node is ours
 * to send (from_container; from_fabric delivers local pods only).
 */
static __always_inline int host_routing(struct __sk_buff *ctx, const struct flow *f, bool remote)
{
	__u32 ifindex;
	int ret;

	if (f->protocol == 0 || !config_bpf_host_routing())
		return CTX_ACT_OK; /* not IPv4 (ARP), or host routing off */
	ifindex = local_pod_ifindex(f->daddr);
	if (ifindex) {
		if (ifindex == ctx->ifindex || !host_routing_decrement_ttl(ctx))
			return CTX_ACT_OK; /* back where it came from (hairpin), or a TTL the stack answers */
		return bpf_redirect_neigh(ifindex, NULL, 0, 0);
	}
	if (!remote)
		return CTX_ACT_OK;
	ret = host_routing_remote(ctx, f->daddr);
	return ret ? ret : CTX_ACT_OK;
}

#endif /* SLUICE_LIB_HOST_ROUTING_H */
