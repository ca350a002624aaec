/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: which endpoint a packet's interface serves, and node-wide
 * switches. Both are maps the agent and the CNI change while programs run.
 */
#ifndef SLUICE_LIB_CONFIG_H
#define SLUICE_LIB_CONFIG_H

#include "common.h"


/*
 * Host veth ifindex -> the endpoint it serves, written before the node-shared
 * programs are attached to the veth (the CNI, the lab) and deleted after the
 * veth is gone (src/datapath/lxc-shared.ts).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct endpoint_config);
	__uint(max_entries, SLUICE_LXC_IFACES_MAX_ENTRIES);
	/* Memory follows the number of pods, not the capacity. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lxc_v1 SEC(".maps");

/*
 * Which endpoint this packet's program serves: one program instance serves
 * every pod of a node, so it looks up the interface it runs on. skb->ifindex
 * is skb->dev's index: on tc ingress the host veth that received the packet,
 * on tc egress the host veth about to transmit it — the attachment's interface either way. The entry is
 * copied so the whole packet is decided on one (id, address) pair.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_INTERFACE_UNKNOWN when the interface
 * has no entry (fail closed: a program on an interface nobody registered).
 */
static __always_inline int config_endpoint(const struct __sk_buff *ctx, struct endpoint_config *cfg)
{
	const struct endpoint_config *entry;
	__u32 ifindex;

	ifindex = ctx->ifindex;
	entry = bpf_map_lookup_elem(&sl_lxc_v1, &ifindex);
	if (!entry || !entry->endpoint_id)
		return -SLUICE_DROP_INTERFACE_UNKNOWN;
	*cfg = *entry;
	return CTX_ACT_OK;
}

/* Node-wide switches, one element, written by the agent at any time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct global_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_config_v1 SEC(".maps");

/*
 * Returns: true when an allowed packet should emit a TRACE event: every one
 * under SLUICE_CFG_TRACE_ALLOWED, those policy decided (decided) under
 * SLUICE_CFG_TRACE_NEW.
 */
static __always_inline bool config_trace(bool decided, bool tcp_flags_new)
{
	__u32 zero = 0;
	const struct global_config *cfg = bpf_map_lookup_elem(&sl_config_v1, &zero);

	/* A one-element array always has element 0; the check is for the verifier. */
	if (!cfg)
		return false;
	return (cfg->flags & SLUICE_CFG_TRACE_ALLOWED) || (decided && (cfg->flags & SLUICE_CFG_TRACE_NEW)) ||
	       (tcp_flags_new && (cfg->flags & SLUICE_CFG_TRACE_TCP_FLAGS));
}

/* Whether allowed packets for local pods skip the node's stack (bpf/lib/host-routing.h). */
static __always_inline bool config_bpf_host_routing(void)
{
	__u32 zero = 0;
	const struct global_config *cfg = bpf_map_lookup_elem(&sl_config_v1, &zero);

	return cfg && (cfg->flags & SLUICE_CFG_BPF_HOST_ROUTING);
}

#endif /* SLUICE_LIB_CONFIG_H */
