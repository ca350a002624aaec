/** Pin roots of the load-balancer tests: /sys/fs/bpf/sluice-lbd-<random>, removed in finally. */
import type { HarnessPins } from './lxc-harness.js';
import { createTestPinRoot, removeTestPinRoot, withTestPinRoot } from './pins.js';

const PREFIX = 'sluice-lbd';

export const LB_PINS: HarnessPins = { create: () => createTestPinRoot(PREFIX), remove: removeTestPinRoot };

export function withLbPinRoot<T>(fn: (pinRoot: string) => T): T {
  return withTestPinRoot(fn, PREFIX);
}
