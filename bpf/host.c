/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The node's fabric-facing device (Cilium's bpf_host, for the traffic that
 * arrives from other nodes): from_fabric runs on tc ingress of the device
 * whose address is the node's InternalIP (and, in vxlan mode, of the vxlan
 * device, where the decapsulated packets arrive). Composition only: parsing,
 * events and drops are the lxc program's (bpf/lib/).
 *
 * What it checks: a packet for one of this node's pods (destination in the
 * node's podCIDR) whose source claims to be one of this node's pods too is
 * a spoof — this node's pods never reach each other over the fabric — and
 * drops with SLUICE_DROP_NODE_SPOOFED_SOURCE. Everything else passes to the
 * stack untouched (but for load balancing, below): policy for pods is the
 * to-container program's, which knows the sender's identity from the
 * ipcache by source address.
 *
 * Load balancing (bpf/lib/lb_external.h): traffic from outside to a
 * frontend of scope EXTERNAL (NodePort, externalIPs, load-balancer IPs) is
 * translated to a backend, masqueraded to the node's address under
 * externalTrafficPolicy Cluster (and then sent on by the program: to the
 * backend's node by its podCIDR's route, or to a local backend's veth), and
 * its replies back from other nodes' backends are translated back; a frontend without backends rejects (the
 * reset or port unreachable leaves by the device) or drops.
 *
 * to_fabric, on tc egress of the same devices, gives the node's own replies
 * to external connections (a host-network endpoint as the backend) their
 * frontend back as source, and its ICMP errors about them the frontend in
 * their quote.
 *
 * The node's podCIDR and address are load-time constants (the agent loads
 * one instance per node: src/datapath/host.ts); 0/0 (mask 0) turns the
 * source check off, address 0 masquerades to the frontend's address.
 */
#include "common.h"
#include "flow.h"
#include "parse.h"
#include "ipcache.h"
#include "drop.h"
#include "trace.h"
#include "lb_external.h"
#include "host-routing.h"

/* The node's podCIDR, network byte order. */
const volatile __u32 HOST_POD_CIDR_ADDR = 0;
const volatile __u32 HOST_POD_CIDR_MASK = 0;

static __always_inline bool host_local_pod_address(__be32 addr)
{
	return HOST_POD_CIDR_MASK != 0 && (addr & HOST_POD_CIDR_MASK) == HOST_POD_CIDR_ADDR;
}

/*
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NODE_SPOOFED_SOURCE.
 */
static __always_inline int host_check_source(const struct flow *f)
{
	if (host_local_pod_address(f->daddr) && host_local_pod_address(f->saddr))
		return -SLUICE_DROP_NODE_SPOOFED_SOURCE;
	return CTX_ACT_OK;
}

SEC("tc")
int from_fabric(struct __sk_buff *ctx)
{
	struct flow f;
	int parsed, ret;

	flow_init(&f, SLUICE_DIR_INGRESS);
	ret = parsed = parse_packet(ctx, &f);
	if (IS_ERR(ret))
		goto drop;
	if (parsed == PARSE_PASS_ARP)
		return send_forward_untraced(ctx, &f);
	ret = host_check_source(&f);
	if (IS_ERR(ret)) {
		ipcache_resolve(&f); /* the event names the identity the packet claimed */
		goto drop;
	}
	ret = lb_from_outside(ctx, &f);
	if (ret == LB_REJECT) {
		ipcache_resolve(&f);
		return lb_reject_outside(ctx, &f);
	}
	if (IS_ERR(ret)) {
		ipcache_resolve(&f);
		goto drop;
	}
	if (ret == LB_SENT) {
		send_forward_untraced(ctx, &f);
		return TC_ACT_REDIRECT;
	}
	send_forward_untraced(ctx, &f);
	return host_routing(ctx, &f, false); /* for a local pod: straight to its veth when host routing is on */
drop:
	return send_drop(ctx, &f, 0, ret);
}

/*
 * tc egress of the fabric device: the node's own replies to external
 * connections it is the backend of get their frontend back
 * (lb_to_outside()). The node's traffic is never dropped here: what the
 * parser does not take (IPv6, anything not IPv4) leaves as it is.
 */
SEC("tc")
int to_fabric(struct __sk_buff *ctx)
{
	struct flow f;
	int ret;

	flow_init(&f, SLUICE_DIR_EGRESS);
	ret = parse_packet(ctx, &f);
	if (ret != CTX_ACT_OK)
		return CTX_ACT_OK;
	ret = lb_to_outside(ctx, &f);
	if (IS_ERR(ret))
		return send_drop(ctx, &f, 0, ret);
	return CTX_ACT_OK;
}

char LICENSE[] SEC("license") = "Apache-2.0";
