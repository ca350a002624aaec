/**
 * lxc.o's maps against the generated codecs: every map has the pin name,
 * type and key/value sizes its src/datapath/maps module expects (a drifted
 * layout fails here, not as corrupt entries), maps are shared through the pin
 * root, and a stale pin of another layout is refused. Plus the map modules'
 * own helpers: prefixes, dumps, endpoint entries, conntrack lifetimes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  endpointEntryCodec, SluiceCounter, SluiceDirection, SluiceEndpointFlags, SluiceMapCapacity,
} from '../../src/datapath/generated/abi.js';
import { isBpfError } from '../../src/datapath/errors.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { loadLxc, LXC_MAP_LAYOUTS } from '../../src/datapath/lxc.js';
import { runAs } from '../../src/datapath/lxc-test-run.js';
import { dumpConntrack, flushEndpointConnections, monotonicNowNs } from '../../src/datapath/maps/conntrack.js';
import { dumpCounters, readDatapathCounter } from '../../src/datapath/maps/counters.js';
import { CT_DEFAULTS, effectiveCtConfig, readCtConfig, writeCtConfig } from '../../src/datapath/maps/ct-config.js';
import { dumpEndpoints, endpointEntry, ENDPOINTS_LAYOUT } from '../../src/datapath/maps/endpoints.js';
import { dumpFrag } from '../../src/datapath/maps/frag.js';
import { dumpIpcache, IPCACHE_LAYOUT, ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { formatIpv4, formatIpv4Prefix, parseIpv4, parseIpv4Prefix } from '../../src/datapath/maps/ipv4.js';
import { checkLayout, MapLayoutError } from '../../src/datapath/maps/layout.js';
import { dumpMetrics, metricsIndex } from '../../src/datapath/maps/metrics.js';
import { dumpPolicyV3 } from '../../src/datapath/maps/policy-v3.js';
import { ipv4Fragments, ipv4Frame, TCP_FLAGS } from '../helpers/packet.js';
import { withTestPinRoot } from '../helpers/pins.js';
import { allowAll, allowPorts, isolated } from '../helpers/policy.js';

const ALL = '16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0,*';

const LAYOUTS = LXC_MAP_LAYOUTS;
const endpointAddress = '10.0.1.5';
const endpoint = { endpointId: 1, ipv4: parseIpv4(endpointAddress) };
const { EGRESS, INGRESS } = SluiceDirection;


test('every map in lxc.o has its module\'s pin name, type and codec sizes', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
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

test('maps created without sizes get the compiled capacities of the generated ABI', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const sizes = new Map(dp.object.maps().map((m) => [m.name, m.maxEntries]));
      const C = SluiceMapCapacity;
      assert.deepEqual(Object.fromEntries(['sl_events_v1', 'sl_ipcache_v1', 'sl_iphost_v1', 'sl_policy_v3', 'sl_endpoints_v2',
        'sl_ct_v2', 'sl_frag_v1', 'sl_lxc_v1', 'sl_metrics_v1'].map((name) => [name, sizes.get(name)])), {
        sl_events_v1: C.EVENTS_RING_BYTES, sl_ipcache_v1: C.IPCACHE_MAX_ENTRIES, sl_iphost_v1: C.IPCACHE_MAX_ENTRIES,
        sl_policy_v3: C.POLICY_MAX_ENTRIES, sl_endpoints_v2: C.ENDPOINTS_MAX_ENTRIES, sl_ct_v2: C.CT_MAX_ENTRIES,
        sl_frag_v1: C.FRAG_MAX_ENTRIES, sl_lxc_v1: C.LXC_IFACES_MAX_ENTRIES, sl_metrics_v1: C.METRICS_ENTRIES,
      });
    } finally {
      dp.close();
    }
  });
});

test('a second load (a restart, another build) reuses the pinned maps', () => {
  withTestPinRoot((pinRoot) => {
    const a = loadLxc({ pinRoot });
    const b = loadLxc({ pinRoot });
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
    // An endpoints map as an older layout might have left it: 8-byte keys.
    execFileSync('bpftool', ['map', 'create', join(pinRoot, ENDPOINTS_LAYOUT.name), 'type', 'hash',
      'key', '8', 'value', String(endpointEntryCodec.size), 'entries', '16', 'name', ENDPOINTS_LAYOUT.name,
      'flags', '1']);
    assert.throws(() => loadLxc({ pinRoot }), (err: unknown) => isBpfError(err) && err.op === 'load' &&
      /couldn't reuse pinned map at '[^']*\/sl_endpoints_v2': parameter mismatch/.test(err.libbpfLog ?? ''));
  });
});

test('checkLayout names the property that differs', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const endpoints = dp.object.map(ENDPOINTS_LAYOUT.name).info;
      assert.throws(() => checkLayout(endpoints, { ...ENDPOINTS_LAYOUT, keySize: 8 }),
        (err: unknown) => err instanceof MapLayoutError && err.field === 'keySize' && err.actual === 4 &&
          /sl_endpoints_v2: keySize is 4, expected 8/.test(err.message));
      assert.throws(() => checkLayout(endpoints, IPCACHE_LAYOUT), (err: unknown) =>
        err instanceof MapLayoutError && err.field === 'name');
    } finally {
      dp.close();
    }
  });
});

test('ipcache tiers: /32s live in the host hash, shorter prefixes in the trie, and read as one map', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
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
      dp.maps.endpoints.update(endpoint.endpointId, isolated('egress'));
      dp.maps.policy.updateBatch([allowAll(1, 1001, EGRESS, 11), allowAll(1, 300, EGRESS, 12)]);
      const to = (dst: string): number =>
        runAs(dp.maps.interfaces, endpoint, dp.fromContainer, { data: ipv4Frame({ src: endpointAddress, dst }, { proto: 'udp', sport: 1, dport: 2 }) }).retval;
      assert.equal(to('10.0.2.7'), 0); // allowed as identity 1001 (the /32)
      assert.equal(to('10.9.9.9'), 0); // allowed as identity 300 (the /8)
      assert.equal(to('10.0.2.8'), 2); // identity 1002: no entry, denied
      assert.equal(ipcache.deleteBatch([ipcacheKey('10.0.2.7'), ipcacheKey('10.0.0.0/8')]), 2);
      assert.deepEqual(dumpIpcache(ipcache).map((r) => r.prefix), ['10.0.1.5/32', '10.0.2.8/32']);
    } finally {
      dp.close();
    }
  });
});

test('dumps: ipcache by address, policy with names and port ranges, endpoints, metrics summed and named', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { ipcache, policy, metrics, endpoints } = dp.maps;
      ipcache.update(ipcacheKey('10.0.2.7'), { identity: 1001, flags: 0 });
      ipcache.update(ipcacheKey('10.0.0.0/8'), { identity: 300, flags: 0 });
      ipcache.update(ipcacheKey('0.0.0.0/0'), { identity: 2, flags: 0 });
      assert.deepEqual(dumpIpcache(ipcache).map((r) => `${r.prefix}=${r.identity}`),
        ['0.0.0.0/0=2', '10.0.0.0/8=300', '10.0.2.7/32=1001']);
      policy.updateBatch([allowAll(1, 1001, EGRESS, 5), ...allowPorts(1, 0, INGRESS, 6, 9, 8000, 8063),
        ...allowPorts(1, 1001, INGRESS, 17, 10, 53)]);
      assert.deepEqual(dumpPolicyV3(policy), [
        { endpointId: 1, direction: 'INGRESS', remoteIdentity: 0, protocol: 'TCP', ports: '8000-8063', action: 'ALLOW', ruleId: 9 },
        { endpointId: 1, direction: 'INGRESS', remoteIdentity: 1001, protocol: 'UDP', ports: '53', action: 'ALLOW', ruleId: 10 },
        { endpointId: 1, direction: 'EGRESS', remoteIdentity: 1001, protocol: '*', ports: '*', action: 'ALLOW', ruleId: 5 },
      ]);
      endpoints.update(1, endpointEntry({ ingress: false, egress: false }, 0, { ingress: 0, egress: 0 }));
      endpoints.update(2, isolated('both', 7));
      assert.deepEqual(dumpEndpoints(endpoints), [
        { endpointId: 1, ingressIsolated: false, egressIsolated: false, policyRevision: 0, ingressClasses: '', egressClasses: '',
          policyIncomplete: false, otherFlags: 0 },
        { endpointId: 2, ingressIsolated: true, egressIsolated: true, policyRevision: 7, ingressClasses: ALL, egressClasses: ALL,
          policyIncomplete: false, otherFlags: 0 },
      ]);
      endpoints.update(3, { ...isolated('ingress', 8), flags: SluiceEndpointFlags.INGRESS_ISOLATED | SluiceEndpointFlags.POLICY_INCOMPLETE | 64 });
      assert.deepEqual(dumpEndpoints(endpoints).find((e) => e.endpointId === 3),
        { endpointId: 3, ingressIsolated: true, egressIsolated: false, policyRevision: 8, ingressClasses: ALL, egressClasses: ALL,
          policyIncomplete: true, otherFlags: 64 });
      endpoints.delete(3);
      endpoints.update(1, endpointEntry({ ingress: false, egress: true }, 1));
      const frame = ipv4Frame({ src: '10.0.1.5', dst: '10.0.2.8' }, { proto: 'udp', sport: 1, dport: 2 });
      assert.equal(runAs(dp.maps.interfaces, endpoint, dp.fromContainer, { data: frame }).retval, 2);
      assert.equal(runAs(dp.maps.interfaces, endpoint, dp.toContainer, { data: frame }).retval, 0);
      assert.deepEqual(dumpMetrics(metrics), [
        { direction: 'INGRESS', reason: 'NONE', packets: 1n, bytes: BigInt(frame.length) },
        { direction: 'EGRESS', reason: 'POLICY_DENIED', packets: 1n, bytes: BigInt(frame.length) },
      ]);
    } finally {
      dp.close();
    }
  });
});

test('dumps: conntrack entries as the endpoint sees them, fragments, counters; an endpoint\'s entries flush', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { conntrack, counters, frag } = dp.maps;
      dp.maps.endpoints.update(1, endpointEntry({ ingress: false, egress: false }, 0, { ingress: 0, egress: 0 }));
      const before = monotonicNowNs();
      const syn = ipv4Frame({ src: '10.0.1.5', dst: '10.0.2.7' }, { proto: 'tcp', sport: 40000, dport: 80, flags: TCP_FLAGS.SYN });
      const ping = ipv4Frame({ src: '10.0.2.7', dst: '10.0.1.5' }, { proto: 'icmp', type: 8, code: 0, id: 77 });
      const [first] = ipv4Fragments({ src: '10.0.1.5', dst: '10.0.2.7', id: 0x4242 },
        { proto: 'udp', sport: 5000, dport: 53, payload: Buffer.alloc(64) }, 32);
      assert.ok(first);
      for (const [prog, data] of [[dp.fromContainer, syn], [dp.toContainer, ping], [dp.fromContainer, first]] as const) {
        assert.equal(runAs(dp.maps.interfaces, endpoint, prog, { data }).retval, 0);
      }
      const rows = dumpConntrack(conntrack);
      assert.deepEqual(rows.map(({ expiresInMs: _, ...r }) => r), [
        { endpointId: 1, kind: 'CONN', protocol: 'ICMP', local: '10.0.1.5', remote: '10.0.2.7 id 77', origDirection: 'INGRESS',
          tcpState: 'NONE', flags: [], policyRevision: 0, ruleId: 0, backendId: 0 },
        { endpointId: 1, kind: 'CONN', protocol: 'TCP', local: '10.0.1.5:40000', remote: '10.0.2.7:80', origDirection: 'EGRESS',
          tcpState: 'SYN_SENT', flags: [], policyRevision: 0, ruleId: 0, backendId: 0 },
        { endpointId: 1, kind: 'CONN', protocol: 'UDP', local: '10.0.1.5:5000', remote: '10.0.2.7:53', origDirection: 'EGRESS',
          tcpState: 'NONE', flags: [], policyRevision: 0, ruleId: 0, backendId: 0 },
      ]);
      // Lifetimes: the defaults, counted from the packet (the dump is a little later).
      const elapsedMs = Number((monotonicNowNs() - before) / 1_000_000n) + 1;
      for (const [row, ms] of [[rows[0], CT_DEFAULTS.icmpMs], [rows[1], CT_DEFAULTS.tcpSynMs], [rows[2], CT_DEFAULTS.udpMs]] as const) {
        assert.ok(row && row.expiresInMs <= ms && row.expiresInMs >= ms - elapsedMs, `${row?.protocol}: ${row?.expiresInMs} ms left`);
      }
      assert.deepEqual(dumpFrag(frag), [
        { saddr: '10.0.1.5', daddr: '10.0.2.7', id: 0x4242, protocol: 17, sport: 5000, dport: 53, icmpId: 0 },
      ]);
      assert.deepEqual(dumpCounters(counters), [{ counter: 'CT_CREATED', value: 3n }, { counter: 'FRAG_TRACKED', value: 1n }]);
      assert.equal(readDatapathCounter(counters, SluiceCounter.EVENTS_LOST), 0n);
      assert.throws(() => readDatapathCounter(counters, SluiceCounter.MAX), /no datapath counter 16/);
      assert.equal(flushEndpointConnections(conntrack, 2), 0);
      assert.equal(flushEndpointConnections(conntrack, 1), 3);
      assert.deepEqual(dumpConntrack(conntrack), []);
    } finally {
      dp.close();
    }
  });
});

test('conntrack lifetimes: 0 is the default, writes keep the other fields, nonsense is refused', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { ctConfig } = dp.maps;
      assert.deepEqual(effectiveCtConfig(ctConfig), CT_DEFAULTS);
      writeCtConfig(ctConfig, { udpMs: 1500 });
      writeCtConfig(ctConfig, { tcpFinMs: 2500 });
      assert.deepEqual(readCtConfig(ctConfig), { tcpSynMs: 0, tcpEstablishedMs: 0, tcpFinMs: 2500, tcpClosedMs: 0, udpMs: 1500, icmpMs: 0 });
      assert.deepEqual(effectiveCtConfig(ctConfig), { ...CT_DEFAULTS, tcpFinMs: 2500, udpMs: 1500 });
      assert.throws(() => writeCtConfig(ctConfig, { icmpMs: -1 }), /icmpMs: want 0\.\.2\^32-1 ms, got -1/);
    } finally {
      dp.close();
    }
  });
});

test('the pinned maps open from their pins alone, typed like the loader\'s', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    const pinned = openPinnedDatapathMaps(pinRoot);
    try {
      dp.maps.endpoints.update(9, isolated('ingress', 3));
      assert.deepEqual(pinned.endpoints.lookup(9), isolated('ingress', 3));
      assert.equal(pinned.conntrack.raw.info.id, dp.maps.conntrack.raw.info.id);
      assert.equal(pinned.counters.raw.info.id, dp.maps.counters.raw.info.id);
    } finally {
      pinned.close();
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
