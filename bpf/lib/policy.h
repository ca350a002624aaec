/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NetworkPolicy enforcement: may this endpoint send (EGRESS) to, or accept
 * (INGRESS) from, this peer on this protocol and port?
 *
 * A direction that no policy isolates (endpoint.h) allows everything. An
 * isolated one needs an ALLOW entry in sl_policy_v2, one LPM trie for every
 * endpoint, keyed by struct policy_lpm_key in this byte order:
 *
 *   endpoint_id | remote_identity | direction | protocol | dport (big-endian)
 *   <------------ 72 bits: PREFIX_PEER -----------> 80: PROTO   96: FULL
 *
 * Every entry matches endpoint, identity and direction exactly (prefixlen >=
 * 72). A rule without ports stops there (all protocols, all ports, ICMP
 * included); `protocol` alone stops at 80 (every port of it); a port is 96;
 * an endPort range is the few prefixes between 80 and 96 that cover it
 * (src/datapath/maps/policy-v2.ts, portRangeToPrefixes). The longest match
 * is the most specific rule, and one lookup finds it whatever the number of
 * rules: the trie's walk is bounded by the key's 96 bits.
 *
 * Per packet: the peer's identity first, then identity 0 (a rule whose
 * from/to is omitted: any peer). Protocols without ports (ICMP, GRE, ...)
 * are looked up with prefixlen 72, so only rules without ports can match
 * them: an ICMP "code" in the dport field, or a port 0, never meets a port
 * entry.
 */
#ifndef SLUICE_LIB_POLICY_H
#define SLUICE_LIB_POLICY_H

#include "common.h"
#include "endpoint.h"
#include "flow.h"

/*
 * Capacity is part of the pinned map's identity: changing it needs _v3. A
 * trie is never preallocated, so this is a ceiling, not a reservation: a
 * compiler that would exceed it gets E2BIG on the update (loud), and the
 * endpoint keeps its isolation, so nothing opens.
 */
#define SLUICE_POLICY_MAX_ENTRIES (4 * 1024 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct policy_lpm_key);
	__type(value, struct policy_entry);
	__uint(max_entries, SLUICE_POLICY_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required for LPM tries */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_policy_v2 SEC(".maps");

/* The LPM arithmetic above, checked against the ABI's numbers. */
BUILD_BUG_ON(SLUICE_POLICY_PREFIX_PEER != 8 * (sizeof(__u32) + sizeof(__u32) + sizeof(__u8)));
BUILD_BUG_ON(SLUICE_POLICY_PREFIX_PROTO != SLUICE_POLICY_PREFIX_PEER + 8);
BUILD_BUG_ON(SLUICE_POLICY_PREFIX_FULL != 8 * (sizeof(struct policy_lpm_key) - sizeof(__u32)));

/*
 * The question policy answers, from the endpoint's point of view. A struct,
 * so that conntrack can ask it again later for a connection's original
 * direction (a reply packet's own tuple is the wrong question).
 */
struct policy_query {
	__u32 remote_identity;
	__u8 direction; /* enum sluice_direction */
	__u8 protocol;
	__be16 dport;   /* ignored for protocols without ports */
};

/*
 * Decides q for endpoint_id whose entry is ep. Sets *rule_id to the rule of
 * the entry that decided, 0 when none did (no isolation, or a miss).
 * Returns: CTX_ACT_OK when the direction is not isolated or the most specific
 * entry (peer identity first, then any peer) is an ALLOW;
 * -SLUICE_DROP_POLICY_DENIED on a miss, and for any other action (fail
 * closed: a corrupt or newer entry must not open a hole).
 */
static __always_inline int policy_check(const struct endpoint_entry *ep, __u32 endpoint_id,
					const struct policy_query *q, __u32 *rule_id)
{
	/* Designated initializer: bytes past prefixlen are zero, as the compiler writes them. */
	struct policy_lpm_key key = {
		.prefixlen = SLUICE_POLICY_PREFIX_PEER,
		.endpoint_id = endpoint_id,
		.remote_identity = q->remote_identity,
		.direction = q->direction,
	};
	const struct policy_entry *entry;

	*rule_id = 0;
	if (!endpoint_isolated(ep, q->direction))
		return CTX_ACT_OK;
	if (flow_has_ports(q->protocol)) {
		key.prefixlen = SLUICE_POLICY_PREFIX_FULL;
		key.protocol = q->protocol;
		key.dport = q->dport;
	}
	entry = bpf_map_lookup_elem(&sl_policy_v2, &key);
	if (!entry) {
		key.remote_identity = 0; /* any peer */
		entry = bpf_map_lookup_elem(&sl_policy_v2, &key);
		if (!entry)
			return -SLUICE_DROP_POLICY_DENIED;
	}
	*rule_id = entry->rule_id;
	return entry->action == SLUICE_POLICY_ALLOW ? CTX_ACT_OK : -SLUICE_DROP_POLICY_DENIED;
}

/* The question for a packet's own direction, as its endpoint sees it. */
static __always_inline void policy_query_of(const struct flow *f, struct policy_query *q)
{
	q->remote_identity = flow_remote_identity(f);
	q->direction = f->direction;
	q->protocol = f->protocol;
	q->dport = f->dport;
}

#endif /* SLUICE_LIB_POLICY_H */
