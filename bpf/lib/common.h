/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every datapath header needs: kernel UAPI, libbpf helpers, the ABI and
 * the verdict convention.
 *
 * Verdict convention (house rule 4): a pipeline step returns CTX_ACT_OK to let
 * the packet continue, or a negative enum sluice_drop_reason (-SLUICE_DROP_*)
 * to drop it. Only drop.h turns a negative value into TC_ACT_SHOT, so that
 * every drop is counted and reported exactly once.
 */
#ifndef SLUICE_LIB_COMMON_H
#define SLUICE_LIB_COMMON_H

#include <stdbool.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sluice_abi.h"

#define CTX_ACT_OK TC_ACT_OK
#define CTX_ACT_DROP TC_ACT_SHOT

/* true for a -SLUICE_DROP_* value. */
#define IS_ERR(ret) ((ret) < 0)

/*
 * Compile-time assertion for layout assumptions the datapath relies on; the
 * ABI header is shared, so a change there must fail the build here rather
 * than corrupt a map at run time.
 */
#define BUILD_BUG_ON(cond) _Static_assert(!(cond), #cond)

#endif /* SLUICE_LIB_COMMON_H */
