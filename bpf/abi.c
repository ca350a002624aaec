/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Never loaded. Compiled only so that its BTF carries every ABI type, from
 * which scripts/gen-abi.mjs generates the TypeScript codecs. A type that is
 * not referenced here does not reach TypeScript.
 */
#include <linux/in.h>
#include "sluice_abi.h"

/* The datapath compares packets with the kernel's IPPROTO_*; the ABI's names must be the same numbers. */
_Static_assert(SLUICE_IPPROTO_ICMP == IPPROTO_ICMP, "SLUICE_IPPROTO_ICMP");
_Static_assert(SLUICE_IPPROTO_TCP == IPPROTO_TCP, "SLUICE_IPPROTO_TCP");
_Static_assert(SLUICE_IPPROTO_UDP == IPPROTO_UDP, "SLUICE_IPPROTO_UDP");
_Static_assert(SLUICE_IPPROTO_SCTP == IPPROTO_SCTP, "SLUICE_IPPROTO_SCTP");

struct sluice_abi_anchor {
	struct ipcache_key ipcache_key;
	struct ipcache_entry ipcache_entry;
	struct policy_entry policy_entry;
	struct policy_key policy_key;
	struct endpoint_entry endpoint_entry;
	struct ct_key ct_key;
	struct ct_entry ct_entry;
	struct ct_config ct_config;
	struct frag_key frag_key;
	struct frag_entry frag_entry;
	struct counter_value counter_value;
	struct metrics_value metrics_value;
	struct global_config global_config;
	struct endpoint_config endpoint_config;
	struct lxc_address_key lxc_address_key;
	struct lxc_address lxc_address;
	struct node_route_key node_route_key;
	struct node_route node_route;
	struct sluice_event sluice_event;
	struct lb_svc_key lb_svc_key;
	struct lb_svc_entry lb_svc_entry;
	struct lb_backend lb_backend;
	struct lb_table_key lb_table_key;
	struct lb_affinity_key lb_affinity_key;
	struct lb_affinity_entry lb_affinity_entry;
	struct lb_nat_key lb_nat_key;
	struct lb_nat_entry lb_nat_entry;
	struct lb_sock_key lb_sock_key;
	struct lb_sock_entry lb_sock_entry;
	enum sluice_identity_reserved identity_reserved;
	enum sluice_direction direction;
	enum sluice_drop_reason drop_reason;
	enum sluice_verdict verdict;
	enum sluice_event_type event_type;
	enum sluice_event_flags event_flags;
	enum sluice_config_flags config_flags;
	enum sluice_policy_action policy_action;
	enum sluice_policy_class policy_class;
	enum sluice_endpoint_flags endpoint_flags;
	enum sluice_ct_tcp_state ct_tcp_state;
	enum sluice_ct_flags ct_flags;
	enum sluice_ct_default_ms ct_default_ms;
	enum sluice_counter counter;
	enum sluice_ip_proto ip_proto;
	enum sluice_map_capacity map_capacity;
	enum sluice_lb_scope lb_scope;
	enum sluice_lb_set lb_set;
	enum sluice_lb_algorithm lb_algorithm;
	enum sluice_lb_svc_flags lb_svc_flags;
	enum sluice_lb_backend_flags lb_backend_flags;
	enum sluice_lb_const lb_const;
	enum sluice_lb_nat_role lb_nat_role;
};

struct sluice_abi_anchor sluice_abi_anchor __attribute__((used));
