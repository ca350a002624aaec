/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod's veth programs: one instance per node, which finds the endpoint
 * a packet's interface serves in sl_lxc_v1 (see config_endpoint()).
 * Composition only: every step lives in bpf/lib/.
 *
 *   from_container: tc ingress of the host-side veth = packets leaving the
 *                   pod. Direction EGRESS, remote = destination.
 *   to_container:   tc egress of the host-side veth = packets entering the
 *                   pod. Direction INGRESS, remote = source.
 *
 * Pipeline: parse -> endpoint -> [source check] -> fragment ports ->
 * conntrack lookup -> [load balancer (from_container, new or pinned to a
 * Service's backend): frontend -> backend, conntrack lookup of the
 * connection to the backend] -> [ipcache (both addresses) -> policy] ->
 * [address translation] -> forward. A packet of an established connection
 * costs one endpoint hash lookup and one conntrack lookup (lb.h: one more
 * for a connection to a Service, found through its pin);
 * identities are resolved only where something needs them: a packet
 * policy decides (new, or re-checked after a policy change) adds the two
 * ipcache lookups, the policy hash lookups of the endpoint's port classes
 * (typically 2-4, at most 36) and the conntrack write;
 * an event (every drop after parsing, traces) adds the ipcache lookups. None
 * of it depends on the number of pods, identities or rules.
 */
#include "common.h"
#include "config.h"
#include "flow.h"
#include "parse.h"
#include "endpoint.h"
#include "ipcache.h"
#include "frag.h"
#include "policy.h"
#include "conntrack.h"
#include "lb.h"
#include "drop.h"
#include "trace.h"
#include "host-routing.h"

/*
 * Anti-spoofing for traffic leaving the pod: its source must be the pod's own
 * address. Its drop event names the identity the pod tried to impersonate
 * (every drop after parsing resolves the identities).
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_SPOOFED_SOURCE.
 */
static __always_inline int lxc_check_source(const struct endpoint_config *cfg, const struct flow *f)
{
	/* 0 turns the check off (per-endpoint: a .rodata constant; shared: the entry's). */
	if (cfg->ipv4 && f->saddr != cfg->ipv4)
		return -SLUICE_DROP_SPOOFED_SOURCE;
	return CTX_ACT_OK;
}

/*
 * Returns: true, with f's conntrack flag CT_RELATED and the connection's
 * rule, when f is an ICMP error about a connection the endpoint tracks; a
 * connection to a Service leaves its translation in *nat (lb.h translates
 * the error back).
 */
static __always_inline bool lxc_icmp_related(struct __sk_buff *ctx, __u32 endpoint_id, struct flow *f,
					     struct ct_nat *nat)
{
	const struct ct_entry *e;
	struct flow quote;

	if (!flow_is_icmp_error(f) || parse_icmp_quote(ctx, f, &quote))
		return false;
	e = ct_lookup_related(endpoint_id, &quote);
	if (!e)
		return false;
	f->flags = (f->flags & ~SLUICE_EVENT_F_CT_NEW) | SLUICE_EVENT_F_CT_RELATED;
	f->rule_id = e->rule_id;
	lb_related_nat(nat, e);
	return true;
}

/*
 * Conntrack first, policy only where it has not decided yet: a packet of a
 * new connection (or an untracked one) is judged in its own direction and,
 * when allowed, recorded; a packet of a known connection, or an ICMP error
 * about one, passes, unless the endpoint's policy changed since, in which
 * case the connection's original direction is judged again (see
 * conntrack.h).
 * Returns: CTX_ACT_OK, or a -SLUICE_DROP_* reason.
 */
static __always_inline int lxc_conntrack_policy(struct __sk_buff *ctx, __u32 endpoint_id,
						const struct endpoint_entry *ep, struct flow *f,
						struct ct_state *ct, int status, const struct lb_xlate *x)
{
	struct policy_query q;
	bool recheck;
	int ret;

	lb_ct_nat(&ct->nat, x);
	if (!ct->tracked && lxc_icmp_related(ctx, endpoint_id, f, &ct->nat))
		return CTX_ACT_OK;
	recheck = status != CT_NEW && ct_stale(ct, ep->policy_revision);
	/* One call site each for policy and for the update keeps the program small. */
	if (status == CT_NEW || recheck) {
		ipcache_resolve(f);
		if (recheck) {
			f->flags |= SLUICE_EVENT_F_CT_RECHECKED;
			counter_inc(SLUICE_COUNTER_CT_RECHECKED);
			ct_original_query(ct, f, &q);
		} else {
			policy_query_of(f, &q);
		}
		ret = policy_check(ep, endpoint_id, &q, &f->rule_id);
		if (IS_ERR(ret)) {
			if (recheck)
				ct_revoke(ct);
			return ret;
		}
		if (!recheck) {
			ct_create(ct, f, ep->policy_revision);
			return CTX_ACT_OK;
		}
	}
	ct_update(ct, f, recheck, ep->policy_revision);
	return CTX_ACT_OK;
}

/*
 * Remembers a first fragment's ports for its later fragments under the
 * addresses and ports they will carry, i.e. as the packet left the pod:
 * before the load balancer's view of it.
 */
static __always_inline void lxc_frag_remember(struct flow *f, __be32 wire_daddr, __be16 wire_dport)
{
	__be32 daddr = f->daddr;
	__be16 dport = f->dport;
	__u8 dir = f->direction;

	f->daddr = wire_daddr;
	f->dport = wire_dport;
	f->direction = SLUICE_DIR_EGRESS;
	frag_remember(f);
	f->daddr = daddr;
	f->dport = dport;
	f->direction = dir;
}

static __always_inline int lxc_handle(struct __sk_buff *ctx, enum sluice_direction dir)
{
	struct endpoint_config cfg = {};
	struct lb_xlate x = {};
	struct endpoint_entry ep;
	struct lb_ct_view view = {};
	struct ct_state ct = {};
	struct ct_entry *pin;
	int redirect;
	int status;
	__u64 now;
	__be32 wire_daddr;
	__be16 wire_dport;
	__u32 endpoint_id;
	struct flow f;
	int parsed, ret;

	flow_init(&f, dir);
	ret = config_endpoint(ctx, &cfg);
	endpoint_id = cfg.endpoint_id;
	if (IS_ERR(ret))
		goto drop; /* before parsing: nothing about the packet is trusted yet */
	ret = parsed = parse_packet(ctx, &f);
	if (IS_ERR(ret))
		goto drop; /* no identities: the addresses may not even be there */
	if (parsed == PARSE_PASS_ARP) {
		ret = endpoint_load(endpoint_id, &ep);
		if (IS_ERR(ret))
			goto drop;
		return send_forward_untraced(ctx, &f);
	}
	ret = endpoint_load(endpoint_id, &ep);
	if (IS_ERR(ret))
		goto drop_resolved;
	if (dir == SLUICE_DIR_EGRESS) {
		ret = lxc_check_source(&cfg, &f);
		if (IS_ERR(ret))
			goto drop_resolved;
	}
	ret = frag_resolve(&f);
	if (IS_ERR(ret))
		goto drop_resolved;
	wire_daddr = f.daddr;
	wire_dport = f.dport;
	if (dir == SLUICE_DIR_EGRESS && lb_is_hairpin_reply(&f)) {
		ret = lb_hairpin_reply(ctx, endpoint_id, &f);
		if (IS_ERR(ret))
			goto drop_resolved;
		lxc_frag_remember(&f, wire_daddr, wire_dport);
		send_forward(ctx, &f, endpoint_id);
		return bpf_redirect_peer(ctx->ifindex, 0);
	}
	ret = status = ct_lookup(endpoint_id, &f, &ct);
	if (IS_ERR(ret))
		goto drop_resolved;
	/*
	 * Leaving the pod, new to conntrack, pinned to a Service's backend, or
	 * on a connection that was never answered (lb_unanswered()): the load
	 * balancer's.
	 */
	if (dir == SLUICE_DIR_EGRESS && (status == CT_NEW || lb_unanswered(status, &ct))) {
		pin = ct.pin;
		now = ct.now;
		if (pin)
			lb_xlate_pinned(&x, pin);
		ret = lb_egress(endpoint_id, &f, &x);
		if (IS_ERR(ret))
			goto drop_resolved;
		if (ret == LB_REJECT) {
			ipcache_resolve(&f);
			return lb_reject(ctx, &f, endpoint_id);
		}
		if (x.active) {
			if (x.pinned && pin)
				lb_pin_renew(pin, f.protocol, now);
			/* The connection to the backend, as conntrack and policy see it. */
			ret = status = ct_lookup(endpoint_id, &f, &ct);
			if (IS_ERR(ret))
				goto drop_resolved;
		}
	}
	if (dir == SLUICE_DIR_INGRESS && status == CT_NEW)
		lb_external_conn(&ct, &f);
	ret = lxc_conntrack_policy(ctx, endpoint_id, &ep, &f, &ct, status, &x);
	if (IS_ERR(ret))
		goto drop_resolved;
	if (f.flags & SLUICE_EVENT_F_FRAGMENT)
		lxc_frag_remember(&f, wire_daddr, wire_dport);
	lb_ct_view_of(&view, &f, &ct);
	/* Most packets need no translation: skip the call. */
	ret = x.active | view.service_reply | view.related | view.external ? lb_translate(ctx, &f, &x, &view) : CTX_ACT_OK;
	if (IS_ERR(ret))
		goto drop_resolved;
	redirect = ret;
	ret = send_forward(ctx, &f, endpoint_id);
	if (redirect == LB_REDIRECT)
		return bpf_redirect_peer(ctx->ifindex, 0);
	if (redirect == LB_SENT)
		return TC_ACT_REDIRECT;
	/* Leaving the pod (to a Service's backend: the translated address): sent on here when host routing is on. */
	return dir == SLUICE_DIR_EGRESS ? host_routing(ctx, &f, true) : ret;

drop_resolved:
	ipcache_resolve(&f); /* an IPv4 packet's drop event names both identities */
drop:
	return send_drop(ctx, &f, endpoint_id, ret);
}

SEC("tc")
int from_container(struct __sk_buff *ctx)
{
	return lxc_handle(ctx, SLUICE_DIR_EGRESS);
}

SEC("tc")
int to_container(struct __sk_buff *ctx)
{
	return lxc_handle(ctx, SLUICE_DIR_INGRESS);
}

/*
 * Not GPL: no GPL-only helper is used (map, ring-buffer, skb_pull_data,
 * ktime, checksum, store/load bytes, change_tail, prandom and redirect
 * helpers are all open to any licence).
 */
char LICENSE[] SEC("license") = "Apache-2.0";
