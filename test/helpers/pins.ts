/**
 * Pin roots for tests: /sys/fs/bpf/sluice-t-<random>, one per test file (or
 * test), removed in finally. scripts/test fails the suite if any is left.
 */
import { randomBytes } from 'node:crypto';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../../src/datapath/bpffs.js';

export function createTestPinRoot(): string {
  ensureBpffsMounted();
  const dir = `${BPFFS_MOUNT}/sluice-t-${randomBytes(6).toString('hex')}`;
  ensurePinDir(dir);
  return dir;
}

export function removeTestPinRoot(dir: string): void {
  removePinDir(dir);
}

/** Runs fn with a fresh pin root that is removed afterwards, whatever happens. */
export function withTestPinRoot<T>(fn: (pinRoot: string) => T): T {
  const dir = createTestPinRoot();
  try {
    return fn(dir);
  } finally {
    removeTestPinRoot(dir);
  }
}
