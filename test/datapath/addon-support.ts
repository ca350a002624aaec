/**
 * Shared setup of the addon tests: fixture objects (compiled on demand by
 * scripts/build-test-bpf), unique pin directories and network namespaces that
 * the tests remove in finally, and a runner for child node processes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ensureBpffsMounted } from '../../src/datapath/bpffs.js';

/** Repository root (this file runs from dist/test/datapath/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURE = resolve(ROOT, 'build/test-bpf/na_fixture.o');
export const REJECT_FIXTURE = resolve(ROOT, 'build/test-bpf/na_reject.o');
const DIST_DATAPATH = resolve(ROOT, 'dist/src/datapath');

/** Compiles test/fixtures/bpf/*.c when they changed. */
export function buildFixtures(): void {
  execFileSync('bash', [resolve(ROOT, 'scripts/build-test-bpf')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export function suffix(): string {
  return randomBytes(4).toString('hex');
}

/** A fresh, not yet created pin directory under bpffs (mounted if needed). */
export function pinDirName(): string {
  ensureBpffsMounted();
  return `/sys/fs/bpf/sluice-t-${suffix()}`;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

export function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

/** struct na_lpm_key {__u32 prefixlen; __be32 addr;} */
export function lpmKey(prefixlen: number, dotted: string): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(prefixlen, 0);
  Buffer.from(dotted.split('.').map(Number)).copy(b, 4);
  return b;
}

/** An Ethernet + IPv4 + UDP frame, enough for a tc program under test-run. */
export function packet(length = 64, fill = 0x11): Buffer {
  const b = Buffer.alloc(length, fill);
  b.writeUInt16BE(0x0800, 12);
  return b;
}

/** The inode of our thread's netns: it must be the same after every netns operation. */
export function currentNetnsInode(): number {
  return Number(execFileSync('stat', ['-L', '-c', '%i', '/proc/thread-self/ns/net']).toString().trim());
}

/**
 * Runs an ES module snippet in a child node that can import the compiled
 * datapath modules as `DP/<module>.js`. With `netns`, the child runs inside
 * it (ip netns exec). Returns stdout; throws with stderr on failure.
 */
export function runNode(code: string, netns?: string): string {
  const script = code.replaceAll('DP/', `file://${DIST_DATAPATH}/`);
  const argv = ['node', '--input-type=module', '-e', script];
  const cmd = netns === undefined ? argv : ['ip', 'netns', 'exec', netns, ...argv];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`child failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
