/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load balancing of traffic from outside the node (bpf/host.c, tc ingress
 * of the node's device): NodePorts (one frontend per node address),
 * externalIPs and load-balancer IPs, as frontends of scope
 * SLUICE_LB_SCOPE_EXTERNAL in sl_lb_svc_v1. The backend is chosen as for
 * pods (lb.h lb_select(): affinity, table), and the connection recorded in
 * sl_lb_nat_v1 under both of its directions' tuples (sluice_abi.h).
 *
 *  - externalTrafficPolicy Local (the frontend's table holds this node's
 *    backends): the destination becomes the backend; the backend sees the
 *    client's address. Its replies leave the backend pod, whose programs
 *    know the connection as external (lb.h lb_external_conn()) and give it
 *    the frontend back as its source (lb_external_reply()).
 *  - Cluster (SLUICE_LB_SVC_F_MASQUERADE): the source also becomes the
 *    node's address (HOST_NODE_ADDR, else the frontend's, which is one for a
 *    NodePort) and a port of SLUICE_LB_SNAT_PORT_MIN..MAX, as kube-proxy
 *    masquerades every connection to an external destination under Cluster
 *    (services.md §2.4), whichever node its backend is on. The packet, whose
 *    source is now a node address the stack would drop as a martian, is sent
 *    on here (host_redirect_translated()): to another node's backend by the
 *    route of its podCIDR (the fabric device, or the vxlan device in vxlan
 *    mode), to a backend on this node straight to its host veth. Another
 *    node's backend answers to that address and port, here, and the reply
 *    is translated back to frontend -> client; a local backend's reply is
 *    translated by its pod's from_container (lb.h lb_external_reply()).
 *  - A backend that is the node itself (a host-network endpoint,
 *    lb_backend_is_node()) is never masqueraded, whatever the policy: its
 *    source would become the node's own address, which the stack drops as
 *    a martian. The stack takes the packet to the node's socket, which sees
 *    the client's address; its reply leaves by the device, where to_fabric
 *    gives it the frontend back as its source, and an ICMP error the node
 *    sends about the connection the frontend back in its quote
 *    (lb_to_outside()).
 *  - Replies go towards the client the same way (host_redirect_translated():
 *    another node's pod by its podCIDR's route, anyone else out of the
 *    device the connection came in on, lb_nat_entry.ifindex): their source
 *    is a node address, which the stack would drop as a martian.
 *  - When the backend set changes, connections keep their backend as a
 *    pod's do (lb.h): a UDP flow whose backend left sl_lb_be_v1 picks a live
 *    one at its next packet (SLUICE_COUNTER_LB_UDP_MOVED), or goes
 *    untranslated once its frontend is gone too; TCP and SCTP stay.
 *  - No usable backend: dropped (SERVICE_NO_BACKEND) when flagged, else
 *    answered with a TCP reset / ICMP port unreachable sent back out of the
 *    device (lb_reject_outside()).
 *
 * Per packet: a TCP/UDP/SCTP packet arriving on the device costs one
 * sl_lb_nat_v1 lookup (a packet of a known external connection, or a reply
 * back from another node's backend, stops there) and, when it finds none,
 * the frontend lookup; both are hash lookups, whatever the number of
 * Services and connections. Not per packet:
 * TCP state (an entry lives as an established connection of its protocol
 * would, renewed by the client's packets, then is evicted by the LRU).
 *
 * Masquerade ports are found by trying up to LB_SNAT_TRIES ports from a
 * hash of the client's address and port: a port is free when no live REPLY
 * entry holds it for the same backend. Two CPUs may pick the same free port
 * for two new clients at once; the later write wins and the earlier client's
 * replies go to the later one (a window of one packet each).
 */
#ifndef SLUICE_LIB_LB_EXTERNAL_H
#define SLUICE_LIB_LB_EXTERNAL_H

#include "lb.h"
#include "parse.h"

/* The node's address (network byte order) masqueraded connections come from; 0: the frontend's. */
const volatile __u32 HOST_NODE_ADDR = 0;

#define LB_SNAT_TRIES 8
#define LB_SNAT_PORTS (SLUICE_LB_SNAT_PORT_MAX - SLUICE_LB_SNAT_PORT_MIN + 1)

/* The address masqueraded connections to frontend_addr come from. */
static __always_inline __be32 lb_masquerade_addr(__be32 frontend_addr)
{
	return HOST_NODE_ADDR ? HOST_NODE_ADDR : frontend_addr;
}

/*
 * Whether a backend is this node itself (a host-network endpoint: the
 * node's address, or the frontend's when that is a node address, as a
 * NodePort's is).
 */
static __always_inline bool lb_backend_is_node(__be32 backend_addr, __be32 frontend_addr)
{
	return (HOST_NODE_ADDR && backend_addr == HOST_NODE_ADDR) || backend_addr == frontend_addr;
}

/*
 * Returns: true for a UDP connection whose backend left sl_lb_be_v1: its
 * next packet picks a live backend, as kube-proxy deletes the conntrack
 * entries of a UDP endpoint that is gone (a server pod replaced, a target
 * port changed). TCP and SCTP stay, as conntrack keeps them.
 */
static __always_inline bool lb_nat_backend_gone(const struct lb_nat_entry *t, __u8 protocol)
{
	return protocol == IPPROTO_UDP && !lb_backend_is_live(t->backend_id, t->backend_addr, t->backend_port, false);
}

/* Renews a live entry once its deadline fell behind by 1/16 of its lifetime. */
static __always_inline void lb_nat_renew(struct lb_nat_entry *e, __u64 now, __u64 lifetime)
{
	if (now + lifetime - e->expires_ns > lifetime >> 4)
		e->expires_ns = now + lifetime;
}

/* The REPLY key of a connection: the backend answering the client, or the masquerade address and port. */
static __always_inline void lb_nat_reply_key(struct lb_nat_key *k, const struct lb_nat_entry *t, __u8 protocol)
{
	k->saddr = t->backend_addr;
	k->sport = t->backend_port;
	k->daddr = t->snat_port ? lb_masquerade_addr(t->frontend_addr) : t->client_addr;
	k->dport = t->snat_port ? t->snat_port : t->client_port;
	k->protocol = protocol;
}

/*
 * Finds t a free masquerade port (t->snat_port), see the top of this file.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_NO_PORT.
 */
static __always_inline int lb_snat_port(struct lb_nat_entry *t, __u8 protocol, __u64 now)
{
	const struct lb_nat_entry *held;
	struct lb_nat_key k = {};
	__u32 start, i;

	start = lb_flow_hash(t->client_addr, t->client_port, t->frontend_port, protocol);
	for (i = 0; i < LB_SNAT_TRIES; i++) {
		t->snat_port = bpf_htons(SLUICE_LB_SNAT_PORT_MIN + (start + i) % LB_SNAT_PORTS);
		lb_nat_reply_key(&k, t, protocol);
		held = bpf_map_lookup_elem(&sl_lb_nat_v1, &k);
		if (!held || held->expires_ns <= now)
			return CTX_ACT_OK;
	}
	return -SLUICE_DROP_NAT_NO_PORT;
}

/*
 * Rewrites a packet of an external connection: FORWARD (client -> frontend)
 * to go to the backend, masqueraded when t says so; REPLY (backend -> the
 * masquerade address, back from another node) to go from the frontend to
 * the client. A packet whose source became the node's or the frontend's
 * address is sent on here (host_redirect_translated()): a masqueraded one
 * towards its backend, a reply towards the client, ifindex being the
 * device the connection came in on.
 * Returns: CTX_ACT_OK (to the stack), LB_SENT, or -SLUICE_DROP_NAT_FAILED.
 */
static __always_inline int lb_nat_apply(struct __sk_buff *ctx, const struct flow *f, const struct lb_nat_entry *t,
					__u8 role, __u32 ifindex)
{
	int ret;

	if (role == SLUICE_LB_NAT_REPLY) {
		ret = nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, t->frontend_addr, f->sport, t->frontend_port);
		if (IS_ERR(ret))
			return ret;
		ret = nat_rewrite_end(ctx, f, NAT_DST, f->daddr, t->client_addr, f->dport, t->client_port);
		if (IS_ERR(ret))
			return ret;
		return host_redirect_translated(t->client_addr, t->ifindex) == TC_ACT_REDIRECT ? LB_SENT : -SLUICE_DROP_NAT_FAILED;
	}
	ret = nat_rewrite_end(ctx, f, NAT_DST, f->daddr, t->backend_addr, f->dport, t->backend_port);
	if (IS_ERR(ret) || !t->snat_port)
		return ret;
	ret = nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, lb_masquerade_addr(t->frontend_addr), f->sport, t->snat_port);
	if (IS_ERR(ret))
		return ret;
	return host_redirect_translated(t->backend_addr, ifindex) == TC_ACT_REDIRECT ? LB_SENT : -SLUICE_DROP_NAT_FAILED;
}

