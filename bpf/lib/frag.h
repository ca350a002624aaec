/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IPv4 fragments and port-aware policy. Only a datagram's first fragment
 * carries the L4 header; the later ones would reach policy and conntrack
 * without ports. sl_frag_v1 remembers, per datagram (saddr, daddr, IP id,
 * protocol), the L4 fields of the first fragment once it passed; a later
 * fragment takes them from there and is then judged like its first fragment
 * (same conntrack entry, same rule). A later fragment whose first fragment
 * was not seen — lost, reordered ahead of it, or crafted — is dropped as
 * FRAG_UNKNOWN: no port means no decision (fail closed).
 *
 * Entries are not deleted after the last fragment: fragments may arrive out
 * of order, and the map is an LRU, so old datagrams make room for new ones.
 * A datagram id reused (after 65536 datagrams between the same hosts and
 * protocol) while its old entry is still there gives a later fragment the
 * ports of the old datagram; the receiver cannot reassemble that fragment
 * without its own first fragment, which went through policy on its own.
 * Both programs of a pod-to-pod path write the same key with the same value,
 * so sharing the map between endpoints is harmless.
 */
#ifndef SLUICE_LIB_FRAG_H
#define SLUICE_LIB_FRAG_H

#include "common.h"
#include "counters.h"
#include "flow.h"

/* Datagrams in flight as fragments at once: SLUICE_FRAG_MAX_ENTRIES (sluice_abi.h) unless the agent sizes it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct frag_key);
	__type(value, struct frag_entry);
	__uint(max_entries, SLUICE_FRAG_MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_frag_v1 SEC(".maps");

static __always_inline void frag_key_of(const struct flow *f, struct frag_key *k)
{
	k->saddr = f->saddr;
	k->daddr = f->daddr;
	k->id = f->ip_id;
	k->protocol = f->protocol;
}

/*
 * A later fragment gets its datagram's L4 fields; other packets are left alone.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_FRAG_UNKNOWN for a later fragment
 * whose first fragment did not pass here.
 */
static __always_inline int frag_resolve(struct flow *f)
{
	struct frag_key key = {};
	const struct frag_entry *entry;

	if (!(f->flags & SLUICE_EVENT_F_LATER_FRAG))
		return CTX_ACT_OK;
	frag_key_of(f, &key);
	entry = bpf_map_lookup_elem(&sl_frag_v1, &key);
	if (!entry)
		return -SLUICE_DROP_FRAG_UNKNOWN;
	f->sport = entry->sport;
	f->dport = entry->dport;
	f->icmp_id = entry->icmp_id;
	return CTX_ACT_OK;
}

/* After a first fragment (offset 0, MF set) passed: remember its L4 fields. */
static __always_inline void frag_remember(const struct flow *f)
{
	struct frag_key key = {};
	struct frag_entry entry = {
		.sport = f->sport,
		.dport = f->dport,
		.icmp_id = f->icmp_id,
	};

	if ((f->flags & (SLUICE_EVENT_F_FRAGMENT | SLUICE_EVENT_F_LATER_FRAG)) != SLUICE_EVENT_F_FRAGMENT)
		return;
	frag_key_of(f, &key);
	if (bpf_map_update_elem(&sl_frag_v1, &key, &entry, BPF_ANY))
		counter_inc(SLUICE_COUNTER_FRAG_TRACK_FAILED);
	else
		counter_inc(SLUICE_COUNTER_FRAG_TRACKED);
}

#endif /* SLUICE_LIB_FRAG_H */
