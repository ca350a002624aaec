/**
 * Pin roots of the load-balancer tests: /sys/fs/bpf/sluice-lbd-<random>,
 * removed in finally.
 */
import { randomBytes } from 'node:crypto';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../../src/datapath/bpffs.js';

export function createLbPinRoot(): string {
  ensureBpffsMounted();
  const dir = `${BPFFS_MOUNT}/sluice-lbd-${randomBytes(6).toString('hex')}`;
  ensurePinDir(dir);
  return dir;
}

export function removeLbPinRoot(dir: string): void {
  removePinDir(dir);
}

export function withLbPinRoot<T>(fn: (pinRoot: string) => T): T {
  const dir = createLbPinRoot();
  try {
    return fn(dir);
  } finally {
    removeLbPinRoot(dir);
  }
}
