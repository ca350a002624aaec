/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: per endpoint (constant, in .rodata) and node-wide (a map the
 * agent can change while programs run).
 */
#ifndef SLUICE_LIB_CONFIG_H
#define SLUICE_LIB_CONFIG_H

#include "common.h"

/*
 * Set by the loader (src/datapath/lxc.ts) between open and load. The kernel
 * freezes .rodata, so the verifier treats these as constants and prunes the
 * branches they disable (e.g. the source check when ipv4 is 0). One program
 * instance per endpoint: no per-packet lookup to learn who we are.
 */
const volatile struct endpoint_config endpoint_config = {};

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
static __always_inline bool config_trace(bool decided)
{
	__u32 zero = 0;
	const struct global_config *cfg = bpf_map_lookup_elem(&sl_config_v1, &zero);

	/* A one-element array always has element 0; the check is for the verifier. */
	if (!cfg)
		return false;
	return (cfg->flags & SLUICE_CFG_TRACE_ALLOWED) || (decided && (cfg->flags & SLUICE_CFG_TRACE_NEW));
}

#endif /* SLUICE_LIB_CONFIG_H */
