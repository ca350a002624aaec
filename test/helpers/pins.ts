/**
 * Pin roots for tests: /sys/fs/bpf/sluice-t-<random>, one per test file (or
 * test), removed in finally. scripts/test fails the suite if any is left.
 */
import { randomBytes } from 'node:crypto';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../../src/datapath/bpffs.js';

/** prefix: the pin root's name before the random part (a test file's own, e.g. "sluice-lbd"). */
export function createTestPinRoot(prefix = 'sluice-t'): string {
  ensureBpffsMounted();
  const dir = `${BPFFS_MOUNT}/${prefix}-${randomBytes(6).toString('hex')}`;
  ensurePinDir(dir);
  return dir;
}

export function removeTestPinRoot(dir: string): void {
  removePinDir(dir);
}

/** Runs fn with a fresh pin root that is removed afterwards, whatever happens. */
export function withTestPinRoot<T>(fn: (pinRoot: string) => T, prefix?: string): T {
  const dir = createTestPinRoot(prefix);
  try {
    return fn(dir);
  } finally {
    removeTestPinRoot(dir);
  }
}
