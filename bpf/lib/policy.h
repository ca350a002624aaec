/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NetworkPolicy enforcement: may this endpoint send (EGRESS) to, or accept
 * (INGRESS) from, this peer on this protocol and port?
 *
 * A direction that no policy isolates (endpoint.h) allows everything. An
 * isolated one needs an ALLOW entry in sl_policy_v3, one hash for every
 * endpoint, keyed exactly by struct policy_key:
 *
 *   endpoint_id | remote_identity | direction | protocol | port_prefixlen | dport
 *
 * A rule's ports become entries of a port class (sluice_abi.h): a port is
 * class 16, `protocol` alone class 0, an endPort range the few aligned
 * blocks covering it (classes in between; src/datapath/maps/policy-key.ts),
 * a rule without ports the class NO_PORTS (every protocol, ICMP included).
 *
 * Per packet: for the peer's identity and then identity 0 (a rule whose
 * from/to is omitted: any peer), try each class the endpoint's entries use
 * in this direction (endpoint_policy_classes()), most specific first: 16
 * port bits down to 0, then NO_PORTS, dport masked to the class. The first
 * entry found decides: the most specific entry, and its rule_id, as a
 * longest-prefix match over (identity, protocol, port) would find it, but
 * each step is one hash lookup whatever the number of entries, and an
 * endpoint typically uses two to four classes.
 * Protocols without ports (ICMP, GRE, ...) try NO_PORTS only, so an ICMP
 * "code" in the dport field, or a port 0, never meets a port entry.
 *
 * Why not one LPM trie: its depth grows with the number of entries of all
 * endpoints (measured in docs/datapath.md), so every pod's packets would pay
 * for every other pod's policy.
 */
#ifndef SLUICE_LIB_POLICY_H
#define SLUICE_LIB_POLICY_H

#include "common.h"
#include "endpoint.h"
#include "flow.h"

/*
 * The compiled capacity (SLUICE_POLICY_MAX_ENTRIES, sluice_abi.h) sizes a
 * map nobody sized; the agent creates the map with its mapSizes.policy
 * (docs/agent.md), and a pinned map keeps its size. A compiler that would
 * exceed it gets E2BIG on the update (loud), and the
 * agent marks the endpoint SLUICE_EP_F_POLICY_INCOMPLETE: it drops every
 * policy decision (POLICY_INCOMPLETE), so nothing opens and the half that
 * did fit does not pass as the policy. Elements are allocated as
 * written (BPF_F_NO_PREALLOC), but a hash allocates its bucket array for the
 * capacity when created: 4M buckets are 64 MB of kernel memory per node,
 * whatever the number of entries (measured: 67,109,760 bytes memlock empty).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(max_entries, SLUICE_POLICY_MAX_ENTRIES);
	/* Elements follow the entries written; the buckets do not (above). */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_policy_v3 SEC(".maps");

/* The class arithmetic below, checked against the ABI's numbers. */
BUILD_BUG_ON(SLUICE_POLICY_PORT_FULL != 8 * sizeof(__be16));
BUILD_BUG_ON(SLUICE_POLICY_NO_PORTS != SLUICE_POLICY_PORT_FULL + 1);
BUILD_BUG_ON(SLUICE_POLICY_CLASSES != SLUICE_POLICY_NO_PORTS + 1);
BUILD_BUG_ON(SLUICE_POLICY_CLASSES > 8 * sizeof(__u32)); /* a mask is a __u32 */
BUILD_BUG_ON(sizeof(struct policy_key) != 16); /* no implicit padding: hash keys compare bytewise */

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
 * Copies into *found the entry for identity key->remote_identity: the
 * classes of `classes` tried most specific first (16 port bits down to 0,
 * then NO_PORTS). key holds endpoint_id, remote_identity and direction; the
 * rest is set here. A loop with a constant bound (SLUICE_POLICY_CLASSES): at
 * most 18 lookups, as many as bits are set in classes.
 *
 * Verifier workaround: a global (__noinline, not static) function is
 * verified once, on its own, instead of once per call site and caller
 * state. Inlined, the loop was walked for every caller state and roughly
 * tripled lxc.o's load time (one measurement: ~100 ms before the loop,
 * ~350 ms inlined, ~200 ms global); the call costs a few ns per policy
 * decision. Its pointer arguments may be NULL as far as the verifier
 * knows, hence the check.
 * Returns: 1 when an entry was found (and copied), 0 otherwise.
 */
__noinline int policy_lookup_classes(struct policy_key *key, __u32 classes, __u8 protocol, __be16 dport,
				     struct policy_entry *found)
{
	const struct policy_entry *entry;
	__u32 i, cls;

	if (!key || !found)
		return 0;
	for (i = 0; i < SLUICE_POLICY_CLASSES; i++) {
		cls = i < SLUICE_POLICY_NO_PORTS ? SLUICE_POLICY_PORT_FULL - i : SLUICE_POLICY_NO_PORTS;
		if (!(classes & (1U << cls)))
			continue;
		key->port_prefixlen = cls;
		if (cls == SLUICE_POLICY_NO_PORTS) {
			key->protocol = 0;
			key->dport = 0;
		} else {
			/* The first cls bits of the port; (0xffff << 16) & 0xffff = 0 for class 0. */
			key->protocol = protocol;
			key->dport = dport & bpf_htons((0xffffU << (SLUICE_POLICY_PORT_FULL - cls)) & 0xffff);
		}
		entry = bpf_map_lookup_elem(&sl_policy_v3, key);
		if (entry) {
			*found = *entry;
			return 1;
		}
	}
	return 0;
}

/*
 * Decides q for endpoint_id whose entry is ep. Sets *rule_id to the rule of
 * the entry that decided, 0 when none did (no isolation, or a miss).
 * Returns: -SLUICE_DROP_POLICY_INCOMPLETE, whatever the direction and its
 * isolation, when the endpoint's policy could not be written completely
 * (the endpoint fails closed as a unit, with a reason that tells "the node
 * could not apply your policy" from "your policy denies"); CTX_ACT_OK when
 * the direction is not isolated or the most specific entry (peer identity
 * first, then any peer) is an ALLOW; -SLUICE_DROP_POLICY_DENIED on a miss,
 * and for any other action (fail closed: a corrupt or newer entry must not
 * open a hole).
 */
static __always_inline int policy_check(const struct endpoint_entry *ep, __u32 endpoint_id,
					const struct policy_query *q, __u32 *rule_id)
{
	/* Designated initializer: padding is zero, as the compiler writes it. */
	struct policy_key key = {
		.endpoint_id = endpoint_id,
		.remote_identity = q->remote_identity,
		.direction = q->direction,
	};
	struct policy_entry entry;
	__u32 classes;

	*rule_id = 0;
	if (endpoint_policy_incomplete(ep))
		return -SLUICE_DROP_POLICY_INCOMPLETE;
	if (!endpoint_isolated(ep, q->direction))
		return CTX_ACT_OK;
	classes = endpoint_policy_classes(ep, q->direction);
	if (!flow_has_ports(q->protocol))
		classes &= 1U << SLUICE_POLICY_NO_PORTS;
	if (!policy_lookup_classes(&key, classes, q->protocol, q->dport, &entry)) {
		key.remote_identity = 0; /* any peer */
		if (!policy_lookup_classes(&key, classes, q->protocol, q->dport, &entry))
			return -SLUICE_DROP_POLICY_DENIED;
	}
	*rule_id = entry.rule_id;
	return entry.action == SLUICE_POLICY_ALLOW ? CTX_ACT_OK : -SLUICE_DROP_POLICY_DENIED;
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
