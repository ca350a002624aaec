/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Endpoints: what the node knows about each local pod, keyed by endpoint id
 * (sl_endpoints_v2): whether some policy isolates it per direction, the
 * revision of its policy, which conntrack compares to decide when existing
 * connections must be judged again, and per direction the port classes its
 * policy entries use (policy.h looks up only those).
 *
 * The agent writes the entry before it attaches the pod's programs and
 * deletes it after detaching them; a program whose endpoint has no entry
 * drops everything (fail closed: a pod the control plane does not know is
 * not a pod whose policy we could enforce).
 */
#ifndef SLUICE_LIB_ENDPOINT_H
#define SLUICE_LIB_ENDPOINT_H

#include "common.h"

/* SLUICE_ENDPOINTS_MAX_ENTRIES (sluice_abi.h) unless the agent sizes it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct endpoint_entry);
	__uint(max_entries, SLUICE_ENDPOINTS_MAX_ENTRIES);
	/* Memory follows the number of pods, not the capacity. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_endpoints_v2 SEC(".maps");

/*
 * Copies the endpoint's entry into *ep, so the whole packet is decided on one
 * (flags, revision) pair. An update from user space replaces the element of
 * this non-preallocated hash (the old one is freed after RCU), so the copy is
 * never half old, half new.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_ENDPOINT_UNKNOWN when there is none.
 */
static __always_inline int endpoint_load(__u32 endpoint_id, struct endpoint_entry *ep)
{
	const struct endpoint_entry *entry = bpf_map_lookup_elem(&sl_endpoints_v2, &endpoint_id);

	if (!entry)
		return -SLUICE_DROP_ENDPOINT_UNKNOWN;
	*ep = *entry;
	return CTX_ACT_OK;
}

/* Returns: true when some policy selects the endpoint for dir (default deny there). */
static __always_inline bool endpoint_isolated(const struct endpoint_entry *ep, __u8 dir)
{
	__u32 bit = dir == SLUICE_DIR_EGRESS ? SLUICE_EP_F_EGRESS_ISOLATED : SLUICE_EP_F_INGRESS_ISOLATED;

	return ep->flags & bit;
}

/*
 * Returns: true when the agent could not write the endpoint's whole policy
 * (SLUICE_EP_F_POLICY_INCOMPLETE): what its entries allow is a subset of
 * what it should, so none of it is trusted (policy.h drops every decision).
 */
static __always_inline bool endpoint_policy_incomplete(const struct endpoint_entry *ep)
{
	return ep->flags & SLUICE_EP_F_POLICY_INCOMPLETE;
}

/* Returns: the mask of port classes (enum sluice_policy_class) of the endpoint's entries for dir. */
static __always_inline __u32 endpoint_policy_classes(const struct endpoint_entry *ep, __u8 dir)
{
	return dir == SLUICE_DIR_EGRESS ? ep->egress_policy_classes : ep->ingress_policy_classes;
}

#endif /* SLUICE_LIB_ENDPOINT_H */
