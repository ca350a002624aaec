/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipcache: which identity an IPv4 address belongs to, in two tiers.
 *  - sl_iphost_v1, a hash of exact addresses (every pod's /32): one O(1)
 *    lookup, flat however many pods the cluster has.
 *  - sl_ipcache_v1, an LPM trie of shorter prefixes (ipBlock CIDRs, node
 *    ranges), consulted only when the address is not a known host.
 * A /32 is always the longest possible match, so "hash first, then trie" is
 * exactly longest-prefix-match over the union of both maps. The control plane
 * (src/datapath/maps/ipcache.ts) routes /32s to the hash and the rest to the
 * trie; a trie's walk grows with its depth, which pods would otherwise fill.
 */
#ifndef SLUICE_LIB_IPCACHE_H
#define SLUICE_LIB_IPCACHE_H

#include "common.h"
#include "flow.h"

/* Both maps: SLUICE_IPCACHE_MAX_ENTRIES (sluice_abi.h) unless the agent sizes them. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_entry);
	__uint(max_entries, SLUICE_IPCACHE_MAX_ENTRIES);
	/* LPM tries must not be preallocated; entries come and go with pods. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ipcache_v1 SEC(".maps");

/* Exact hosts. Key: struct ipcache_key with prefixlen always 32. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_entry);
	__uint(max_entries, SLUICE_IPCACHE_MAX_ENTRIES);
	/* Memory follows the number of pods, not the capacity. */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_iphost_v1 SEC(".maps");

/*
 * Returns: the identity of the longest prefix containing addr, or
 * SLUICE_IDENTITY_WORLD when no prefix does. A known host costs one hash
 * lookup; other addresses add a trie walk bounded by the number of CIDRs'
 * distinct prefix bits, not by the number of pods.
 */
static __always_inline __u32 ipcache_lookup4(__be32 addr)
{
	struct ipcache_key key = {
		.prefixlen = 32,
		.addr = addr,
	};
	const struct ipcache_entry *entry = bpf_map_lookup_elem(&sl_iphost_v1, &key);

	if (!entry)
		entry = bpf_map_lookup_elem(&sl_ipcache_v1, &key);
	return entry ? entry->identity : SLUICE_IDENTITY_WORLD;
}

/*
 * Fills both identities of an IPv4 flow, once. Called only where they are
 * needed — a policy decision, an event — so that a packet of an established
 * connection with tracing off costs no ipcache lookup at all.
 * __noinline: one copy for the several places that may need it, each on a
 * path that is not the established fast path.
 */
static __noinline void ipcache_resolve(struct flow *f)
{
	if (f->resolved)
		return;
	f->src_identity = ipcache_lookup4(f->saddr);
	f->dst_identity = ipcache_lookup4(f->daddr);
	f->resolved = 1;
}

#endif /* SLUICE_LIB_IPCACHE_H */
