/**
 * The BPF filesystem where maps are pinned: is it mounted, make a pin
 * directory, remove one. Pinned maps outlive the agent only on bpffs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, resolve } from 'node:path';

import { BpfError } from './errors.js';

export const BPFFS_MOUNT = '/sys/fs/bpf';

/** statfs f_type of bpffs (BPF_FS_MAGIC in linux/magic.h). */
const BPF_FS_MAGIC = 0xcafe4a11;

/** True when `path` (which must exist) lies on a bpffs mount. */
export function isBpffs(path: string): boolean {
  return statfsSync(path).type === BPF_FS_MAGIC;
}

/** Mounts bpffs at `mountPoint` unless it is already there. Needs root. */
export function ensureBpffsMounted(mountPoint: string = BPFFS_MOUNT): void {
  mkdirSync(mountPoint, { recursive: true });
  if (isBpffs(mountPoint)) return;
  try {
    execFileSync('mount', ['-t', 'bpf', 'bpf', mountPoint], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e);
    throw new BpfError({ errno: constants.errno.EPERM, op: 'mount_bpffs', path: mountPoint, message: `mount bpffs at ${mountPoint}: ${stderr}` });
  }
  if (!isBpffs(mountPoint)) {
    throw new BpfError({ errno: constants.errno.EINVAL, op: 'mount_bpffs', path: mountPoint, message: `${mountPoint} is still not bpffs after mount` });
  }
}

/**
 * Creates a pin directory (and parents). Its parent must already be on bpffs:
 * a directory on any other filesystem would make every pin fail later with a
 * less helpful message.
 */
export function ensurePinDir(dir: string): void {
  const abs = resolve(dir);
  const parent = existingAncestor(abs);
  if (!isBpffs(parent)) {
    throw new BpfError({
      errno: constants.errno.EINVAL,
      op: 'pin_dir',
      path: abs,
      message: `pin directory ${abs} is not on bpffs (${parent} is not; mount it with ensureBpffsMounted())`,
    });
  }
  mkdirSync(abs, { recursive: true });
}

/** Removes a pin directory and every pin under it; refuses anything not on bpffs. */
export function removePinDir(dir: string): void {
  const abs = resolve(dir);
  let onBpffs: boolean;
  try {
    onBpffs = isBpffs(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!onBpffs || abs === resolve(BPFFS_MOUNT)) {
    throw new BpfError({ errno: constants.errno.EINVAL, op: 'pin_dir', path: abs, message: `refusing to remove ${abs}: not a directory below a bpffs mount` });
  }
  rmSync(abs, { recursive: true, force: true });
}

function existingAncestor(path: string): string {
  let p = path;
  for (;;) {
    try {
      statfsSync(p);
      return p;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}
