/**
 * tc attach/query/replace/detach on a veth pair between two network
 * namespaces of our own (sluice-na-<random>-a/-b), with real pings to prove
 * the program runs, and the thread's netns checked unchanged after every call.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import type { LoadedObject } from '../../src/datapath/api.js';
import { openObject } from '../../src/datapath/bpf-object.js';
import { BpfError } from '../../src/datapath/errors.js';
import { attachTc, detachTc, ensureClsact, queryTc, removeClsact } from '../../src/datapath/tc.js';
import { buildFixtures, currentNetnsInode, FIXTURE, runNode, sh, suffix, u32 } from './addon-support.js';

const id = suffix();
const NS_A = `sluice-na-${id}-a`;
const NS_B = `sluice-na-${id}-b`;
const B = `/var/run/netns/${NS_B}`;
const ADDR_B = '10.231.0.2';

function ping(): boolean {
  return spawnSync('ip', ['netns', 'exec', NS_A, 'ping', '-c', '1', '-W', '1', ADDR_B], { stdio: 'ignore' }).status === 0;
}

describe('tc hooks in a netns', () => {
  let obj: LoadedObject;
  let homeNetns: number;

  before(() => {
    buildFixtures();
    homeNetns = currentNetnsInode();
    sh('ip', ['netns', 'add', NS_A]);
    sh('ip', ['netns', 'add', NS_B]);
    sh('ip', ['-n', NS_A, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', NS_B]);
    sh('ip', ['-n', NS_A, 'addr', 'add', '10.231.0.1/30', 'dev', 'va']);
    sh('ip', ['-n', NS_B, 'addr', 'add', `${ADDR_B}/30`, 'dev', 'vb']);
    sh('ip', ['-n', NS_A, 'link', 'set', 'va', 'up']);
    sh('ip', ['-n', NS_B, 'link', 'set', 'vb', 'up']);
    obj = openObject(FIXTURE);
  });

  after(() => {
    obj?.close();
    for (const ns of [NS_A, NS_B]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    assert.equal(currentNetnsInode(), homeNetns);
  });

  test('attach by ifname + netns path, traffic runs through it, replace swaps atomically, detach', () => {
    const ref = { ifname: 'vb', netns: B };
    const tcProg = obj.program('na_tc');
    const dropProg = obj.program('na_tc_drop');
    assert.equal(queryTc(ref, 'ingress'), undefined, 'no clsact yet: nothing attached');
    assert.ok(ping(), 'baseline ping');

    const att = attachTc(ref, 'ingress', tcProg.fd);
    assert.deepEqual({ ...att, ifindex: 0 }, { ifindex: 0, direction: 'ingress', handle: 1, priority: 1, progId: tcProg.id });
    assert.deepEqual(queryTc(ref, 'ingress'), att);
    assert.equal(queryTc(ref, 'egress'), undefined);
    assert.equal(currentNetnsInode(), homeNetns);

    const counters = obj.map('na_pcpu');
    const packets = (): number => {
      const v = counters.lookup(u32(0))!;
      let n = 0;
      for (let off = 0; off < v.length; off += 16) n += v.readUInt32LE(off);
      return n;
    };
    const before = packets();
    assert.ok(ping(), 'ping through the OK program');
    assert.ok(packets() > before, 'the program saw the ping');

    assert.throws(
      () => attachTc(ref, 'ingress', dropProg.fd),
      (e: BpfError) => e.code === 'EEXIST' && e.op === 'tc_attach' && e.ifname === 'vb' && e.message.includes(B),
    );
    const replaced = attachTc(ref, 'ingress', dropProg.fd, { replace: true });
    assert.equal(replaced.progId, dropProg.id);
    assert.equal(queryTc(ref, 'ingress')?.progId, dropProg.id);
    assert.ok(!ping(), 'the drop program drops');

    assert.equal(detachTc(ref, 'ingress'), true);
    assert.equal(detachTc(ref, 'ingress'), false);
    assert.equal(queryTc(ref, 'ingress'), undefined);
    assert.ok(ping(), 'traffic flows again after detach');
    assert.equal(currentNetnsInode(), homeNetns);
  });

  test('by ifindex + netns path, on egress, at another handle/priority', () => {
    const { ifindex } = ensureClsact({ ifname: 'vb', netns: B });
    const ref = { ifindex, netns: B };
    assert.equal(ensureClsact(ref).created, false, 'an existing clsact is fine');
    const att = attachTc(ref, 'egress', obj.program('na_tc').fd, { handle: 7, priority: 3 });
    assert.deepEqual(att, { ifindex, direction: 'egress', handle: 7, priority: 3, progId: obj.program('na_tc').id });
    assert.equal(queryTc(ref, 'egress'), undefined, 'slot (1,1) is empty');
    assert.equal(queryTc(ref, 'egress', { handle: 7, priority: 3 })?.progId, att.progId);
    assert.equal(detachTc(ref, 'egress', { handle: 7, priority: 3 }), true);
    assert.throws(() => attachTc(ref, 'egress', obj.program('na_tc').fd, { priority: 0 }), /priority must be in 1..65535/);
    assert.throws(() => attachTc({ ifname: 'vb', ifindex: ifindex + 100, netns: B }, 'egress', obj.program('na_tc').fd), /does not have the given ifindex/);
  });

  test('from inside the netns (a child process in it), seen from outside', () => {
    const out = runNode(
      `
      import { openObject } from 'DP/bpf-object.js';
      import { attachTc, queryTc } from 'DP/tc.js';
      const obj = openObject(${JSON.stringify(FIXTURE)});
      const att = attachTc({ ifname: 'vb' }, 'ingress', obj.program('na_tc_drop').fd, { priority: 2 });
      console.log(JSON.stringify({ att, query: queryTc({ ifname: 'vb' }, 'ingress', { priority: 2 }) }));
      `,
      NS_B,
    );
    const { att, query } = JSON.parse(out) as { att: { progId: number; ifindex: number }; query: { progId: number } };
    assert.equal(query.progId, att.progId);
    // The filter keeps the program loaded after the child exited.
    const seen = queryTc({ ifname: 'vb', netns: B }, 'ingress', { priority: 2 });
    assert.equal(seen?.progId, att.progId);
    assert.equal(seen?.ifindex, att.ifindex);
    assert.ok(!ping(), "the child's drop program is enforcing");
    assert.equal(detachTc({ ifname: 'vb', netns: B }, 'ingress', { priority: 2 }), true);
    assert.ok(ping());
  });

  test('a missing interface: ENODEV naming it and the netns; our netns unchanged', () => {
    const fd = obj.program('na_tc').fd;
    assert.throws(
      () => attachTc({ ifname: 'sluice-nope0', netns: B }, 'ingress', fd),
      (e: BpfError) => e instanceof BpfError && e.code === 'ENODEV' && e.ifname === 'sluice-nope0' && e.netns === B && /'sluice-nope0' not found in netns/.test(e.message),
    );
    // vb exists only inside NS_B.
    assert.throws(() => queryTc({ ifname: 'vb' }, 'ingress'), (e: BpfError) => e.code === 'ENODEV' && /'vb' not found in the current netns/.test(e.message));
    assert.throws(() => attachTc({ ifindex: 999_999, netns: B }, 'ingress', fd), (e: BpfError) => e.code === 'ENODEV' && /ifindex 999999/.test(e.message));
    assert.throws(
      () => attachTc({ ifname: 'vb', netns: '/var/run/netns/sluice-na-missing' }, 'ingress', fd),
      (e: BpfError) => e.code === 'ENOENT' && e.netns === '/var/run/netns/sluice-na-missing',
    );
    assert.equal(currentNetnsInode(), homeNetns);
  });

  test('removeClsact removes the qdisc and every filter with it', () => {
    const ref = { ifname: 'vb', netns: B };
    attachTc(ref, 'ingress', obj.program('na_tc_drop').fd);
    assert.ok(!ping());
    assert.equal(removeClsact(ref), true);
    assert.equal(removeClsact(ref), false);
    assert.equal(queryTc(ref, 'ingress'), undefined);
    assert.ok(ping());
  });
});