/*
 * The load balancer's step for a packet arriving on the node's device (see
 * the top of this file). f keeps describing the packet as it arrived.
 * Returns: CTX_ACT_OK (translated or not ours: to the stack), LB_SENT
 * (translated and redirected), LB_REJECT, or a -SLUICE_DROP_* reason.
 *
 * Verifier workaround (as lb_egress()): a global function, verified once.
 */
__noinline int lb_from_outside(struct __sk_buff *ctx, struct flow *f)
{
	struct lb_svc_key key = { .scope = SLUICE_LB_SCOPE_EXTERNAL };
	struct lb_nat_key k = {}, rk = {};
	const struct lb_svc_entry *entry;
	struct lb_nat_entry t = {};
	struct lb_nat_entry *e;
	struct lb_svc_entry svc;
	struct lb_backend be;
	bool moved = false;
	__u64 now, lifetime;
	__u32 ifindex;
	int ret;

	if (!ctx || !f || !flow_has_ports(f->protocol))
		return CTX_ACT_OK;
	ifindex = ctx->ifindex; /* read once, here: a ctx field must be read at its plain offset */
	now = bpf_ktime_get_ns();
	lifetime = lb_pin_lifetime(f->protocol);
	lb_nat_key_of(&k, f);
	e = bpf_map_lookup_elem(&sl_lb_nat_v1, &k);
	if (e && e->expires_ns > now) {
		t = *e;
		/* A later fragment goes where its first went: only a whole datagram or a first fragment moves. */
		if (t.role == SLUICE_LB_NAT_FORWARD && !(f->flags & SLUICE_EVENT_F_LATER_FRAG) && lb_nat_backend_gone(&t, f->protocol)) {
			moved = true;
			__builtin_memset(&t, 0, sizeof(t));
			goto select;
		}
		if (t.role == SLUICE_LB_NAT_FORWARD) {
			lb_nat_renew(e, now, lifetime);
			lb_nat_reply_key(&rk, &t, f->protocol);
			e = bpf_map_lookup_elem(&sl_lb_nat_v1, &rk);
			if (e)
				lb_nat_renew(e, now, lifetime);
		}
		return lb_nat_apply(ctx, f, &t, t.role, ifindex);
	}
	if (f->flags & SLUICE_EVENT_F_LATER_FRAG)
		return CTX_ACT_OK; /* its first fragment decided; a later one alone cannot */

select:
	key.addr = f->daddr;
	key.port = f->dport;
	key.protocol = f->protocol;
	entry = bpf_map_lookup_elem(&sl_lb_svc_v1, &key);
	if (!entry) {
		if (moved)
			bpf_map_delete_elem(&sl_lb_nat_v1, &k); /* the flow's backend and frontend are gone */
		return CTX_ACT_OK;
	}
	if (moved)
		counter_inc(SLUICE_COUNTER_LB_UDP_MOVED);
	svc = *entry;
	ret = lb_select(&svc, f, now, &t.backend_id, &be);
	if (IS_ERR(ret))
		return ret;
	if (ret == LB_NONE)
		return (svc.flags & SLUICE_LB_SVC_F_EMPTY_DROP) ? -SLUICE_DROP_SERVICE_NO_BACKEND : LB_REJECT;
	t.client_addr = f->saddr;
	t.client_port = f->sport;
	t.frontend_addr = f->daddr;
	t.frontend_port = f->dport;
	t.backend_addr = be.addr;
	t.backend_port = be.port;
	t.expires_ns = now + lifetime;
	t.ifindex = ifindex;
	/* Not for the node itself: its source would become its own address (a martian here), see the top of this file. */
	if ((svc.flags & SLUICE_LB_SVC_F_MASQUERADE) && !lb_backend_is_node(be.addr, f->daddr)) {
		ret = lb_snat_port(&t, f->protocol, now);
		if (IS_ERR(ret))
			return ret;
	}
	t.role = SLUICE_LB_NAT_REPLY;
	lb_nat_reply_key(&rk, &t, f->protocol);
	if (bpf_map_update_elem(&sl_lb_nat_v1, &rk, &t, BPF_ANY))
		counter_inc(SLUICE_COUNTER_LB_CT_FAILED);
	t.role = SLUICE_LB_NAT_FORWARD;
	if (bpf_map_update_elem(&sl_lb_nat_v1, &k, &t, BPF_ANY))
		counter_inc(SLUICE_COUNTER_LB_CT_FAILED);
	counter_inc(SLUICE_COUNTER_LB_SELECTED);
	return lb_nat_apply(ctx, f, &t, SLUICE_LB_NAT_FORWARD, ifindex);
}

