/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load balancing: Services without kube-proxy, for traffic leaving this
 * node's pods. The maps and their layouts are described in sluice_abi.h
 * (sl_lb_svc_v1, sl_lb_be_v1, sl_lb_tbl_v1, sl_lb_aff_v1); packet rewriting
 * is nat.h's.
 *
 * from_container, between conntrack's lookup and policy (lb_egress()): a
 * pod's connection to a frontend has a pin in conntrack (sluice_abi.h
 * SLUICE_CT_F_SERVICE), keyed by the connection as the pod sent it, which
 * the packet's conntrack lookup finds like any entry and which names its
 * backend. A packet that finds no entry (or only a pin that no longer
 * holds, or an untranslated connection never answered: lb_unanswered())
 * and whose (daddr, dport, protocol) is a frontend gets a backend
 * from ClientIP affinity or the service's table (Maglev: lb_flow_hash() mod
 * the table's length; random: bpf_get_prandom_u32()), and a pin. Conntrack and policy then see the backend's
 * address and port (Kubernetes wants policy to judge the chosen backend),
 * and the connection's CONN entry records the frontend (SLUICE_CT_F_DNAT).
 * Only once the packet is allowed is it rewritten (lb_translate()).
 * Replies, found as replies of a DNAT entry, get the frontend back as their
 * source: the client only ever sees the frontend.
 *
 * Per packet: an established connection that is not to a Service costs
 * nothing more (its conntrack lookup finds it); one to a Service adds a
 * second conntrack lookup (the pin first, then the connection to the
 * backend; UDP also the backend's entry, see below) and the rewrite; the
 * reply side adds nothing but the rewrite. A new connection adds the
 * frontend lookup, and to a Service the affinity lookup, the table (two
 * lookups), the backend and the writes. None of it depends on the number of
 * Services or backends.
 *
 * When the backend set changes (kube-proxy's behaviour, services.md §2.6):
 *  - TCP (and SCTP) keep their pinned backend, even one no longer in
 *    sl_lb_be_v1, and even when the Service is gone, until the pin expires.
 *    A pure SYN on a pinned tuple (a retransmitted SYN, or the tuple reused
 *    after a close) keeps it only while the backend is still selectable;
 *    else it picks again.
 *  - UDP flows keep their backend while it is in sl_lb_be_v1 (selectable
 *    or only serving); once it is gone, the next packet picks a live one
 *    (SLUICE_COUNTER_LB_UDP_MOVED), or, when the frontend is gone too, goes
 *    untranslated and the pin is deleted.
 *  - Pins live as long as an established connection of their protocol
 *    would without packets (6 h TCP, 60 s UDP by default), renewed by the
 *    client's packets only: a UDP flow whose client stays silent longer
 *    while its server still sends picks a backend anew at its next packet.
 *
 * No usable backend: the frontend's flag decides between a drop
 * (SERVICE_NO_BACKEND: Local policy, none on this node) and a reject: the
 * packet is rewritten in place into a TCP reset or an ICMP port unreachable
 * and sent back into the pod (bpf_redirect_peer), so the client's connect()
 * or recv() fails with ECONNREFUSED at once. The original packet counts as a
 * drop with reason SERVICE_REJECTED.
 *
 * Hairpin: a pod reaching itself through a Service it backs. Without more,
 * it would receive a packet from its own address, which the kernel drops as
 * a martian. The request's source is therefore rewritten to
 * SLUICE_LB_HAIRPIN_ADDR (169.254.42.1: link-local, never a pod's or a
 * node's address) and the packet goes straight back into the pod
 * (bpf_redirect_peer). The pod answers 169.254.42.1 through its default
 * route, i.e. its veth: from_container sees the reply to the hairpin
 * address, rewrites its destination back to the pod and treats it as what
 * it is for the client's connection, a reply entering the pod (conntrack
 * finds the client's DNAT entry, the source becomes the frontend), and sends
 * it back in. The pod's egress policy judged the connection (towards itself
 * on the backend port); its ingress policy is not asked, as kube-proxy's
 * hairpin masquerade makes it come from the node, which NetworkPolicy
 * always allows.
 *
 * Races: the agent replaces a table whole (one outer-map update), so a
 * packet sees an old or a new table, never a mix; a backend deleted between
 * the table lookup and the backend lookup drops that one packet
 * (SERVICE_BACKEND_UNKNOWN) unless the agent deletes backends only after
 * the tables that name them (its documented order). Two CPUs may pick two
 * backends for the first packets of one new connection (random); the last
 * SERVICE entry written wins and the other packet's backend answers a
 * connection its client does not know, which it resets — the same window
 * exists when kube-proxy's conntrack races on two CPUs.
 */
#ifndef SLUICE_LIB_LB_H
#define SLUICE_LIB_LB_H

#include <linux/in.h>

#include "common.h"
#include "counters.h"
#include "flow.h"
#include "conntrack.h"
#include "drop.h"
#include "nat.h"
#include "host-routing.h"

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

/*
 * External connections through a frontend (lb_external.h writes them on
 * the node's device); the pod programs translate their backends' replies.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb_nat_key);
	__type(value, struct lb_nat_entry);
	__uint(max_entries, SLUICE_LB_NAT_MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lb_nat_v1 SEC(".maps");

#define NSEC_PER_SEC 1000000000ULL

/* lb_egress() results besides CTX_ACT_OK and drops. */
#define LB_REJECT 1   /* no usable backend: answer with a reject */
/* lb_select() result besides CTX_ACT_OK and drops. */
#define LB_NONE 1     /* no usable backend */
/* lb_translate() results besides CTX_ACT_OK and drops. */
#define LB_REDIRECT 1 /* the packet goes back into the pod it came from */
#define LB_SENT 2     /* a redirect is set already (host_redirect_translated()): return TC_ACT_REDIRECT */

/* What the load balancer decided for a packet; on the stack. */
struct lb_xlate {
	__be32 frontend_addr;
	__be32 backend_addr;
	__be16 frontend_port;
	__be16 backend_port;
	__u32 backend_id;
	__u8 active;  /* the packet is sent to a frontend: translate it */
	__u8 hairpin; /* ... and its backend is the sending pod itself */
	/*
	 * In: the connection's live pin gave backend_* (lb_xlate_pinned());
	 * out: the pin still holds (the caller renews it, lb_pin_renew()).
	 */
	__u8 pinned;
	__u8 pad0;
};

static __always_inline __u32 lb_hash_round(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = (k << 15) | (k >> 17);
	k *= 0x1b873593;
	h ^= k;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64;
}

/*
 * The flow hash a Maglev service's table is indexed by (slot = hash mod
 * its length): MurmurHash3 rounds over the client address, client port <<
 * 16 | frontend port, and the protocol (see SLUICE_LB_HASH_SEED).
 * src/datapath/maps/lb-tables.ts lbFlowHash() computes the same.
 */
static __always_inline __u32 lb_flow_hash(__be32 saddr, __be16 sport, __be16 dport, __u8 protocol)
{
	__u32 h = SLUICE_LB_HASH_SEED;

	h = lb_hash_round(h, bpf_ntohl(saddr));
	h = lb_hash_round(h, ((__u32)bpf_ntohs(sport) << 16) | bpf_ntohs(dport));
	h = lb_hash_round(h, protocol);
	h ^= 12; /* the bytes hashed */
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/*
 * Returns: true when the pinned backend (its id, address and port; x's for
 * lb_backend_live()) is still a backend in sl_lb_be_v1, and, with selectable, may take new
 * connections. Its service is not asked: a backend id names one endpoint of
 * one service, and its address and port are compared anyway.
 */
static __always_inline bool lb_backend_is_live(__u32 id, __be32 addr, __be16 port, bool selectable)
{
	const struct lb_backend *b = bpf_map_lookup_elem(&sl_lb_be_v1, &id);

	return b && b->addr == addr && b->port == port && !(selectable && (b->flags & SLUICE_LB_BE_F_NOT_SELECTABLE));
}

static __always_inline bool lb_backend_live(const struct lb_xlate *x, bool selectable)
{
	return lb_backend_is_live(x->backend_id, x->backend_addr, x->backend_port, selectable);
}

/*
 * Whether a pin keeps f on its backend (see the top of this file), without
 * asking whether the frontend still exists: like kube-proxy's conntrack, a
 * connection outlives its Service. *moved: a UDP flow's backend is gone.
 */
static __always_inline bool lb_pin_holds(const struct flow *f, const struct lb_xlate *x, bool *moved)
{
	if (f->protocol == IPPROTO_TCP) {
		if (!ct_tcp_flags_known(f) || !ct_tcp_pure_syn(f))
			return true;
		return lb_backend_live(x, true);
	}
	if (f->protocol != IPPROTO_UDP)
		return true;
	*moved = !lb_backend_live(x, false);
	return !*moved;
}

/* x as a live pin (conntrack.h ct_state.pin) of the packet's connection gives it, for lb_egress(). */
static __always_inline void lb_xlate_pinned(struct lb_xlate *x, const struct ct_entry *pin)
{
	x->backend_addr = pin->nat_addr;
	x->backend_port = pin->nat_port;
	x->backend_id = pin->backend_id;
	x->pinned = 1;
}

/* Returns: how long a pin of protocol lives without packets: as an established connection would. */
static __always_inline __u64 lb_pin_lifetime(__u8 protocol)
{
	return ct_lifetime_ns(protocol, SLUICE_CT_TCP_ESTABLISHED);
}

/* Renews a pin that still holds, like conntrack's deadlines: once it fell behind by 1/16 of its lifetime. */
static __always_inline void lb_pin_renew(struct ct_entry *pin, __u8 protocol, __u64 now)
{
	__u64 lifetime = lb_pin_lifetime(protocol);

	if (now + lifetime - pin->expires_ns > lifetime >> 4)
		pin->expires_ns = now + lifetime;
}

/*
 * A backend for a new connection of f to svc: the client's ClientIP
 * affinity while it holds, else the table. With affinity, the choice
 * (re)starts the client's timeout; Maglev then hashes without the client
 * port, so that all of a client's flows agree even before an affinity entry
 * exists.
 * Returns: CTX_ACT_OK with *id and *be filled, LB_NONE, or
 * -SLUICE_DROP_SERVICE_BACKEND_UNKNOWN (the table names a backend that is
 * not the service's).
 */
static __always_inline int lb_select(const struct lb_svc_entry *svc, const struct flow *f, __u64 now, __u32 *id,
				     struct lb_backend *be)
{
	struct lb_affinity_key ak = { .service_id = svc->service_id, .client_addr = f->saddr };
	struct lb_table_key tk = { .service_id = svc->service_id, .backend_set = svc->backend_set };
	struct lb_affinity_entry fresh = {};
	struct lb_affinity_entry *a;
	const struct lb_backend *b;
	__u32 zero = 0, n, idx;
	const __u32 *elem;
	void *table;

	if (svc->affinity_timeout_s) {
		a = bpf_map_lookup_elem(&sl_lb_aff_v1, &ak);
		if (a && now - a->last_used_ns < (__u64)svc->affinity_timeout_s * NSEC_PER_SEC) {
			idx = a->backend_id;
			b = bpf_map_lookup_elem(&sl_lb_be_v1, &idx);
			if (b && b->service_id == svc->service_id && !(b->flags & SLUICE_LB_BE_F_NOT_SELECTABLE)) {
				*id = idx;
				*be = *b;
				a->last_used_ns = now;
				counter_inc(SLUICE_COUNTER_LB_AFFINITY_HIT);
				return CTX_ACT_OK;
			}
		}
	}
	table = bpf_map_lookup_elem(&sl_lb_tbl_v1, &tk);
	if (!table)
		return LB_NONE;
	elem = bpf_map_lookup_elem(table, &zero);
	if (!elem || !*elem)
		return LB_NONE;
	n = *elem;
	if (svc->algorithm == SLUICE_LB_ALG_MAGLEV)
		idx = lb_flow_hash(f->saddr, svc->affinity_timeout_s ? 0 : f->sport, f->dport, f->protocol) % n;
	else
		idx = bpf_get_prandom_u32() % n;
	idx += 1;
	elem = bpf_map_lookup_elem(table, &idx);
	if (!elem)
		return -SLUICE_DROP_SERVICE_BACKEND_UNKNOWN; /* shorter than its header says */
	idx = *elem;
	b = bpf_map_lookup_elem(&sl_lb_be_v1, &idx);
	if (!b || b->service_id != svc->service_id)
		return -SLUICE_DROP_SERVICE_BACKEND_UNKNOWN;
	*id = idx;
	*be = *b;
	if (svc->affinity_timeout_s) {
		fresh.last_used_ns = now;
		fresh.backend_id = idx;
		if (bpf_map_update_elem(&sl_lb_aff_v1, &ak, &fresh, BPF_ANY))
			counter_inc(SLUICE_COUNTER_LB_CT_FAILED);
	}
	return CTX_ACT_OK;
}

/*
 * Returns: true for a packet leaving the pod on an untranslated connection
 * it opened that has had no answer. Such a connection may have been sent to
 * an address before it became a frontend (the client started before its
 * Service was created or programmed; a UDP flow from a fixed port then
 * finds its own entry for ever): lb_egress() looks the destination up, and
 * when it is a frontend the packet is load-balanced and its pin replaces the
 * entry, as kube-proxy's conntrack cleanup moves such UDP flows. The cost,
 * one frontend lookup, falls on unanswered packets only: an answered
 * connection's peer exists, and it stays with it.
 */
static __always_inline bool lb_unanswered(int status, const struct ct_state *ct)
{
	const struct ct_entry *e = ct->entry;

	return status == CT_ESTABLISHED && e &&
	       !(e->flags & (SLUICE_CT_F_REPLY_SEEN | SLUICE_CT_F_DNAT | SLUICE_CT_F_EXTERNAL));
}

/* f as policy and conntrack see a packet lb_egress() sent to a backend: addressed to the backend. */
static __always_inline void lb_backend_view(struct flow *f, const struct lb_xlate *x)
{
	f->daddr = x->backend_addr;
	f->dport = x->backend_port;
	f->flags |= SLUICE_EVENT_F_SERVICE;
}

/*
 * The load balancer's step for a packet leaving a pod (see the top of this
 * file): fills *x when f is sent to a frontend (x->active), pinning or
 * choosing its backend, and then turns f into the view conntrack and policy
 * take of the packet: addressed to the backend (lb_backend_view()).
 * Returns: CTX_ACT_OK, LB_REJECT, or -SLUICE_DROP_SERVICE_NO_BACKEND /
 * -SLUICE_DROP_SERVICE_BACKEND_UNKNOWN.
 *
 * Verifier workaround (as policy_lookup_classes() in policy.h): this,
 * lb_translate(), lb_reject(), lb_hairpin_reply() and nat_rewrite() are
 * global functions, verified once on their own instead of inlined into
 * every path of the program; inlined, they tripled the instructions the
 * verifier walks for lxc.o. Their pointer arguments may be NULL as far as
 * the verifier knows, hence the checks.
 */
__noinline int lb_egress(__u32 endpoint_id, struct flow *f, struct lb_xlate *x)
{
	struct lb_svc_key key = { .scope = SLUICE_LB_SCOPE_POD };
	struct ct_entry fresh = {};
	const struct lb_svc_entry *entry;
	struct lb_svc_entry svc;
	struct ct_key pk = {};
	struct lb_backend be;
	bool moved = false;
	__u64 now;
	int ret;

	if (!f || !x || !flow_has_ports(f->protocol))
		return CTX_ACT_OK;
	if (x->pinned && lb_pin_holds(f, x, &moved))
		goto translate;
	x->pinned = 0;
	if (moved)
		counter_inc(SLUICE_COUNTER_LB_UDP_MOVED);

	/* The pin's key: the connection as the pod sent it (conntrack.h ct_key_of()). */
	pk.endpoint_id = endpoint_id;
	pk.local_addr = f->saddr;
	pk.remote_addr = f->daddr;
	pk.local_port = f->sport;
	pk.remote_port = f->dport;
	pk.protocol = f->protocol;
	key.addr = f->daddr;
	key.port = f->dport;
	key.protocol = f->protocol;
	entry = bpf_map_lookup_elem(&sl_lb_svc_v1, &key);
	if (!entry) {
		if (moved)
			bpf_map_delete_elem(&sl_ct_v2, &pk); /* the flow's backend and frontend are gone */
		return CTX_ACT_OK;
	}
	svc = *entry;
	now = bpf_ktime_get_ns();
	ret = lb_select(&svc, f, now, &x->backend_id, &be);
	if (IS_ERR(ret))
		return ret;
	if (ret == LB_NONE)
		return (svc.flags & SLUICE_LB_SVC_F_EMPTY_DROP) ? -SLUICE_DROP_SERVICE_NO_BACKEND : LB_REJECT;
	x->backend_addr = be.addr;
	x->backend_port = be.port;
	fresh.orig_direction = SLUICE_DIR_EGRESS;
	fresh.flags = SLUICE_CT_F_SERVICE;
	fresh.expires_ns = now + lb_pin_lifetime(f->protocol);
	fresh.nat_addr = be.addr;
	fresh.nat_port = be.port;
	fresh.backend_id = x->backend_id;
	if (bpf_map_update_elem(&sl_ct_v2, &pk, &fresh, BPF_ANY))
		counter_inc(SLUICE_COUNTER_LB_CT_FAILED);
	counter_inc(SLUICE_COUNTER_LB_SELECTED);
translate:
	x->frontend_addr = f->daddr;
	x->frontend_port = f->dport;
	x->active = 1;
	x->hairpin = x->backend_addr == f->saddr;
	lb_backend_view(f, x);
	return CTX_ACT_OK;
}

/* The translation the connection's CONN entry records (conntrack.h ct_create()/ct_update()). */
static __always_inline void lb_ct_nat(struct ct_nat *nat, const struct lb_xlate *x)
{
	/*
	 * Without branches (all zero when x is not active): a branch here would
	 * double the verifier's states through conntrack and policy.
	 */
	nat->addr = x->frontend_addr & -(__u32)(x->active & 1);
	nat->port = x->frontend_port & -(__u16)(x->active & 1);
	nat->flags |= ((x->active & 1) * SLUICE_CT_F_DNAT) | ((x->hairpin & 1) * SLUICE_CT_F_HAIRPIN);
	nat->backend_id = x->backend_id & -(__u32)(x->active & 1);
}

/* Returns: true for a packet leaving a pod to the hairpin address: a reply to a hairpin connection. */
static __always_inline bool lb_is_hairpin_reply(const struct flow *f)
{
	return f->direction == SLUICE_DIR_EGRESS && f->daddr == bpf_htonl(SLUICE_LB_HAIRPIN_ADDR);
}

/*
 * The reply to a hairpin connection: the pod (as the server) answers the
 * hairpin address. For conntrack it is what the client (the same pod)
 * receives: a packet from the backend (the pod's address and backend port)
 * entering the pod, a reply of the client's DNAT entry. f is changed to that
 * view (destination the pod, direction INGRESS) and the entry advanced; the
 * packet gets the pod as its destination and the frontend as its source,
 * Ethernet addresses swapped, for the caller to send back into the pod.
 * Policy is not asked: the connection's requests are judged as they leave.
 * Returns: CTX_ACT_OK, -SLUICE_DROP_NAT_UNKNOWN (no tracked hairpin
 * connection: nothing else may use the hairpin address),
 * -SLUICE_DROP_CT_INVALID or -SLUICE_DROP_NAT_FAILED.
 */
__noinline int lb_hairpin_reply(struct __sk_buff *ctx, __u32 endpoint_id, struct flow *f)
{
	struct ct_state ct;
	__be32 frontend_addr;
	__be16 frontend_port;
	int ret;

	if (!ctx || !f)
		return -SLUICE_DROP_NAT_FAILED;
	f->daddr = f->saddr;
	f->direction = SLUICE_DIR_INGRESS;
	ret = ct_lookup(endpoint_id, f, &ct);
	if (IS_ERR(ret))
		return ret;
	if (ret != CT_REPLY || !ct.entry || !(ct.entry->flags & SLUICE_CT_F_HAIRPIN))
		return -SLUICE_DROP_NAT_UNKNOWN;
	frontend_addr = ct.entry->nat_addr;
	frontend_port = ct.entry->nat_port;
	ct_update(&ct, f, false, 0);
	ret = nat_rewrite_end(ctx, f, NAT_DST, bpf_htonl(SLUICE_LB_HAIRPIN_ADDR), f->daddr, f->dport, f->dport);
	if (IS_ERR(ret))
		return ret;
	ret = nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, frontend_addr, f->sport, frontend_port);
	if (IS_ERR(ret))
		return ret;
	f->flags |= SLUICE_EVENT_F_SERVICE;
	return nat_swap_macs(ctx);
}

/* What lb_translate() needs of conntrack's verdict on a packet; on the stack. */
struct lb_ct_view {
	struct ct_nat nat;    /* the translation of the connection f is a reply of, or an ICMP error about */
	__u8 service_reply;   /* a reply of a connection to a Service: its source becomes nat */
	__u8 related;         /* an ICMP error about a connection to a Service */
	__u8 external;        /* a backend's reply to a connection from outside the node (sl_lb_nat_v1) */
	__u8 pad0;
};

/* The sl_lb_nat_v1 key of the packet f describes, as it travels. */
static __always_inline void lb_nat_key_of(struct lb_nat_key *k, const struct flow *f)
{
	k->saddr = f->saddr;
	k->daddr = f->daddr;
	k->sport = f->sport;
	k->dport = f->dport;
	k->protocol = f->protocol;
}

/*
 * For a new connection entering a pod: when the node's device sent it here
 * from outside through a frontend (its reply's tuple has a REPLY entry in
 * sl_lb_nat_v1), its conntrack entry gets SLUICE_CT_F_EXTERNAL, so that the
 * replies are translated back (lb_external_reply()). One lookup per new
 * connection entering a pod, none per established packet.
 */
static __always_inline void lb_external_conn(struct ct_state *ct, const struct flow *f)
{
	struct lb_nat_key k = {
		.saddr = f->daddr,
		.daddr = f->saddr,
		.sport = f->dport,
		.dport = f->sport,
		.protocol = f->protocol,
	};
	const struct lb_nat_entry *e;

	if (!flow_has_ports(f->protocol))
		return;
	e = bpf_map_lookup_elem(&sl_lb_nat_v1, &k);
	if (e && e->role == SLUICE_LB_NAT_REPLY)
		ct->nat.flags |= SLUICE_CT_F_EXTERNAL;
}

/*
 * A backend's reply to a connection from outside the node: its source
 * becomes the frontend the client addressed, its destination the client
 * (the client's own address, also when the connection was masqueraded).
 * A reply whose entry is gone or expired is left alone. The translated
 * reply is sent towards the client (host_redirect_translated(): by the
 * route of another node's podCIDR, else out of the device the connection
 * came in on).
 * Returns: LB_SENT, CTX_ACT_OK (left alone), or -SLUICE_DROP_NAT_FAILED.
 */
static __always_inline int lb_external_reply(struct __sk_buff *ctx, struct flow *f)
{
	struct lb_nat_key k = {};
	const struct lb_nat_entry *e;
	struct lb_nat_entry t;
	int ret;

	lb_nat_key_of(&k, f);
	e = bpf_map_lookup_elem(&sl_lb_nat_v1, &k);
	if (!e || e->role != SLUICE_LB_NAT_REPLY || e->expires_ns <= bpf_ktime_get_ns())
		return CTX_ACT_OK;
	t = *e;
	ret = nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, t.frontend_addr, f->sport, t.frontend_port);
	if (IS_ERR(ret))
		return ret;
	ret = nat_rewrite_end(ctx, f, NAT_DST, f->daddr, t.client_addr, f->dport, t.client_port);
	if (IS_ERR(ret))
		return ret;
	f->flags |= SLUICE_EVENT_F_SERVICE;
	/* Its source is now the frontend, a node address for a NodePort: sent on here, not by the stack. */
	ret = host_redirect_translated(t.client_addr, t.ifindex);
	return ret == TC_ACT_REDIRECT ? LB_SENT : -SLUICE_DROP_NAT_FAILED;
}

/*
 * Fills *v from conntrack's verdict on f: a packet entering the pod that is
 * a reply of a DNAT entry, or an ICMP error about one (ct->nat, from
 * lxc_icmp_related()).
 */
static __always_inline void lb_ct_view_of(struct lb_ct_view *v, const struct flow *f, const struct ct_state *ct)
{
	const struct ct_entry *e = ct->entry;

	if (f->direction != SLUICE_DIR_INGRESS) {
		/* Leaving a backend pod: a reply to a connection from outside. */
		v->external = e && (e->flags & SLUICE_CT_F_EXTERNAL) && ct->reply;
		return;
	}
	if (e && (e->flags & SLUICE_CT_F_DNAT)) {
		v->service_reply = 1;
		v->nat.addr = e->nat_addr;
		v->nat.port = e->nat_port;
		v->nat.flags = e->flags & (SLUICE_CT_F_DNAT | SLUICE_CT_F_HAIRPIN);
		v->nat.backend_id = e->backend_id;
	} else if ((f->flags & SLUICE_EVENT_F_CT_RELATED) && (ct->nat.flags & SLUICE_CT_F_DNAT)) {
		v->related = 1;
		v->nat = ct->nat;
	}
}

/*
 * For an ICMP error entering a pod about one of its connections (e): the
 * connection's translation when it is a connection to a Service, so that
 * lb_translate() turns the error back into one about the frontend.
 */
static __always_inline void lb_related_nat(struct ct_nat *nat, const struct ct_entry *e)
{
	if (!(e->flags & SLUICE_CT_F_DNAT))
		return;
	nat->addr = e->nat_addr;
	nat->port = e->nat_port;
	nat->flags = e->flags & (SLUICE_CT_F_DNAT | SLUICE_CT_F_HAIRPIN);
	nat->backend_id = e->backend_id;
}

/* An ICMP error's quote as nat_icmp_quote_rewrite() reads it: the IPv4 header (no options) and 8 bytes of L4. */
struct lb_icmp_quote {
	struct iphdr ip;
	__be16 sport;
	__be16 dport;
	__u8 rest[4];
};

/*
 * An ICMP error entering the client pod about its connection to a Service
 * quotes the packet as the backend received it (to the backend's address
 * and port): the quote's destination becomes the frontend (nat), and so
 * does the error's source when the backend itself sent it (an error from a
 * router on the way keeps its source). The quoted IPv4 checksum is redone
 * and the ICMP checksum follows every quoted byte that changed; the
 * quote's own L4 checksum is left as it was (receivers match the quote by
 * addresses and ports only). Quotes with IP options are left alone.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_FAILED.
 */
static __always_inline int lb_icmp_error_rev_nat(struct __sk_buff *ctx, const struct flow *f,
						 const struct ct_nat *nat)
{
	__u32 off = (f->l4_off & 0xff) + sizeof(struct icmp_fixed_hdr);
	__u32 csum_off = (f->l4_off & 0xff) + offsetof(struct icmp_fixed_hdr, checksum);
	struct lb_icmp_quote old, new;
	__be32 backend;
	__s64 diff;

	BUILD_BUG_ON(sizeof(struct lb_icmp_quote) != 28);
	if (bpf_skb_load_bytes(ctx, off, &old, sizeof(old)))
		return -SLUICE_DROP_NAT_FAILED;
	if (old.ip.ihl != 5)
		return CTX_ACT_OK;
	new = old;
	backend = old.ip.daddr;
	new.ip.daddr = nat->addr;
	new.dport = nat->port;
	new.ip.check = 0;
	new.ip.check = nat_csum_fold(nat_csum(&new.ip, sizeof(new.ip), 0));
	diff = bpf_csum_diff((__be32 *)&old, sizeof(old), (__be32 *)&new, sizeof(new), 0);
	if (diff < 0 || bpf_l4_csum_replace(ctx, csum_off, 0, (__u32)diff, 0))
		return -SLUICE_DROP_NAT_FAILED;
	if (bpf_skb_store_bytes(ctx, off, &new, sizeof(new), 0))
		return -SLUICE_DROP_NAT_FAILED;
	if (f->saddr != backend)
		return CTX_ACT_OK;
	return nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, nat->addr, 0, 0);
}

