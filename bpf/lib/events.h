/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Flow events to the agent: one struct sluice_event per record in a ring
 * buffer shared by every endpoint's programs (pinned by name).
 */
#ifndef SLUICE_LIB_EVENTS_H
#define SLUICE_LIB_EVENTS_H

#include "common.h"
#include "flow.h"
#include "counters.h"

/* SLUICE_EVENTS_RING_BYTES (sluice_abi.h): the events that fit between two agent reads. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sl_events_v1 SEC(".maps");

/*
 * Emits one event for f. When the ring is full the event is lost, counted
 * as SLUICE_COUNTER_EVENTS_LOST, and the packet's verdict stands:
 * observability never changes forwarding.
 */
static __always_inline void events_emit(const struct __sk_buff *ctx, const struct flow *f,
					__u32 endpoint_id, enum sluice_event_type type,
					enum sluice_verdict verdict, __u32 reason)
{
	struct sluice_event *ev = bpf_ringbuf_reserve(&sl_events_v1, sizeof(*ev), 0);

	if (!ev) {
		counter_inc(SLUICE_COUNTER_EVENTS_LOST);
		return;
	}
	/* Reserved ring memory is not zeroed; zero it so the padding is, too. */
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->timestamp_ns = bpf_ktime_get_ns();
	ev->saddr = f->saddr;
	ev->daddr = f->daddr;
	ev->sport = f->sport;
	ev->dport = f->dport;
	ev->protocol = f->protocol;
	ev->event_type = type;
	ev->verdict = verdict;
	ev->direction = f->direction;
	ev->src_identity = f->src_identity;
	ev->dst_identity = f->dst_identity;
	ev->endpoint_id = endpoint_id;
	ev->ifindex = ctx->ifindex;
	ev->pkt_len = ctx->len;
	ev->drop_reason = reason;
	ev->flags = f->flags;
	ev->rule_id = f->rule_id;
	ev->tcp_flags = f->protocol == IPPROTO_TCP ? f->tcp_flags : 0;
	bpf_ringbuf_submit(ev, 0);
}

#endif /* SLUICE_LIB_EVENTS_H */
