/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipcache: which identity an IPv4 address belongs to. One LPM trie holds pod
 * addresses (/32) and CIDRs (ipBlock, node ranges); the longest matching
 * prefix wins, so a pod's /32 overrides the CIDR around it.
 */
#ifndef SLUICE_LIB_IPCACHE_H
#define SLUICE_LIB_IPCACHE_H

#include "common.h"
#include "flow.h"

/* Capacity is part of the pinned map's identity: changing it needs _v2. */
#define SLUICE_IPCACHE_MAX_ENTRIES (512 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_entry);
	__uint(max_entries, SLUICE_IPCACHE_MAX_ENTRIES);
	/* LPM tries must not be preallocated; entries come and go with pods. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ipcache_v1 SEC(".maps");

/*
 * Returns: the identity of the longest prefix containing addr, or
 * SLUICE_IDENTITY_WORLD when no prefix does. The cost is bounded by the key
 * length (32 bits), not by the number of entries.
 */
static __always_inline __u32 ipcache_lookup4(__be32 addr)
{
	struct ipcache_key key = {
		.prefixlen = 32,
		.addr = addr,
	};
	const struct ipcache_entry *entry = bpf_map_lookup_elem(&sl_ipcache_v1, &key);

	return entry ? entry->identity : SLUICE_IDENTITY_WORLD;
}

/* Fills both identities of an IPv4 flow. */
static __always_inline void ipcache_resolve(struct flow *f)
{
	f->src_identity = ipcache_lookup4(f->saddr);
	f->dst_identity = ipcache_lookup4(f->daddr);
}

#endif /* SLUICE_LIB_IPCACHE_H */
