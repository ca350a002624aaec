/**
 * The addon's rtnetlink create and delete run each on a thread of their own
 * (native/src/own_thread.h), not on libuv's 4-thread pool: a burst of many
 * more than 4 must all settle, each with its own result or error, and leave
 * nothing behind. Runs in a node netns of its own; nothing touches the root
 * namespace. Namespaces are sluice-rt-<id>-*, so scripts/test's leak check
 * would see one left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BURST = join(dirname(fileURLToPath(import.meta.url)), 'helpers/rtnl-burst.js');
const COUNT = 24;

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

test(`${COUNT} veth creates and deletes at once through the addon all settle, each with its own outcome, and leave no link`, () => {
  const id = randomBytes(3).toString('hex');
  const nodeNs = `sluice-rt-${id}-node`;
  const podNs = `sluice-rt-${id}-pod`;
  const prefix = `slrt${id}v`;
  try {
    ip('netns', 'add', nodeNs);
    ip('netns', 'add', podNs);
    const r = spawnSync('ip', ['netns', 'exec', nodeNs, process.execPath, BURST, `/run/netns/${podNs}`, String(COUNT), prefix], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { created: Settled[]; readDuringCreates: Settled; deleted: Settled[]; deletedAgain: Settled[]; badNetns: Settled };

    assert.equal(out.created.length, COUNT);
    out.created.forEach((c, i) => {
      assert.ok(c.ok, `create ${i}: ${c.detail ?? ''}`);
      const link = c.value as { ifindex: number; alias: string; up: boolean; mtu: number };
      assert.equal(link.alias, `rtnl-burst ${prefix}${i}`, 'each create resolves with its own link');
      assert.equal(link.up, true);
      assert.equal(link.mtu, 1400);
    });
    assert.equal(new Set(out.created.map((c) => (c.value as { ifindex: number }).ifindex)).size, COUNT, 'distinct links');
    assert.deepEqual(out.readDuringCreates, { ok: true, value: true });
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
