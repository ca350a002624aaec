/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counters of things that are not packets (enum sluice_counter): events lost
 * to a full ring buffer, conntrack and fragment bookkeeping. Packets and
 * bytes by verdict live in metrics.h; these explain the gaps between them
 * and the events (a drop whose event was lost still counts in metrics, and
 * here as EVENTS_LOST). Per-CPU, summed by the agent.
 */
#ifndef SLUICE_LIB_COUNTERS_H
#define SLUICE_LIB_COUNTERS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct counter_value);
	__uint(max_entries, SLUICE_COUNTER_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_counters_v1 SEC(".maps");

/* The mask below keeps the index in bounds without a branch. */
BUILD_BUG_ON(SLUICE_COUNTER_MAX & (SLUICE_COUNTER_MAX - 1));

static __always_inline void counter_inc(enum sluice_counter which)
{
	__u32 idx = which & (SLUICE_COUNTER_MAX - 1);
	struct counter_value *val = bpf_map_lookup_elem(&sl_counters_v1, &idx);

	if (!val)
		return; /* unreachable: idx is in bounds; the check is for the verifier */
	/* A plain increment, per CPU: see metrics_account() for why. */
	val->value += 1;
}

#endif /* SLUICE_LIB_COUNTERS_H */
