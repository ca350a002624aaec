/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection tracking: which packets belong to a connection that policy
 * already allowed, so that replies pass without a policy lookup (NetworkPolicy
 * allows the replies of an allowed connection even where the reply's own
 * direction is isolated) and established flows skip it.
 *
 * Key (struct ct_key): the connection as one endpoint sees it —
 *   {endpoint_id, local addr, remote addr, local port, remote port, protocol}
 * where "local" is the endpoint's side: the source of a packet leaving the
 * pod (EGRESS), the destination of one entering it (INGRESS). Both
 * directions of a connection map to the same key, so every packet costs one
 * lookup, and whether it is a reply is a comparison with the direction of
 * the packet that opened the entry (ct_entry.orig_direction). endpoint_id
 * keeps the two ends of a pod-to-pod connection on one node apart (the
 * client's entry opened at EGRESS, the server's at INGRESS — a shared entry
 * would let the server's ingress treat the client's SYN as known), and keeps
 * a reused pod address from inheriting the previous pod's connections.
 * A new connection in the reverse direction uses other ports (the client's
 * ephemeral port is not the server's listening port), so it is another key
 * and goes through policy. ICMP echo: the identifier is the port, on the side
 * of whoever sent the request, so A pinging B and B pinging A with the same
 * identifier stay two connections (except with identifier 0, where both
 * sides' keys are the same; ping uses its process id).
 *
 * Tracked: TCP, UDP, SCTP, other IP protocols (by address pair), ICMP echo.
 * ICMP errors (destination unreachable, time exceeded, parameter problem)
 * about a tracked connection are related to it (ct_lookup_related(), on the
 * connection the quoted packet belongs to) and pass like its replies: a
 * "port unreachable" for an allowed UDP flow, a "fragmentation needed" for
 * an allowed TCP connection (path MTU discovery). They change nothing in the
 * entry. Other ICMP, and errors about nothing tracked, are untracked: policy
 * decides each one (rules without ports), and none opens an entry.
 *
 * TCP (enum sluice_ct_tcp_state) moves forward only: SYN_SENT on the
 * opening SYN, ESTABLISHED on the first reply (or when picked up mid-stream,
 * e.g. after the entry was evicted), FIN_WAIT after one FIN, CLOSED after
 * both FINs or any RST. A pure SYN in the original direction always opens a
 * new connection (policy again, fresh entry: the tuple may be reused after a
 * close); in the reply direction it does so unless the entry is in SYN_SENT
 * (simultaneous open). Flag combinations no TCP stack sends (Linux
 * conntrack's tcp_valid_flags: SYN+FIN, SYN+RST, no SYN/ACK/RST, ...) are
 * dropped as CT_INVALID: the connection state they would drive is undefined.
 *
 * Lifetimes (struct ct_config, milliseconds, 0 = SLUICE_CT_DEFAULT_*) are
 * renewed by every packet and checked on lookup against bpf_ktime_get_ns():
 * an expired entry is a miss, overwritten by the next connection on its key.
 * To keep the fast path from writing the entry on every packet (a shared
 * cache line when the two directions run on two CPUs), the deadline is only
 * rewritten once it has fallen behind by 1/16 of the lifetime: an idle
 * connection lives between 15/16 and 16/16 of its lifetime.
 *
 * The map is an LRU hash: when it is full, an insert evicts old entries, it
 * is never refused (per-CPU free lists can make it evict slightly before
 * max_entries). The kernel's LRU is scan-resistant: an entry the datapath
 * looked up again after creating it (any connection with a second packet)
 * moves to the active list, so a burst of new one-packet flows evicts its own
 * kind and entries nobody revisited first (lxc-conntrack.test.ts measures it).
 * An evicted connection's next packet is new again: policy decides it, in
 * that packet's direction, and an allowed one re-creates the entry (TCP picked
 * up as ESTABLISHED). A reply whose own direction policy does not allow is
 * dropped then: eviction can cut such a connection until its opening side
 * sends again, it can never let a denied one through.
 *
 * Services (lb.h): a pod's connection to a Service frontend has, besides
 * its entry here (keyed by the backend, flagged SLUICE_CT_F_DNAT, holding
 * the frontend in nat_addr/nat_port), a pin (SLUICE_CT_F_SERVICE) keyed by
 * the connection as the pod sent it, holding the backend. ct_lookup() finds
 * a pin with the same lookup as any entry and hands it over in
 * ct_state.pin, reporting CT_NEW: for this file a pin is not a connection
 * (a packet from a frontend entering the pod is not its reply but an
 * untracked packet policy decides, and an ICMP error quoting it is related
 * to nothing). lb.h reads and writes pins; a packet that found one leaves
 * conntrack to lb.h, which either translates it (and conntrack then looks
 * up the connection to the backend) or deletes the pin. ct_create()
 * records the translation the caller put in ct_state.nat; ct_update()
 * records it on an entry that lacks it.
 *
 * Policy changes: every entry keeps the endpoint's policy_revision from when
 * policy allowed it. A packet that finds an entry with another revision has
 * policy re-checked for the connection's original direction (original
 * direction, peer identity as the ipcache has it now, protocol and the
 * original destination port); allowed: the entry takes the new revision;
 * denied: the entry is deleted and the packet dropped (POLICY_DENIED), so a
 * deny applied with kubectl cuts existing connections at their next packet,
 * in either direction, not only new ones.
 *
 * Multi-CPU races (programs on several CPUs share this map, without locks):
 *  - two CPUs may both miss for the first packets of one connection and both
 *    create the entry: the last write wins, and both writes hold the same
 *    decision unless the policy revision changed in between, in which case
 *    the next packet re-checks anyway;
 *  - state and deadline are plain read-modify-writes of the entry: a FIN seen
 *    on two CPUs at once can lose one FIN bit (the entry stays FIN_WAIT and
 *    lives longer), a deadline can be set by the slower writer (a little
 *    earlier or later); neither opens anything;
 *  - an LRU hash reuses a deleted or evicted element at once, without waiting
 *    for readers: a CPU still holding a pointer to it may write a deadline,
 *    state or revision into the entry of another connection that just took
 *    the element. The window is one packet's processing; the worst outcome
 *    is a wrong lifetime or state, or one missed re-check, until that
 *    connection's next revision change or state change. Cilium's conntrack
 *    accepts the same window; closing it would need a lock per entry on
 *    every packet.
 */
#ifndef SLUICE_LIB_CONNTRACK_H
#define SLUICE_LIB_CONNTRACK_H

#include <linux/in.h>

#include "common.h"
#include "counters.h"
#include "flow.h"
#include "policy.h"

/*
 * SLUICE_CT_MAX_ENTRIES (sluice_abi.h) unless the agent sizes it. LRU maps
 * are preallocated: 256 Ki entries of 20 + 24 bytes plus the kernel's
 * per-element overhead is about 30 MB per node.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
	__uint(max_entries, SLUICE_CT_MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ct_v2 SEC(".maps");

/* Lifetimes, one element, written by the agent at any time (next packet). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct ct_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_ct_cfg_v1 SEC(".maps");

#define NSEC_PER_MSEC 1000000ULL

/* What ct_lookup() found. */
enum ct_status {
	CT_NEW = 0,         /* no live entry: policy decides */
	CT_ESTABLISHED = 1, /* a live entry, packet in its original direction */
	CT_REPLY = 2,       /* a live entry, packet in the reply direction */
};

/*
 * The address translation of a connection to a Service frontend (lb.h), as
 * its CONN entry records it: flags SLUICE_CT_F_DNAT (and _HAIRPIN), the
 * frontend and the backend's id. All zero for other connections.
 */
struct ct_nat {
	__be32 addr;
	__be16 port;
	__u8 flags;
	__u8 pad0;
	__u32 backend_id;
};

/* Between ct_lookup() and ct_create()/ct_update(), on the stack. */
struct ct_state {
	struct ct_key key;
	struct ct_entry *entry; /* the live entry, for CT_ESTABLISHED and CT_REPLY */
	struct ct_entry *pin;   /* a live pin under the key (CT_NEW), for lb.h */
	__u64 now;
	struct ct_nat nat;      /* set by the caller after ct_lookup(), recorded by ct_create()/ct_update() */
	bool tracked;           /* false: an untracked packet, no entry is read or written */
	bool reply;
};

/*
 * Linux conntrack's tcp_valid_flags as a bitmap over the flag bits that
 * matter (FIN, SYN, RST, ACK, URG; PSH, ECE and CWR are ignored).
 */
#define CT_TCP_FLAGS_MASK (TCP_HDR_FIN | TCP_HDR_SYN | TCP_HDR_RST | TCP_HDR_ACK | TCP_HDR_URG)
#define CT_TCP_VALID(f) (1ULL << (f))
#define CT_TCP_VALID_SET                                                                          \
	(CT_TCP_VALID(TCP_HDR_SYN) | CT_TCP_VALID(TCP_HDR_SYN | TCP_HDR_URG) |                 \
	 CT_TCP_VALID(TCP_HDR_SYN | TCP_HDR_ACK) | CT_TCP_VALID(TCP_HDR_RST) |                 \
	 CT_TCP_VALID(TCP_HDR_RST | TCP_HDR_ACK) | CT_TCP_VALID(TCP_HDR_FIN | TCP_HDR_ACK) |  \
	 CT_TCP_VALID(TCP_HDR_FIN | TCP_HDR_ACK | TCP_HDR_URG) | CT_TCP_VALID(TCP_HDR_ACK) |  \
	 CT_TCP_VALID(TCP_HDR_ACK | TCP_HDR_URG))

BUILD_BUG_ON(CT_TCP_FLAGS_MASK >= 64);

static __always_inline bool ct_tcp_flags_valid(__u8 tcp_flags)
{
	return (CT_TCP_VALID_SET >> (tcp_flags & CT_TCP_FLAGS_MASK)) & 1;
}

static __always_inline bool ct_tcp_pure_syn(const struct flow *f)
{
	return (f->tcp_flags & (TCP_HDR_SYN | TCP_HDR_ACK)) == TCP_HDR_SYN;
}

/* Returns: true when the TCP packet's flags are known (not a later fragment). */
static __always_inline bool ct_tcp_flags_known(const struct flow *f)
{
	return f->protocol == IPPROTO_TCP && !(f->flags & SLUICE_EVENT_F_LATER_FRAG);
}

/* Fills the endpoint-relative key of f (see the top of this file). */
static __always_inline void ct_key_of(__u32 endpoint_id, const struct flow *f, struct ct_key *k)
{
	bool egress = f->direction == SLUICE_DIR_EGRESS;

	k->endpoint_id = endpoint_id;
	k->local_addr = egress ? f->saddr : f->daddr;
	k->remote_addr = egress ? f->daddr : f->saddr;
	k->protocol = f->protocol;
	if (f->protocol == IPPROTO_ICMP) {
		/* The endpoint pinged when its request leaves or the reply to it enters. */
		bool request = f->sport == bpf_htons(ICMP_ECHO_REQUEST);

		if (request == egress)
			k->local_port = f->icmp_id;
		else
			k->remote_port = f->icmp_id;
	} else if (flow_has_ports(f->protocol)) {
		k->local_port = egress ? f->sport : f->dport;
		k->remote_port = egress ? f->dport : f->sport;
	}
}

/* Returns: the lifetime of a connection of protocol in tcp_state, in ns. */
static __always_inline __u64 ct_lifetime_ns(__u8 protocol, __u8 tcp_state)
{
	__u32 zero = 0;
	const struct ct_config *cfg = bpf_map_lookup_elem(&sl_ct_cfg_v1, &zero);
	__u32 ms = 0, def;

	if (protocol == IPPROTO_TCP) {
		switch (tcp_state) {
		case SLUICE_CT_TCP_SYN_SENT:
			def = SLUICE_CT_DEFAULT_TCP_SYN_MS;
			ms = cfg ? cfg->tcp_syn_ms : 0;
			break;
		case SLUICE_CT_TCP_FIN_WAIT:
			def = SLUICE_CT_DEFAULT_TCP_FIN_MS;
			ms = cfg ? cfg->tcp_fin_ms : 0;
			break;
		case SLUICE_CT_TCP_CLOSED:
			def = SLUICE_CT_DEFAULT_TCP_CLOSED_MS;
			ms = cfg ? cfg->tcp_closed_ms : 0;
			break;
		default:
			def = SLUICE_CT_DEFAULT_TCP_ESTABLISHED_MS;
			ms = cfg ? cfg->tcp_established_ms : 0;
			break;
		}
	} else if (protocol == IPPROTO_ICMP) {
		def = SLUICE_CT_DEFAULT_ICMP_MS;
		ms = cfg ? cfg->icmp_ms : 0;
	} else {
		def = SLUICE_CT_DEFAULT_UDP_MS;
		ms = cfg ? cfg->udp_ms : 0;
	}
	return (__u64)(ms ? ms : def) * NSEC_PER_MSEC;
}

/*
 * Finds f's connection. Sets the conntrack flag of f (CT_NEW,
 * CT_ESTABLISHED or CT_REPLY) and, for a live entry, f->rule_id to the rule
 * that allowed the connection.
 * Returns: an enum ct_status, or -SLUICE_DROP_CT_INVALID for TCP flags that
 * no stack sends.
 */
static __always_inline int ct_lookup(__u32 endpoint_id, struct flow *f, struct ct_state *ct)
{
	struct ct_entry *e;

	__builtin_memset(ct, 0, sizeof(*ct));
	if (ct_tcp_flags_known(f) && !ct_tcp_flags_valid(f->tcp_flags))
		return -SLUICE_DROP_CT_INVALID;
	/* A second lookup of a packet (the load balancer's, lb.h) starts over. */
	f->flags &= ~(SLUICE_EVENT_F_CT_ESTABLISHED | SLUICE_EVENT_F_CT_REPLY);
	f->flags |= SLUICE_EVENT_F_CT_NEW;
	if (f->protocol == IPPROTO_ICMP && !flow_is_icmp_echo(f))
		return CT_NEW; /* untracked */
	ct->tracked = true;
	ct_key_of(endpoint_id, f, &ct->key);
	ct->now = bpf_ktime_get_ns();
	e = bpf_map_lookup_elem(&sl_ct_v2, &ct->key);
	if (!e || e->expires_ns <= ct->now)
		return CT_NEW;
	if (e->flags & SLUICE_CT_F_SERVICE) {
		/*
		 * Leaving the pod: lb.h's. Entering it, from a frontend: a
		 * packet no pod connection answers; policy decides it, and it
		 * writes nothing (the pin stays).
		 */
		if (f->direction == SLUICE_DIR_EGRESS)
			ct->pin = e;
		else
			ct->tracked = false;
		return CT_NEW;
	}
	ct->reply = f->direction != e->orig_direction;
	/* A pure SYN opens a connection, unless it answers one (simultaneous open). */
	if (ct_tcp_flags_known(f) && ct_tcp_pure_syn(f) &&
	    (!ct->reply || e->tcp_state != SLUICE_CT_TCP_SYN_SENT))
		return CT_NEW;
	ct->entry = e;
	f->flags &= ~SLUICE_EVENT_F_CT_NEW;
	f->flags |= ct->reply ? SLUICE_EVENT_F_CT_REPLY : SLUICE_EVENT_F_CT_ESTABLISHED;
	f->rule_id = e->rule_id;
	return ct->reply ? CT_REPLY : CT_ESTABLISHED;
}

/*
 * Records a connection that policy just allowed (ct_lookup() said CT_NEW):
 * f opened it, under the endpoint's policy revision and f->rule_id. Packets
 * that open nothing (untracked ICMP, an echo reply, a TCP RST) write nothing.
 * A failed write is counted and the packet still passes: its replies then
 * face policy on their own, which can drop them, never open anything.
 */
static __always_inline void ct_create(const struct ct_state *ct, const struct flow *f,
				      __u32 policy_revision)
{
	struct ct_entry e = {
		.policy_revision = policy_revision,
		.rule_id = f->rule_id,
		.orig_direction = f->direction,
		.flags = ct->nat.flags,
		.nat_addr = ct->nat.addr,
		.nat_port = ct->nat.port,
		.backend_id = ct->nat.backend_id,
	};

	if (!ct->tracked)
		return;
	if (f->protocol == IPPROTO_ICMP && f->sport != bpf_htons(ICMP_ECHO_REQUEST))
		return;
	if (f->protocol == IPPROTO_TCP) {
		if (f->tcp_flags & TCP_HDR_RST)
			return;
		if (!ct_tcp_flags_known(f))
			e.tcp_state = SLUICE_CT_TCP_ESTABLISHED;
		else if (ct_tcp_pure_syn(f))
			e.tcp_state = SLUICE_CT_TCP_SYN_SENT;
		else if (f->tcp_flags & TCP_HDR_FIN) {
			e.tcp_state = SLUICE_CT_TCP_FIN_WAIT;
			e.flags |= SLUICE_CT_F_FIN_ORIG;
		} else
			e.tcp_state = SLUICE_CT_TCP_ESTABLISHED; /* picked up mid-stream */
		e.tcp_flags_seen = f->tcp_flags; /* the opening packet is reported as the policy verdict */
	}
	e.expires_ns = ct->now + ct_lifetime_ns(f->protocol, e.tcp_state);
	if (bpf_map_update_elem(&sl_ct_v2, &ct->key, &e, BPF_ANY))
		counter_inc(SLUICE_COUNTER_CT_CREATE_FAILED);
	else
		counter_inc(SLUICE_COUNTER_CT_CREATED);
}

/*
 * The connection an ICMP error is about: q is the packet the error quotes
 * (parse_icmp_quote), which belongs to the connection in its own direction.
 * Returns: the live entry, or NULL.
 */
static __always_inline const struct ct_entry *ct_lookup_related(__u32 endpoint_id, const struct flow *q)
{
	struct ct_key key = {};
	const struct ct_entry *e;

	if (q->protocol == IPPROTO_ICMP && !flow_is_icmp_echo(q))
		return NULL; /* an error about an error, or about untracked ICMP */
	ct_key_of(endpoint_id, q, &key);
	e = bpf_map_lookup_elem(&sl_ct_v2, &key);
	if (!e || e->expires_ns <= bpf_ktime_get_ns() || (e->flags & SLUICE_CT_F_SERVICE))
		return NULL;
	return e;
}

/* Returns: true when the endpoint's policy changed since the entry was allowed. */
static __always_inline bool ct_stale(const struct ct_state *ct, __u32 policy_revision)
{
	return ct->entry->policy_revision != policy_revision;
}

/*
 * The policy question of the connection's original direction, for a
 * re-check: whatever the direction of the packet at hand, the connection was
 * opened towards (EGRESS) or from (INGRESS) the peer on the original
 * destination port, which is the remote port or the local port of the key.
 */
static __always_inline void ct_original_query(const struct ct_state *ct, const struct flow *f,
					      struct policy_query *q)
{
	__u8 orig = ct->entry->orig_direction;

	q->remote_identity = flow_remote_identity(f);
	q->direction = orig;
	q->protocol = ct->key.protocol;
	q->dport = orig == SLUICE_DIR_EGRESS ? ct->key.remote_port : ct->key.local_port;
}

/* A re-check denied the connection: forget it, so its next packets are new. */
static __always_inline void ct_revoke(const struct ct_state *ct)
{
	bpf_map_delete_elem(&sl_ct_v2, &ct->key);
	counter_inc(SLUICE_COUNTER_CT_REVOKED);
}

/* TCP state after a packet with tcp_flags in the given direction. */
static __always_inline void ct_tcp_advance(__u8 *state, __u8 *flags, __u8 tcp_flags, bool reply)
{
	const __u8 both = SLUICE_CT_F_FIN_ORIG | SLUICE_CT_F_FIN_REPLY;
	__u8 next = *state;

	if (tcp_flags & TCP_HDR_RST) {
		next = SLUICE_CT_TCP_CLOSED;
	} else {
		if (tcp_flags & TCP_HDR_FIN)
			*flags |= reply ? SLUICE_CT_F_FIN_REPLY : SLUICE_CT_F_FIN_ORIG;
		if ((*flags & both) == both)
			next = SLUICE_CT_TCP_CLOSED;
		else if (*flags & both)
			next = SLUICE_CT_TCP_FIN_WAIT;
		else if (reply)
			next = SLUICE_CT_TCP_ESTABLISHED;
	}
	if (next > *state)
		*state = next;
}

/*
 * Advances a live entry (CT_ESTABLISHED / CT_REPLY) by f: TCP state, the
 * reply flag, the flags seen, the deadline. After a successful re-check
 * (rechecked), the entry also takes the endpoint's revision and the rule
 * that now allows it. A TCP packet showing a flag its connection had not
 * shown yet gets SLUICE_EVENT_F_TCP_FLAGS_NEW (trace.h reports it under
 * SLUICE_CFG_TRACE_TCP_FLAGS). Writes only what changed (see the top of
 * this file for the deadline). Two CPUs may both take a flag as new: the
 * connection is then reported twice, never missed.
 */
static __always_inline void ct_update(const struct ct_state *ct, struct flow *f,
				      bool rechecked, __u32 policy_revision)
{
	struct ct_entry *e = ct->entry;
	__u8 state = e->tcp_state;
	__u8 flags = e->flags;
	__u8 seen = e->tcp_flags_seen;
	__u64 lifetime, expires;

	if (ct_tcp_flags_known(f) && (f->tcp_flags & ~seen)) {
		e->tcp_flags_seen = seen | f->tcp_flags;
		f->flags |= SLUICE_EVENT_F_TCP_FLAGS_NEW;
	}

	if (rechecked) {
		e->rule_id = f->rule_id;
		e->policy_revision = policy_revision;
	}
	/*
	 * A connection to a Service whose entry lacks the translation (it was
	 * re-created by a reply after an eviction): record it, so that the
	 * replies that follow are translated back.
	 */
	if (ct->nat.flags & ~flags) {
		e->nat_addr = ct->nat.addr;
		e->nat_port = ct->nat.port;
		e->backend_id = ct->nat.backend_id;
		flags |= ct->nat.flags;
	}
	if (ct->reply)
		flags |= SLUICE_CT_F_REPLY_SEEN;
	if (ct_tcp_flags_known(f))
		ct_tcp_advance(&state, &flags, f->tcp_flags, ct->reply);
	lifetime = ct_lifetime_ns(ct->key.protocol, state);
	expires = ct->now + lifetime;
	if (state != e->tcp_state || flags != e->flags) {
		e->tcp_state = state;
		e->flags = flags;
		e->expires_ns = expires; /* may shorten it: CLOSED lives briefly */
	} else if (expires - e->expires_ns > lifetime >> 4) {
		e->expires_ns = expires;
	}
}

#endif /* SLUICE_LIB_CONNTRACK_H */
