/**
 * Child of test/cni/rtnl-threads.test.ts, run inside the test's node netns
 * (`ip netns exec`): a burst of veth creates and deletes through the addon's
 * rtnetlink calls, many more at once than libuv's pool has threads, and what
 * each settled to, as one JSON line on stdout.
 *
 *   node rtnl-burst.js <pod netns path> <count> <prefix>
 */
import { readFile } from 'node:fs/promises';
import { netlinkOps, RtnlError } from '../../../src/cni/rtnl.js';

interface Settled {
  readonly ok: boolean;
  readonly value?: unknown;
  readonly errno?: number;
  readonly detail?: string;
}

async function settle<T>(p: Promise<T>): Promise<Settled> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    return e instanceof RtnlError ? { ok: false, errno: e.errno, detail: e.detail } : { ok: false, detail: String(e) };
  }
}

const [netns, countText, prefix] = process.argv.slice(2);
if (netns === undefined || countText === undefined || prefix === undefined) throw new Error('usage: rtnl-burst <pod netns> <count> <prefix>');
const count = Number(countText);
const names = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
const mac = (i: number, side: number): string => `02:5e:${side.toString(16).padStart(2, '0')}:00:00:${i.toString(16).padStart(2, '0')}`;

const creating = names.map((name, i) => settle(netlinkOps.createVeth({
  hostIfname: name, podIfname: `p${i}`, netns, mtu: 1400, hostMac: mac(i, 1), podMac: mac(i, 2),
  alias: `rtnl-burst ${name}`, addresses: [`10.77.0.${i + 1}/32`],
})));
// The pool stays free for the process's own file reads while every create is in flight.
const readDuringCreates = await settle(readFile('/proc/self/status', 'utf8').then((s) => s.length > 0));
const created = await Promise.all(creating);
const deleted = await Promise.all(names.map((name) => settle(netlinkOps.linkDel(name))));
const deletedAgain = await Promise.all(names.map((name) => settle(netlinkOps.linkDel(name))));
const badNetns = await settle(netlinkOps.createVeth({
  hostIfname: `${prefix}x`, podIfname: 'px', netns: '/proc/self/ns/no-such-netns', mtu: 1400, hostMac: mac(0, 3), podMac: mac(0, 4),
  alias: 'rtnl-burst bad', addresses: [],
}));
process.stdout.write(`${JSON.stringify({ created, readDuringCreates, deleted, deletedAgain, badNetns })}\n`);
