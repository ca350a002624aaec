/* SPDX-License-Identifier: Apache-2.0 */
/*
 * struct flow: what the datapath knows about the packet it is deciding. Each
 * pipeline step fills its part (parse.h the tuple and flags, ipcache.h the
 * identities, policy.h the rule) and events.h reports it. It lives on the
 * program's stack (32 bytes); nothing in it outlives the packet.
 */
#ifndef SLUICE_LIB_FLOW_H
#define SLUICE_LIB_FLOW_H

#include "common.h"

struct flow {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;        /* 0 when the packet has no ports (see parse.h) */
	__be16 dport;
	__u8 protocol;       /* IPPROTO_*; 0 before the IP header is parsed */
	__u8 direction;      /* enum sluice_direction */
	__u16 flags;         /* enum sluice_event_flags */
	__u32 src_identity;  /* SLUICE_IDENTITY_UNKNOWN until ipcache.h ran */
	__u32 dst_identity;
	__u32 rule_id;       /* policy_entry.rule_id that matched, 0 if none */
};

static __always_inline void flow_init(struct flow *f, enum sluice_direction dir)
{
	__builtin_memset(f, 0, sizeof(*f));
	f->direction = dir;
}

/*
 * Returns: the identity on the far side of the local endpoint: the
 * destination for traffic leaving the pod (EGRESS), the source for traffic
 * entering it (INGRESS).
 */
static __always_inline __u32 flow_remote_identity(const struct flow *f)
{
	return f->direction == SLUICE_DIR_EGRESS ? f->dst_identity : f->src_identity;
}

#endif /* SLUICE_LIB_FLOW_H */
