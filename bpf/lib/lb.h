/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load balancing: Services without kube-proxy. The maps and their layouts
 * are described in sluice_abi.h (sl_lb_svc_v1, sl_lb_be_v1, sl_lb_tbl_v1,
 * sl_lb_aff_v1).
 */
#ifndef SLUICE_LIB_LB_H
#define SLUICE_LIB_LB_H

#include "common.h"

/* Frontends. Memory follows the number of frontends, not the capacity. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb_svc_key);
	__type(value, struct lb_svc_entry);
	__uint(max_entries, SLUICE_LB_SVC_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lb_svc_v1 SEC(".maps");

/* Backends by id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb_backend);
	__uint(max_entries, SLUICE_LB_BE_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lb_be_v1 SEC(".maps");

/*
 * The template of the inner tables: BPF_F_INNER_MAP lets each inner array
 * have its own max_entries (n + 1); every other property must be the same
 * in the arrays the agent creates (src/datapath/maps/lb-tables.ts).
 */
struct lb_table_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP);
};

/* Backend tables: (service, set) -> inner array, replaced whole. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, struct lb_table_key);
	__uint(max_entries, SLUICE_LB_TBL_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct lb_table_inner);
} sl_lb_tbl_v1 SEC(".maps");

/* ClientIP affinity, written by the datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb_affinity_key);
	__type(value, struct lb_affinity_entry);
	__uint(max_entries, SLUICE_LB_AFF_MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lb_aff_v1 SEC(".maps");

#endif /* SLUICE_LIB_LB_H */