/*
 * The REPLY entry of an external connection whose backend is the node
 * itself (not masqueraded), for a packet with the reply's tuple k; NULL
 * for any other entry, and for one that is gone or expired.
 */
static __always_inline const struct lb_nat_entry *lb_node_reply_entry(const struct lb_nat_key *k)
{
	const struct lb_nat_entry *e = bpf_map_lookup_elem(&sl_lb_nat_v1, k);

	if (!e || e->role != SLUICE_LB_NAT_REPLY || e->snat_port || e->expires_ns <= bpf_ktime_get_ns())
		return NULL;
	return e;
}

/*
 * An ICMP error the node sends about a packet of such a connection (a UDP
 * port nobody listens on, a TCP segment it cannot take) quotes the packet as
 * the node received it, to the backend's port: the quote gets the frontend
 * back, and so does the error's source (lb_icmp_error_rev_nat()), so that
 * the client's stack matches it to its socket (a connected UDP socket then
 * sees ECONNREFUSED, as from kube-proxy). The quote's reversed tuple is the
 * reply's. Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_FAILED.
 */
static __always_inline int lb_to_outside_icmp_error(struct __sk_buff *ctx, const struct flow *f)
{
	struct lb_nat_key k = {};
	const struct lb_nat_entry *e;
	struct ct_nat nat = {};
	struct flow q;

	if (parse_icmp_quote(ctx, f, &q) || !flow_has_ports(q.protocol))
		return CTX_ACT_OK;
	k.saddr = q.daddr;
	k.sport = q.dport;
	k.daddr = q.saddr;
	k.dport = q.sport;
	k.protocol = q.protocol;
	e = lb_node_reply_entry(&k);
	if (!e)
		return CTX_ACT_OK;
	nat.addr = e->frontend_addr;
	nat.port = e->frontend_port;
	return lb_icmp_error_rev_nat(ctx, f, &nat);
}

