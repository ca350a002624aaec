/**
 * The addon's rtnetlink creates and deletes run each on a thread of their own
 * (native/src/own_thread.h), not on libuv's 4-thread pool: with the pool at
 * its default size, a pool job started while 24 creates (then 24 deletes)
 * are in flight settles while nearly all of them still run (in practice
 * before the first: ~1 ms against ≥ 5 ms) — had they been queued on the
 * pool, it would have waited behind 21 of them, as it does behind 24 pool
 * jobs (the control, same child, more than half). And the burst still settles
 * job by job, each with its own result or error, and leaves nothing behind.
 * Runs in a node netns of its own; nothing touches the root namespace.
 * Namespaces are sluice-rt-<id>-*, so scripts/test's leak check would see
 * one left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BURST = join(dirname(fileURLToPath(import.meta.url)), 'helpers/rtnl-burst.js');
const COUNT = 24;

interface Timing {
  readonly probeMs: number;
  readonly settledBeforeProbe: number;
  readonly lastMs: number;
}

interface Settled {
  readonly ok: boolean;
  readonly value?: { ifindex?: number; alias?: string; up?: boolean; mtu?: number } | boolean;
  readonly errno?: number;
  readonly detail?: string;
}

function ip(...args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test(`${COUNT} veth creates, then ${COUNT} deletes, at once through the addon do not queue on libuv's pool; each settles with its own outcome, and no link is left`, () => {
  const id = randomBytes(3).toString('hex');
  const nodeNs = `sluice-rt-${id}-node`;
  const podNs = `sluice-rt-${id}-pod`;
  const prefix = `slrt${id}v`;
  try {
    ip('netns', 'add', nodeNs);
    ip('netns', 'add', podNs);
    const env = { ...process.env };
    delete env['UV_THREADPOOL_SIZE']; // the pool at its default 4 threads, which 24 queued jobs would fill
    const r = spawnSync('ip', ['netns', 'exec', nodeNs, process.execPath, BURST, `/run/netns/${podNs}`, String(COUNT), prefix], { encoding: 'utf8', timeout: 60_000, env });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      created: Settled[]; createTiming: Timing; deleted: Settled[]; deleteTiming: Timing; deletedAgain: Settled[]; badNetns: Settled; controlTiming: Timing;
    };
    const timings = JSON.stringify({ create: out.createTiming, delete: out.deleteTiming, control: out.controlTiming });

    // The probe can see queuing: behind 24 pool jobs it waits until most have settled.
    assert.ok(out.controlTiming.settledBeforeProbe > COUNT / 2, `the control's probe waited behind the pool jobs: ${timings}`);
    // The addon's jobs leave the pool free: the probe settles while nearly all of them still run.
    for (const [what, t] of [['creates', out.createTiming], ['deletes', out.deleteTiming]] as const) {
      assert.ok(t.settledBeforeProbe <= COUNT / 4, `a pool job during ${COUNT} ${what} did not queue behind them: ${timings}`);
      assert.ok(t.probeMs < t.lastMs, `the pool job during the ${what} did not wait for the burst: ${timings}`);
    }

    assert.equal(out.created.length, COUNT);
    out.created.forEach((c, i) => {
      assert.ok(c.ok, `create ${i}: ${c.detail ?? ''}`);
      const link = c.value as { ifindex: number; alias: string; up: boolean; mtu: number };
      assert.equal(link.alias, `rtnl-burst ${prefix}${i}`, 'each create resolves with its own link');
      assert.equal(link.up, true);
      assert.equal(link.mtu, 1400);
    });
    assert.equal(new Set(out.created.map((c) => (c.value as { ifindex: number }).ifindex)).size, COUNT, 'distinct links');
    assert.deepEqual(out.deleted, Array.from({ length: COUNT }, () => ({ ok: true, value: true })), 'every delete found its link');
    assert.deepEqual(out.deletedAgain, Array.from({ length: COUNT }, () => ({ ok: true, value: false })), 'a second delete finds none');
    assert.equal(out.badNetns.ok, false);
    assert.equal(out.badNetns.errno, 2, `ENOENT for a missing netns: ${JSON.stringify(out.badNetns)}`);
    assert.match(out.badNetns.detail ?? '', /no-such-netns/);

    assert.equal(ip('-n', nodeNs, '-o', 'link', 'show').split('\n').filter((l) => l.includes(prefix)).length, 0, 'no host veth left');
    assert.equal(ip('-n', podNs, '-o', 'link', 'show').split('\n').filter((l) => / p\d+@/.test(l)).length, 0, 'no pod end left');
    assert.equal(ip('-n', nodeNs, 'route', 'show').includes('10.77.0.'), false, 'no route left');
  } finally {
    spawnSync('ip', ['netns', 'delete', nodeNs]);
    spawnSync('ip', ['netns', 'delete', podNs]);
  }
});
