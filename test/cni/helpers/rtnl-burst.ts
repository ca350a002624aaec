/**
 * Child of test/cni/rtnl-threads.test.ts, run inside the test's node netns
 * (`ip netns exec`) with libuv's pool at its default 4 threads: a burst of
 * veth creates, then of deletes, through the addon's rtnetlink calls, and
 * what each settled to, as one JSON line on stdout.
 *
 * While each burst is in flight, one probe job goes to libuv's pool (a
 * one-iteration pbkdf2, pool-only work): had the burst's jobs been queued on
 * the pool, the probe would wait behind them. The same probe also runs
 * behind a burst of pool jobs (pbkdf2 of some milliseconds each), the
 * control that shows it does wait then.
 *
 *   node rtnl-burst.js <pod netns path> <count> <prefix>
 */
import { pbkdf2 } from 'node:crypto';
import { netlinkOps, RtnlError } from '../../../src/cni/rtnl.js';

interface Settled {
  readonly ok: boolean;
  readonly value?: unknown;
  readonly errno?: number;
  readonly detail?: string;
}

/** A burst as the probe saw it: the probe's latency, and how many of the burst's jobs had settled before it did. */
interface Timing {
  readonly probeMs: number;
  readonly settledBeforeProbe: number;
  readonly lastMs: number;
}

async function settle<T>(p: Promise<T>): Promise<Settled> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    return e instanceof RtnlError ? { ok: false, errno: e.errno, detail: e.detail } : { ok: false, detail: String(e) };
  }
}

function pbkdf2Job(iterations: number): Promise<void> {
  return new Promise((resolve, reject) => pbkdf2('sluice', 'salt', iterations, 16, 'sha256', (e) => (e === null ? resolve() : reject(e))));
}

/** Starts every job, then the probe on the pool; resolves once all have settled. */
async function burst<T>(jobs: readonly (() => Promise<T>)[]): Promise<{ results: T[]; timing: Timing }> {
  const t0 = performance.now();
  const ends: number[] = [];
  const running = jobs.map((job) => job().finally(() => ends.push(performance.now() - t0)));
  const probeMs = await pbkdf2Job(1).then(() => performance.now() - t0);
  const settledBeforeProbe = ends.length;
  const results = await Promise.all(running);
  return { results, timing: { probeMs, settledBeforeProbe, lastMs: Math.max(...ends) } };
}

const [netns, countText, prefix] = process.argv.slice(2);
if (netns === undefined || countText === undefined || prefix === undefined) throw new Error('usage: rtnl-burst <pod netns> <count> <prefix>');
const count = Number(countText);
const names = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
const mac = (i: number, side: number): string => `02:5e:${side.toString(16).padStart(2, '0')}:00:00:${i.toString(16).padStart(2, '0')}`;

await pbkdf2Job(1); // the pool's threads start on first use: not part of any probe
const creating = await burst(names.map((name, i) => () => settle(netlinkOps.createVeth({
  hostIfname: name, podIfname: `p${i}`, netns, mtu: 1400, hostMac: mac(i, 1), podMac: mac(i, 2),
  alias: `rtnl-burst ${name}`, addresses: [`10.77.0.${i + 1}/32`],
}))));
const deleting = await burst(names.map((name) => () => settle(netlinkOps.linkDel(name))));
const deletedAgain = await Promise.all(names.map((name) => settle(netlinkOps.linkDel(name))));
const badNetns = await settle(netlinkOps.createVeth({
  hostIfname: `${prefix}x`, podIfname: 'px', netns: '/proc/self/ns/no-such-netns', mtu: 1400, hostMac: mac(0, 3), podMac: mac(0, 4),
  alias: 'rtnl-burst bad', addresses: [],
}));
const control = await burst(names.map(() => () => pbkdf2Job(20_000)));
process.stdout.write(`${JSON.stringify({
  created: creating.results, createTiming: creating.timing,
  deleted: deleting.results, deleteTiming: deleting.timing,
  deletedAgain, badNetns,
  controlTiming: control.timing,
})}\n`);
