/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Delivery to local pods past the node's stack (SLUICE_CFG_LOCAL_REDIRECT):
 * a packet the program let through whose destination is a pod of this node
 * is handed to that pod's host veth by the program itself instead of being
 * forwarded by the node's IP stack. Skipped: ip_rcv, the route lookup of the
 * forwarding path and netfilter's PREROUTING, FORWARD and POSTROUTING hooks —
 * a few microseconds per packet. Not skipped: the destination's own program
 * (to_container runs on tc egress of its host veth, where the packet is sent)
 * and the neighbour entry, which bpf_redirect_neigh() resolves the way the
 * stack would.
 *
 * Runs on tc ingress: from_container (a pod's packet for another local pod)
 * and from_fabric (another node's packet for a local pod). Like the stack's
 * forwarding, it decrements the TTL (with the checksum fixed). Everything
 * else goes to the stack untouched: redirect off (the map's default; a node
 * whose pod traffic must cross netfilter, such as kube-proxy's NAT, keeps it
 * off), a destination that is not a local pod, a TTL about to expire (the
 * stack answers with time-exceeded), and an sl_lxc_addr_v1 entry that
 * sl_lxc_v1 does not confirm (stale: the interface serves another address or
 * none), so a packet is never handed to the wrong pod.
 *
 * bpf_redirect_neigh() and the other helpers used here are open to
 * non-GPL programs (bpf_fib_lookup() is not).
 */
#ifndef SLUICE_LIB_LOCAL_REDIRECT_H
#define SLUICE_LIB_LOCAL_REDIRECT_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <stddef.h>

#include "common.h"
#include "config.h"
#include "flow.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lxc_address_key);
	__type(value, struct lxc_address);
	__uint(max_entries, SLUICE_LXC_IFACES_MAX_ENTRIES);
	/* Memory follows the number of pods, not the capacity. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lxc_addr_v1 SEC(".maps");

#define REDIRECT_IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))
#define REDIRECT_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))

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
static __always_inline bool redirect_decrement_ttl(struct __sk_buff *ctx)
{
	__be16 old_word, new_word; /* TTL and protocol: one 16-bit word of the checksum */
	__u8 ttl;

	if (bpf_skb_load_bytes(ctx, REDIRECT_IP_TTL_OFF, &old_word, sizeof(old_word)) < 0)
		return false;
	ttl = *(__u8 *)&old_word;
	if (ttl <= 1)
		return false;
	new_word = old_word;
	*(__u8 *)&new_word = ttl - 1;
	if (bpf_skb_store_bytes(ctx, REDIRECT_IP_TTL_OFF, &new_word, sizeof(new_word), 0) < 0)
		return false;
	/* Cannot fail after the store: the offset was just written. */
	bpf_l3_csum_replace(ctx, REDIRECT_IP_CSUM_OFF, old_word, new_word, sizeof(new_word));
	return true;
}

/*
 * Returns: the tc verdict for a packet the program lets through —
 * TC_ACT_REDIRECT when it was handed to a local pod's veth, CTX_ACT_OK when
 * the node's stack takes it.
 */
static __always_inline int local_redirect(struct __sk_buff *ctx, const struct flow *f)
{
	__u32 ifindex;

	if (f->protocol == 0 || !config_local_redirect())
		return CTX_ACT_OK; /* not IPv4 (ARP), or redirect off */
	ifindex = local_pod_ifindex(f->daddr);
	if (!ifindex || ifindex == ctx->ifindex)
		return CTX_ACT_OK; /* not a local pod; or the pod's own veth: hairpin stays with the stack */
	if (!redirect_decrement_ttl(ctx))
		return CTX_ACT_OK;
	return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

#endif /* SLUICE_LIB_LOCAL_REDIRECT_H */
