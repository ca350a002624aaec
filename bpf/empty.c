/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The floor for datapath benchmarks: a tc program that does nothing, so that
 * lxc.o's cost can be read as the difference from this one.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int empty(struct __sk_buff *ctx)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Apache-2.0";
