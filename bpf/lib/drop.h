/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one way out for a dropped packet (house rule 4): count it under its
 * reason, report it, return TC_ACT_SHOT. Nothing else returns TC_ACT_SHOT.
 */
#ifndef SLUICE_LIB_DROP_H
#define SLUICE_LIB_DROP_H

#include "common.h"
#include "flow.h"
#include "metrics.h"
#include "events.h"

/*
 * reason is a -SLUICE_DROP_* value as the pipeline returns it.
 * Returns: TC_ACT_SHOT.
 *
 * Workaround (clang 14 codegen): __noinline, a BPF-to-BPF call on the rare
 * drop path instead of one inlined copy per drop site. Inlined, clang kept
 * struct flow in registers and re-materialised all of it at every early
 * exit; out of line, flow stays on the stack and the program shrank from 664
 * to 459 xlated instructions with the fast path unchanged.
 */
static __noinline int send_drop(struct __sk_buff *ctx, const struct flow *f, __u32 endpoint_id,
				int reason)
{
	__u32 why = -reason;

	metrics_account(f->direction, why, ctx->len);
	events_emit(ctx, f, endpoint_id, SLUICE_EVENT_DROP, SLUICE_VERDICT_DROPPED, why);
	return CTX_ACT_DROP;
}

#endif /* SLUICE_LIB_DROP_H */
