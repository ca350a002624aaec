/**
 * Temp dirs of control planes whose owner died without cleaning up. Exit
 * hooks remove the dir on a normal exit or SIGINT/SIGTERM, and pdeathsig kills
 * the components even on SIGKILL, but nothing can remove the dir after a
 * SIGKILL. Each dir therefore records its owner's pid, and the next start()
 * removes dirs whose owner is gone (on /dev/shm they would hold memory until
 * reboot).
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive } from './process.js';

export const DIR_PREFIX = 'sluice-cp-';
const OWNER_FILE = 'owner.pid';

export function writeOwner(dir: string, pid = process.pid): void {
  writeFileSync(join(dir, OWNER_FILE), `${pid}\n`, { mode: 0o600 });
}

/**
 * Removes `base/sluice-cp-*` dirs whose owner.pid names a dead process.
 * A dir without owner.pid may be one being created right now: it is kept.
 * Returns the removed paths.
 */
export function sweepStaleDirs(base: string): string[] {
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const dir = join(base, name);
    let pid: number;
    try {
      pid = Number.parseInt(readFileSync(join(dir, OWNER_FILE), 'utf8'), 10);
    } catch {
      continue;
    }
    if (Number.isInteger(pid) && pid > 0 && !isProcessAlive(pid)) {
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    }
  }
  return removed;
}
