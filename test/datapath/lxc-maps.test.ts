/**
 * lxc.o's maps against the generated codecs: every map has the pin name,
 * type and key/value sizes its src/datapath/maps module expects (a drifted
 * layout fails here, not as corrupt entries), maps are shared through the pin
 * root, and a stale pin of another layout is refused. Plus the map modules'
 * own helpers: prefixes, dumps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  policyKeyCodec, policyEntryCodec, SluiceDirection, SluicePolicyAction,
} from '../../src/datapath/generated/abi.js';
import { isBpfError } from '../../src/datapath/errors.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import { CONFIG_LAYOUT } from '../../src/datapath/maps/config.js';
import { EVENTS_LAYOUT } from '../../src/datapath/maps/events.js';
import { dumpIpcache, IPCACHE_LAYOUT, IPHOST_LAYOUT, ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { formatIpv4, formatIpv4Prefix, parseIpv4, parseIpv4Prefix } from '../../src/datapath/maps/ipv4.js';
import { checkLayout, MapLayoutError, type MapLayout } from '../../src/datapath/maps/layout.js';
import { dumpMetrics, METRICS_LAYOUT, metricsIndex } from '../../src/datapath/maps/metrics.js';
import { dumpPolicy, POLICY_LAYOUT } from '../../src/datapath/maps/policy.js';
import { testRun } from '../../src/datapath/test-run.js';
import { ipv4Frame } from '../helpers/packet.js';
import { withTestPinRoot } from '../helpers/pins.js';

const LAYOUTS: readonly MapLayout[] = [IPCACHE_LAYOUT, IPHOST_LAYOUT, POLICY_LAYOUT, METRICS_LAYOUT, CONFIG_LAYOUT, EVENTS_LAYOUT];
const endpointAddress = '10.0.1.5';
const endpoint = { endpointId: 1, ipv4: parseIpv4(endpointAddress) };

function policyDenyEgress(dp: ReturnType<typeof loadLxc>, remoteIdentity: number, ruleId: number): void {
  dp.maps.policy.update({ endpointId: endpoint.endpointId, remoteIdentity, direction: SluiceDirection.EGRESS },
    { action: SluicePolicyAction.DENY, ruleId });
}


test('every map in lxc.o has its module\'s pin name, type and codec sizes', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot, endpoint });
    try {
      // Only .rodata besides ours: a new map must get a module and a layout.
      const maps = dp.object.maps().filter((m) => !m.name.endsWith('.rodata'));
      assert.deepEqual(maps.map((m) => m.name).sort(), LAYOUTS.map((l) => l.name).sort());
      for (const layout of LAYOUTS) {
        const info = maps.find((m) => m.name === layout.name);
        assert.ok(info, layout.name);
        checkLayout(info, layout);
        assert.ok(layout.name.length <= 15, `${layout.name}: BPF names hold 15 characters`);
        assert.ok(existsSync(join(pinRoot, layout.name)), `${layout.name} pinned by name`);
      }
      assert.equal(dp.fromContainer.name, 'from_container');
      assert.equal(dp.toContainer.name, 'to_container');
    } finally {
      dp.close();
    }
  });
});

test('a second endpoint reuses the pinned maps', () => {
  withTestPinRoot((pinRoot) => {
    const a = loadLxc({ pinRoot, endpoint });
    const b = loadLxc({ pinRoot, endpoint: { endpointId: 2, ipv4: parseIpv4('10.0.1.6') } });
    try {
      for (const layout of LAYOUTS) {
        assert.equal(b.object.map(layout.name).info.id, a.object.map(layout.name).info.id, layout.name);
      }
      a.maps.ipcache.update(ipcacheKey('10.0.0.0/8'), { identity: 300, flags: 0 });
      assert.deepEqual(dumpIpcache(b.maps.ipcache), [{ prefix: '10.0.0.0/8', identity: 300, flags: 0 }]);
      assert.notEqual(b.fromContainer.id, a.fromContainer.id);
    } finally {
      b.close();
      a.close();
    }
  });
});

test('a stale pin with another layout is refused, not reused', () => {
  withTestPinRoot((pinRoot) => {
    // A policy map as an older layout might have left it: 8-byte keys.
    execFileSync('bpftool', ['map', 'create', join(pinRoot, POLICY_LAYOUT.name), 'type', 'hash',
      'key', '8', 'value', String(policyEntryCodec.size), 'entries', '16', 'name', POLICY_LAYOUT.name]);
    assert.throws(() => loadLxc({ pinRoot, endpoint }), (err: unknown) => isBpfError(err) && err.op === 'load' &&
      /couldn't reuse pinned map at '[^']*\/sl_policy_v1': parameter mismatch/.test(err.libbpfLog ?? ''));
  });
});

test('checkLayout names the property that differs', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot, endpoint });
    try {
      const policy = dp.object.map(POLICY_LAYOUT.name).info;
      assert.throws(() => checkLayout(policy, { ...POLICY_LAYOUT, keySize: policyKeyCodec.size + 4 }),
        (err: unknown) => err instanceof MapLayoutError && err.field === 'keySize' && err.actual === 12 &&
          /sl_policy_v1: keySize is 12, expected 16/.test(err.message));
      assert.throws(() => checkLayout(policy, IPCACHE_LAYOUT), (err: unknown) =>
        err instanceof MapLayoutError && err.field === 'name');
    } finally {
      dp.close();
    }
  });
});

test('ipcache tiers: /32s live in the host hash, shorter prefixes in the trie, and read as one map', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot, endpoint });
    try {
      const { ipcache } = dp.maps;
      const applied = ipcache.updateBatch([
        [ipcacheKey('10.0.2.7'), { identity: 1001, flags: 0 }],
        [ipcacheKey('10.0.0.0/8'), { identity: 300, flags: 0 }],
        [ipcacheKey('10.0.2.8'), { identity: 1002, flags: 0 }],
      ]);
      assert.equal(applied, 3);
      assert.deepEqual([...ipcache.hosts.entries()].map(([k]) => k.prefixlen), [32, 32]);
      assert.deepEqual([...ipcache.prefixes.entries()].map(([k]) => k.prefixlen), [8]);
      assert.deepEqual(ipcache.lookup(ipcacheKey('10.0.2.8')), { identity: 1002, flags: 0 });
      assert.deepEqual(ipcache.lookup(ipcacheKey('10.0.0.0/8')), { identity: 300, flags: 0 });
      // The datapath sees the /32 over the /8 it sits in, and the /8 for its other addresses.
      ipcache.update(ipcacheKey(endpointAddress), { identity: 1500, flags: 0 });
      policyDenyEgress(dp, 1001, 11);
      policyDenyEgress(dp, 300, 12);
      const to = (dst: string): number =>
        testRun(dp.fromContainer, { data: ipv4Frame({ src: endpointAddress, dst }, { proto: 'udp', sport: 1, dport: 2 }) }).retval;
      assert.equal(to('10.0.2.7'), 2); // denied as identity 1001 (the /32)
      assert.equal(to('10.9.9.9'), 2); // denied as identity 300 (the /8)
      assert.equal(to('10.0.2.8'), 0); // identity 1002: no entry, passes
      assert.equal(ipcache.deleteBatch([ipcacheKey('10.0.2.7'), ipcacheKey('10.0.0.0/8')]), 2);
      assert.deepEqual(dumpIpcache(ipcache).map((r) => r.prefix), ['10.0.1.5/32', '10.0.2.8/32']);
    } finally {
      dp.close();
    }
  });
});

test('dumps: ipcache by address, policy with enum names, metrics summed and named', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot, endpoint });
    try {
      const { ipcache, policy, metrics } = dp.maps;
      ipcache.update(ipcacheKey('10.0.2.7'), { identity: 1001, flags: 0 });
      ipcache.update(ipcacheKey('10.0.0.0/8'), { identity: 300, flags: 0 });
      ipcache.update(ipcacheKey('0.0.0.0/0'), { identity: 2, flags: 0 });
      assert.deepEqual(dumpIpcache(ipcache).map((r) => `${r.prefix}=${r.identity}`),
        ['0.0.0.0/0=2', '10.0.0.0/8=300', '10.0.2.7/32=1001']);
      policy.update({ endpointId: 1, remoteIdentity: 1001, direction: SluiceDirection.EGRESS },
        { action: SluicePolicyAction.DENY, ruleId: 5 });
      assert.deepEqual(dumpPolicy(policy),
        [{ endpointId: 1, direction: 'EGRESS', remoteIdentity: 1001, action: 'DENY', ruleId: 5 }]);
      const frame = ipv4Frame({ src: '10.0.1.5', dst: '10.0.2.7' }, { proto: 'udp', sport: 1, dport: 2 });
      assert.equal(testRun(dp.fromContainer, { data: frame }).retval, 2);
      assert.equal(testRun(dp.toContainer, { data: frame }).retval, 0);
      assert.deepEqual(dumpMetrics(metrics), [
        { direction: 'INGRESS', reason: 'NONE', packets: 1n, bytes: BigInt(frame.length) },
        { direction: 'EGRESS', reason: 'POLICY_DENIED', packets: 1n, bytes: BigInt(frame.length) },
      ]);
    } finally {
      dp.close();
    }
  });
});

test('metricsIndex matches metrics_index() in C and refuses slots that do not exist', () => {
  assert.equal(metricsIndex(SluiceDirection.INGRESS, 0), 0);
  assert.equal(metricsIndex(SluiceDirection.EGRESS, 1), 65);
  assert.throws(() => metricsIndex(2, 0), /no metrics slot/);
  assert.throws(() => metricsIndex(0, 64), /no metrics slot/);
});

test('IPv4 addresses and prefixes parse strictly and format back', () => {
  assert.equal(parseIpv4('10.0.0.1'), 0x0a000001);
  assert.equal(formatIpv4(0xc0a80001), '192.168.0.1');
  assert.deepEqual(parseIpv4Prefix('10.1.0.0/16'), { addr: 0x0a010000, prefixlen: 16 });
  assert.deepEqual(parseIpv4Prefix('10.1.2.3'), { addr: 0x0a010203, prefixlen: 32 });
  assert.equal(formatIpv4Prefix(parseIpv4Prefix('0.0.0.0/0')), '0.0.0.0/0');
  assert.throws(() => parseIpv4Prefix('10.1.2.3/16'), /host bits set.*10\.1\.0\.0\/16/);
  assert.throws(() => parseIpv4Prefix('10.1.0.0/33'), /over 32/);
  for (const bad of ['10.0.0', '10.0.0.01', '10.0.0.1.2', '256.0.0.1', ' 10.0.0.1', '10.0.0.1/']) {
    assert.throws(() => parseIpv4Prefix(bad), RangeError, bad);
  }
});
