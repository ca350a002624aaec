/**
 * BPF_PROG_TEST_RUN of the lxc programs as one endpoint. The programs find
 * their endpoint per packet in sl_lxc_v1 by skb->ifindex (bpf/lib/config.h).
 * A test run has no attachment: the kernel sets skb->dev to the loopback
 * device of the caller's network namespace (ifindex 1 in every namespace)
 * unless the __sk_buff ctx names another device in its ifindex field
 * (net/bpf/test_run.c). So running "as endpoint E" is: write the run's
 * ifindex → E into sl_lxc_v1, then run. The caller owns the pin root (a
 * private one: tests, the policy engine); the write and the run are
 * synchronous, so no other run of this process comes in between.
 */
import type { ProgramInfo, TestRunOptions, TestRunResult } from './api.js';
import type { EndpointConfig } from './generated/abi.js';
import type { LxcInterfacesMap } from './maps/lxc-interfaces.js';
import { testRun } from './test-run.js';

/** skb->ifindex of a test run without a ctx device: the loopback device. */
export const TEST_RUN_IFINDEX = 1;

/** Offset of `ifindex` in struct __sk_buff (include/uapi/linux/bpf.h). */
const SKB_IFINDEX_OFFSET = 40;

/** The ifindex a test run with this ctx sees as skb->ifindex. */
export function testRunIfindex(ctx: Buffer | undefined): number {
  const named = ctx !== undefined && ctx.length >= SKB_IFINDEX_OFFSET + 4 ? ctx.readUInt32LE(SKB_IFINDEX_OFFSET) : 0;
  return named === 0 ? TEST_RUN_IFINDEX : named;
}

/**
 * Makes test runs without a ctx device run as `endpoint` (ipv4 in natural
 * order, as parseIpv4 gives it) until the next call: for a pin root that
 * only ever simulates one endpoint.
 */
export function setTestRunEndpoint(interfaces: LxcInterfacesMap, endpoint: EndpointConfig): void {
  interfaces.update(TEST_RUN_IFINDEX, endpoint);
}

/**
 * Runs `program` on opts.data as `endpoint`: sl_lxc_v1[the run's ifindex] =
 * endpoint, then the run. The entry stays, so a later run of the same
 * interface is the same endpoint.
 */
export function runAs(interfaces: LxcInterfacesMap, endpoint: EndpointConfig, program: ProgramInfo, opts: TestRunOptions): TestRunResult {
  interfaces.update(testRunIfindex(opts.ctx), endpoint);
  return testRun(program, opts);
}
