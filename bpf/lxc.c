/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod's veth programs, one instance per endpoint (endpoint_config in
 * .rodata says which). Composition only: every step lives in bpf/lib/.
 *
 *   from_container: tc ingress of the host-side veth = packets leaving the
 *                   pod. Direction EGRESS, remote = destination.
 *   to_container:   tc egress of the host-side veth = packets entering the
 *                   pod. Direction INGRESS, remote = source.
 *
 * Pipeline: parse -> ipcache (both addresses) -> [source check] -> policy ->
 * forward. Per-packet work is two LPM lookups and one hash lookup, whatever
 * the number of pods, prefixes or rules.
 */
#include "common.h"
#include "config.h"
#include "flow.h"
#include "parse.h"
#include "ipcache.h"
#include "policy.h"
#include "drop.h"
#include "trace.h"

/*
 * Anti-spoofing for traffic leaving the pod: its source must be the pod's own
 * address. Runs after the ipcache so a drop event names the identity the pod
 * tried to impersonate.
 * Returns: CTX_ACT_OK, or -SLUICE_DROP_SPOOFED_SOURCE.
 */
static __always_inline int lxc_check_source(const struct flow *f)
{
	/* .rodata constant: the verifier prunes this when the check is off. */
	if (endpoint_config.ipv4 && f->saddr != endpoint_config.ipv4)
		return -SLUICE_DROP_SPOOFED_SOURCE;
	return CTX_ACT_OK;
}

static __always_inline int lxc_handle(struct __sk_buff *ctx, enum sluice_direction dir)
{
	__u32 endpoint_id = endpoint_config.endpoint_id;
	struct flow f;
	int ret;

	flow_init(&f, dir);
	ret = parse_packet(ctx, &f);
	if (ret == PARSE_PASS_ARP)
		return send_forward_untraced(ctx, &f);
	if (IS_ERR(ret))
		goto drop;

	ipcache_resolve(&f);
	if (dir == SLUICE_DIR_EGRESS) {
		ret = lxc_check_source(&f);
		if (IS_ERR(ret))
			goto drop;
	}
	ret = policy_decide(endpoint_id, &f);
	if (IS_ERR(ret))
		goto drop;
	return send_forward(ctx, &f, endpoint_id);

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
 * Not GPL: no GPL-only helper is used (map, ring-buffer, skb_pull_data and
 * ktime helpers are all open to any licence).
 */
char LICENSE[] SEC("license") = "Apache-2.0";
