/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The way out for a forwarded packet: count it (reason SLUICE_DROP_NONE),
 * report it when tracing says so, return TC_ACT_OK. Tracing is off by
 * default: an event per allowed packet costs a ring-buffer write and agent
 * work on every packet, while drops are rare and always reported.
 * SLUICE_CFG_TRACE_NEW is the cheap middle: one event per packet policy
 * decided (flagged CT_NEW: connection openings, untracked ICMP), with the
 * rule that allowed it — the policy verdicts, not the traffic.
 * SLUICE_CFG_TRACE_TCP_FLAGS adds the packets of a tracked TCP connection
 * that show a flag it had not shown yet (conntrack.h): a handful per
 * connection (SYN-ACK, first PSH, FIN, RST), never one per packet.
 */
#ifndef SLUICE_LIB_TRACE_H
#define SLUICE_LIB_TRACE_H

#include "common.h"
#include "config.h"
#include "flow.h"
#include "ipcache.h"
#include "metrics.h"
#include "events.h"

/* Returns: TC_ACT_OK. */
static __always_inline int send_forward(struct __sk_buff *ctx, struct flow *f, __u32 endpoint_id)
{
	metrics_account(f->direction, SLUICE_DROP_NONE, ctx->len);
	if (config_trace(f->flags & SLUICE_EVENT_F_CT_NEW, f->flags & SLUICE_EVENT_F_TCP_FLAGS_NEW)) {
		ipcache_resolve(f); /* an established packet has not needed them so far */
		events_emit(ctx, f, endpoint_id, SLUICE_EVENT_TRACE, SLUICE_VERDICT_FORWARDED,
			    SLUICE_DROP_NONE);
	}
	return CTX_ACT_OK;
}

/*
 * For frames passed without a decision (ARP): counted as forwarded, never
 * traced, since they carry no IP flow to report.
 * Returns: TC_ACT_OK.
 */
static __always_inline int send_forward_untraced(struct __sk_buff *ctx, const struct flow *f)
{
	metrics_account(f->direction, SLUICE_DROP_NONE, ctx->len);
	return CTX_ACT_OK;
}

#endif /* SLUICE_LIB_TRACE_H */
