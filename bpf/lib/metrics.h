/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Packet and byte counters by (direction, reason); reason SLUICE_DROP_NONE
 * counts forwarded packets. Per-CPU so the hot path takes no shared cache
 * line; the agent sums the CPUs.
 */
#ifndef SLUICE_LIB_METRICS_H
#define SLUICE_LIB_METRICS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct metrics_value);
	__uint(max_entries, SLUICE_METRICS_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_metrics_v1 SEC(".maps");

/* The masks below keep the index in bounds without a branch. */
BUILD_BUG_ON(SLUICE_DIR_MAX != 2);
BUILD_BUG_ON(SLUICE_DROP_REASON_MAX & (SLUICE_DROP_REASON_MAX - 1));

/* Returns: the metrics slot of (direction, reason), always < SLUICE_METRICS_ENTRIES. */
static __always_inline __u32 metrics_index(__u8 direction, __u32 reason)
{
	return (direction & 1) * SLUICE_DROP_REASON_MAX + (reason & (SLUICE_DROP_REASON_MAX - 1));
}

static __always_inline void metrics_account(__u8 direction, __u32 reason, __u32 bytes)
{
	__u32 idx = metrics_index(direction, reason);
	struct metrics_value *val = bpf_map_lookup_elem(&sl_metrics_v1, &idx);

	if (!val)
		return; /* unreachable: idx is in bounds; the check is for the verifier */
	/*
	 * Plain increments: tc programs on one CPU do not interleave (softirq,
	 * migration disabled). On PREEMPT_RT two programs on one CPU can, and
	 * an increment may be lost there; counters tolerate that, atomics on
	 * every packet would cost more than it is worth.
	 */
	val->packets += 1;
	val->bytes += bytes;
}

#endif /* SLUICE_LIB_METRICS_H */
