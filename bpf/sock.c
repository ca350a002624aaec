/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Load balancing for the node's own sockets (host-network pods, the kubelet,
 * anything of the node's network namespace): cgroup socket-address hooks on
 * the node's cgroup (v2), which translate at the socket instead of per
 * packet, as Cilium's socket load balancer does. A packet the node sends
 * never passes a pod's veth, so the tc programs cannot load-balance it.
 *
 *   connect4     connect() to a frontend: the socket is connected to a
 *                backend instead (TCP, and connected UDP). Once per
 *                connection; its packets then cost nothing here.
 *   sendmsg4     sendto()/sendmsg() of an unconnected UDP socket to a
 *                frontend: that datagram goes to a backend.
 *   recvmsg4     recvfrom() on a UDP socket: a datagram from a backend the
 *                socket was given reports the frontend as its source.
 *   getpeername4 the frontend, not the backend, as the connected peer.
 *
 * Frontends are those of scope POD in sl_lb_svc_v1 (every kind: ClusterIP,
 * NodePort per node address, external and load-balancer IPs, hostPorts),
 * and the backend is chosen as for a pod (lb.h lb_select(): ClientIP
 * affinity, then the Maglev or random table). The client address for
 * affinity and Maglev is 0 (the node: every host socket is one client, as
 * they share the node's address under kube-proxy); Maglev hashes the
 * socket's cookie in place of the client port, so a socket keeps its
 * backend and sockets spread. Every (socket, backend) given goes into
 * sl_lb_sock_v1 (sluice_abi.h) for the reverse direction.
 *
 * Only sockets of the node's network namespace (SOCK_HOST_NETNS_COOKIE, a
 * load-time constant; 0 matches none) are translated: pods' sockets live in
 * the same cgroup tree but their traffic is the tc programs' (policy judges
 * it there, with the frontend in its flow events).
 *
 * No usable backend: the call fails at once, ECONNREFUSED for a frontend
 * that rejects (kube-proxy answers with a reset or port unreachable) and
 * EHOSTUNREACH for one that drops (Local policy, none on this node), so no
 * packet to a Service address ever leaves the node untranslated. A table
 * naming an unknown backend fails the call with EPERM.
 */
#include <linux/in.h>

#include "common.h"
#include "counters.h"
#include "lb.h"

#ifndef ECONNREFUSED
#define ECONNREFUSED 111
#endif
#ifndef EHOSTUNREACH
#define EHOSTUNREACH 113
#endif

#define SOCK_ALLOW 1
#define SOCK_REFUSE 0

/* The node's network namespace (bpf_get_netns_cookie()); set by the loader (src/datapath/sock-lb.ts). */
const volatile __u64 SOCK_HOST_NETNS_COOKIE = 0;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb_sock_key);
	__type(value, struct lb_sock_entry);
	__uint(max_entries, SLUICE_LB_SOCK_MAX_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_lb_sock_v1 SEC(".maps");

static __always_inline bool sock_is_host(struct bpf_sock_addr *ctx)
{
	return SOCK_HOST_NETNS_COOKIE && bpf_get_netns_cookie(ctx) == SOCK_HOST_NETNS_COOKIE;
}

static __always_inline bool sock_protocol_balanced(__u32 protocol)
{
	return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP;
}

/* The call fails with -err (bpf_set_retval) instead of connecting or sending. */
static __always_inline int sock_refuse(int err)
{
	counter_inc(SLUICE_COUNTER_LB_SOCK_REFUSED);
	bpf_set_retval(-err);
	return SOCK_REFUSE;
}

/* connect4 and sendmsg4: a frontend becomes a backend (see the top of this file). */
static __always_inline int sock_translate(struct bpf_sock_addr *ctx)
{
	struct lb_svc_key key = { .scope = SLUICE_LB_SCOPE_POD };
	struct lb_sock_entry rev = {};
	struct lb_sock_key rk = {};
	const struct lb_svc_entry *entry;
	struct lb_svc_entry svc;
	struct flow f = {};
	struct lb_backend be;
	__u32 protocol, id = 0;
	__u64 cookie;
	int ret;

	protocol = ctx->protocol;
	if (!sock_protocol_balanced(protocol) || !sock_is_host(ctx))
		return SOCK_ALLOW;
	key.addr = ctx->user_ip4;
	key.port = (__be16)ctx->user_port;
	key.protocol = protocol;
	entry = bpf_map_lookup_elem(&sl_lb_svc_v1, &key);
	if (!entry)
		return SOCK_ALLOW;
	svc = *entry;
	cookie = bpf_get_socket_cookie(ctx);
	f.sport = (__be16)cookie;
	f.dport = key.port;
	f.protocol = protocol;
	ret = lb_select(&svc, &f, bpf_ktime_get_ns(), &id, &be);
	if (IS_ERR(ret))
		return sock_refuse(1 /* EPERM */);
	if (ret == LB_NONE)
		return sock_refuse((svc.flags & SLUICE_LB_SVC_F_EMPTY_DROP) ? EHOSTUNREACH : ECONNREFUSED);
	rk.cookie = cookie;
	rk.backend_addr = be.addr;
	rk.backend_port = be.port;
	rk.protocol = protocol;
	rev.frontend_addr = key.addr;
	rev.frontend_port = key.port;
	if (bpf_map_update_elem(&sl_lb_sock_v1, &rk, &rev, BPF_ANY))
		counter_inc(SLUICE_COUNTER_LB_CT_FAILED);
	ctx->user_ip4 = be.addr;
	ctx->user_port = (__u32)be.port;
	counter_inc(SLUICE_COUNTER_LB_SOCK_SELECTED);
	return SOCK_ALLOW;
}

/* recvmsg4 and getpeername4: a backend the socket was given shows as its frontend. */
static __always_inline void sock_reverse(struct bpf_sock_addr *ctx)
{
	struct lb_sock_key rk = {};
	const struct lb_sock_entry *rev;
	__u32 protocol = ctx->protocol;

	if (!sock_protocol_balanced(protocol) || !sock_is_host(ctx))
		return;
	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.backend_addr = ctx->user_ip4;
	rk.backend_port = (__be16)ctx->user_port;
	rk.protocol = protocol;
	rev = bpf_map_lookup_elem(&sl_lb_sock_v1, &rk);
	if (!rev)
		return;
	ctx->user_ip4 = rev->frontend_addr;
	ctx->user_port = (__u32)rev->frontend_port;
}

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock_translate(ctx);
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_translate(ctx);
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	sock_reverse(ctx);
	return SOCK_ALLOW; /* recvmsg hooks must return 1 */
}

SEC("cgroup/getpeername4")
int sock_getpeername4(struct bpf_sock_addr *ctx)
{
	sock_reverse(ctx);
	return SOCK_ALLOW; /* getpeername hooks must return 1 */
}

char LICENSE[] SEC("license") = "Apache-2.0";