/*
 * The load balancer's step for a packet leaving by the node's device
 * (bpf/host.c to_fabric): the node's own reply to an external connection
 * whose backend it is (a host-network endpoint) gets the frontend back as
 * its source, and an ICMP error about such a connection is turned into one
 * about the frontend. Anything else, and a reply whose entry is gone or
 * expired, is left alone. One sl_lb_nat_v1 lookup per TCP/UDP/SCTP packet
 * and per ICMP error.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_NAT_FAILED.
 */
__noinline int lb_to_outside(struct __sk_buff *ctx, struct flow *f)
{
	struct lb_nat_key k = {};
	const struct lb_nat_entry *e;

	if (!ctx || !f || (f->flags & SLUICE_EVENT_F_LATER_FRAG))
		return CTX_ACT_OK;
	if (flow_is_icmp_error(f))
		return lb_to_outside_icmp_error(ctx, f);
	if (!flow_has_ports(f->protocol))
		return CTX_ACT_OK;
	lb_nat_key_of(&k, f);
	e = lb_node_reply_entry(&k);
	if (!e)
		return CTX_ACT_OK;
	return nat_rewrite_end(ctx, f, NAT_SRC, f->saddr, e->frontend_addr, f->sport, e->frontend_port);
}

/*
 * The way out for a packet from outside to a frontend without a usable
 * backend that rejects: counted and reported as a drop (SERVICE_REJECTED),
 * then rewritten into a TCP reset or an ICMP port unreachable and sent back
 * out of the device it came in on.
 * Returns: TC_ACT_REDIRECT, or TC_ACT_SHOT when nothing is sent back.
 */
__noinline int lb_reject_outside(struct __sk_buff *ctx, const struct flow *f)
{
	int ret;

	if (!ctx || !f)
		return CTX_ACT_DROP;
	ret = send_drop(ctx, f, 0, -SLUICE_DROP_SERVICE_REJECTED);
	return nat_build_reject(ctx, f) ? bpf_redirect(ctx->ifindex, 0) : ret;
}

#endif /* SLUICE_LIB_LB_EXTERNAL_H */