/*
 * Rewrites an allowed packet as the load balancer decided (see the top of
 * this file): a packet to a frontend gets the backend as its destination
 * (and, hairpin, the hairpin address as its source); the reply to a hairpin
 * connection gets the pod back as its destination; a reply of a connection
 * to a Service gets the frontend as its source. f describes the packet as
 * conntrack saw it (lb_backend_view(), lb_hairpin_reply_view()), v what
 * conntrack found (lb_ct_view_of()); an ICMP error about a connection to a
 * Service is turned into one about the frontend (lb_icmp_error_rev_nat()).
 * Returns: CTX_ACT_OK, LB_REDIRECT (the packet must go back into the pod,
 * Ethernet addresses swapped), or -SLUICE_DROP_NAT_FAILED.
 */
__noinline int lb_translate(struct __sk_buff *ctx, struct flow *f, const struct lb_xlate *x,
			    const struct lb_ct_view *v)
{
	int ret;

	if (!ctx || !f || !x || !v)
		return -SLUICE_DROP_NAT_FAILED;
	if (x->active) {
		ret = nat_rewrite_end(ctx, f, NAT_DST, x->frontend_addr, x->backend_addr, x->frontend_port,
				  x->backend_port);
		if (IS_ERR(ret) || !x->hairpin)
			return ret;
		ret = nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, bpf_htonl(SLUICE_LB_HAIRPIN_ADDR), f->sport, f->sport);
		if (IS_ERR(ret))
			return ret;
		ret = nat_swap_macs(ctx);
		return IS_ERR(ret) ? ret : LB_REDIRECT;
	}
	if (v->related)
		return lb_icmp_error_rev_nat(ctx, f, &v->nat);
	if (v->external)
		return lb_external_reply(ctx, f);
	if (!v->service_reply)
		return CTX_ACT_OK;
	ret = nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, v->nat.addr, f->sport, v->nat.port);
	if (IS_ERR(ret))
		return ret;
	f->flags |= SLUICE_EVENT_F_SERVICE;
	return CTX_ACT_OK;
}

/*
 * The way out for a packet to a frontend without a usable backend that
 * rejects: counted and reported as a drop (SERVICE_REJECTED, through
 * send_drop(), the one drop path), then rewritten into a TCP reset (a TCP
 * reset itself is not answered) or an ICMP port unreachable and sent back
 * into the pod. Runs on tc ingress of the host veth (from_container), where
 * bpf_redirect_peer() delivers to the pod's end.
 * Returns: TC_ACT_REDIRECT, or TC_ACT_SHOT when nothing is sent back.
 */
__noinline int lb_reject(struct __sk_buff *ctx, const struct flow *f, __u32 endpoint_id)
{
	int ret;

	if (!ctx || !f)
		return CTX_ACT_DROP; /* unreachable: the caller passes its own */
	ret = send_drop(ctx, f, endpoint_id, -SLUICE_DROP_SERVICE_REJECTED);
	return nat_build_reject(ctx, f) ? bpf_redirect_peer(ctx->ifindex, 0) : ret;
}

#endif /* SLUICE_LIB_LB_H */
