/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy, first enforcement path: an exact-match hash on (local endpoint,
 * remote identity, direction). A DENY entry drops; an ALLOW entry or no entry
 * passes, because isolation (default deny for selected pods) arrives with the
 * NetworkPolicy engine, together with ports and protocols in the key.
 */
#ifndef SLUICE_LIB_POLICY_H
#define SLUICE_LIB_POLICY_H

#include "common.h"
#include "flow.h"

/* Capacity is part of the pinned map's identity: changing it needs _v2. */
#define SLUICE_POLICY_MAX_ENTRIES (64 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(max_entries, SLUICE_POLICY_MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_policy_v1 SEC(".maps");

/*
 * Decides f for endpoint_id; f's identities must be resolved. Sets
 * f->rule_id when an entry matched, whatever its action.
 * Returns: CTX_ACT_OK for ALLOW or no entry; -SLUICE_DROP_POLICY_DENIED for
 * DENY and for any action this datapath does not know (fail closed: a
 * corrupt or newer entry must not open a hole).
 */
static __always_inline int policy_decide(__u32 endpoint_id, struct flow *f)
{
	/* Designated initializer: the explicit pad fields are zero, as hash keys need. */
	struct policy_key key = {
		.endpoint_id = endpoint_id,
		.remote_identity = flow_remote_identity(f),
		.direction = f->direction,
	};
	const struct policy_entry *entry = bpf_map_lookup_elem(&sl_policy_v1, &key);

	if (!entry)
		return CTX_ACT_OK;
	f->rule_id = entry->rule_id;
	if (entry->action == SLUICE_POLICY_ALLOW)
		return CTX_ACT_OK;
	return -SLUICE_DROP_POLICY_DENIED;
}

#endif /* SLUICE_LIB_POLICY_H */
