/**
 * The load balancer's map modules: byte layouts of the generated codecs as
 * the datapath reads them (wire-order address and port, explicit zero
 * padding), the maps lxc.o creates against their layouts, the backend
 * tables (a new inner array per replace, read back through its id), dumps,
 * and the flow hash's spread over a Maglev table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { BpfMapType } from '../../src/datapath/bpf-map.js';
import {
  lbAffinityEntryCodec, lbAffinityKeyCodec, lbBackendCodec, lbSvcEntryCodec, lbSvcKeyCodec, lbTableKeyCodec,
  SluiceIpProto, SluiceLbAlgorithm, SluiceLbBackendFlags, SluiceLbConst, SluiceLbScope, SluiceLbSet, SluiceLbSvcFlags,
  SluiceMapCapacity,
} from '../../src/datapath/generated/abi.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import { dumpLbAffinity, flushServiceAffinity } from '../../src/datapath/maps/lb-affinity.js';
import { dumpLbBackends } from '../../src/datapath/maps/lb-backends.js';
import { LB_MAP_LAYOUTS } from '../../src/datapath/maps/lb-maps.js';
import { dumpLbServices, formatFrontend } from '../../src/datapath/maps/lb-services.js';
import { kernelInnerMaps, LB_TABLE_MAX_BACKENDS, lbFlowHash } from '../../src/datapath/maps/lb-tables.js';
import { isBpfError } from '../../src/datapath/errors.js';
import { formatIpv4, parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { checkLayout } from '../../src/datapath/maps/layout.js';
import { maglevTable } from '../../src/lb/maglev.js';
import { withLbPinRoot } from '../helpers/lb-pins.js';

const VIP = parseIpv4('10.96.0.10');
const { TCP, UDP } = SluiceIpProto;

test('frontend key: address and port in wire order, then protocol and scope', () => {
  const b = lbSvcKeyCodec.encode({ addr: VIP, port: 8080, protocol: UDP, scope: SluiceLbScope.EXTERNAL });
  assert.deepEqual([...b], [10, 96, 0, 10, 0x1f, 0x90, 17, 1]);
  const e = lbSvcEntryCodec.encode({ serviceId: 7, affinityTimeoutS: 10800, backendSet: SluiceLbSet.LOCAL,
    algorithm: SluiceLbAlgorithm.MAGLEV, flags: SluiceLbSvcFlags.EMPTY_DROP });
  assert.deepEqual([...e], [7, 0, 0, 0, 0x30, 0x2a, 0, 0, 1, 2, 1, 0]);
});

test('backend, table key and affinity: wire-order addresses, host-order ids, zero padding', () => {
  assert.deepEqual([...lbBackendCodec.encode({ addr: parseIpv4('10.0.1.7'), port: 443, flags: SluiceLbBackendFlags.NOT_SELECTABLE, serviceId: 0x01020304 })],
    [10, 0, 1, 7, 0x01, 0xbb, 1, 0, 4, 3, 2, 1]);
  assert.deepEqual([...lbTableKeyCodec.encode({ serviceId: 0xffffffff, backendSet: 1 })], [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]);
  assert.deepEqual([...lbAffinityKeyCodec.encode({ serviceId: 5, clientAddr: parseIpv4('10.0.2.3') })], [5, 0, 0, 0, 10, 0, 2, 3]);
  const a = lbAffinityEntryCodec.encode({ lastUsedNs: 2n ** 64n - 1n, backendId: 9 });
  assert.equal(a.length, 16);
  assert.deepEqual([...a.subarray(12)], [0, 0, 0, 0]);
});

test('the hairpin address is 169.254.42.1 (link-local)', () => {
  assert.equal(formatIpv4(SluiceLbConst.HAIRPIN_ADDR), '169.254.42.1');
});

test('lxc.o creates the lb maps with their layouts and compiled capacities', () => {
  withLbPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const infos = new Map(dp.object.maps().map((m) => [m.name, m]));
      for (const layout of LB_MAP_LAYOUTS) {
        const info = infos.get(layout.name);
        assert.ok(info, layout.name);
        checkLayout(info, layout);
      }
      const C = SluiceMapCapacity;
      assert.deepEqual(LB_MAP_LAYOUTS.map((l) => infos.get(l.name)?.maxEntries),
        [C.LB_SVC_MAX_ENTRIES, C.LB_BE_MAX_ENTRIES, C.LB_TBL_MAX_ENTRIES, C.LB_AFF_MAX_ENTRIES, C.LB_NAT_MAX_ENTRIES]);
      assert.equal(infos.get('sl_lb_tbl_v1')?.type, BpfMapType.HASH_OF_MAPS);
    } finally {
      dp.close();
    }
  });
});

test('tables: replace swaps in a new inner array, read returns it, delete removes it', () => {
  withLbPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { tables } = dp.maps.lb;
      const key = { serviceId: 3, backendSet: SluiceLbSet.CLUSTER };
      assert.equal(tables.read(key), undefined);
      tables.replace(key, [11, 12, 13]);
      const firstId = tables.raw.lookup(lbTableKeyCodec.encode(key))?.readUInt32LE(0);
      assert.deepEqual([...(tables.read(key) ?? [])], [11, 12, 13]);
      tables.replace(key, [12]);
      assert.deepEqual([...(tables.read(key) ?? [])], [12]);
      assert.notEqual(tables.raw.lookup(lbTableKeyCodec.encode(key))?.readUInt32LE(0), firstId, 'a new inner map, not a rewrite');
      tables.replace({ serviceId: 3, backendSet: SluiceLbSet.LOCAL }, []);
      assert.deepEqual([...(tables.read({ serviceId: 3, backendSet: SluiceLbSet.LOCAL }) ?? [1])], []);
      assert.deepEqual(tables.keys().sort((a, b) => a.backendSet - b.backendSet), [key, { serviceId: 3, backendSet: SluiceLbSet.LOCAL }]);
      assert.equal(tables.delete(key), true);
      assert.equal(tables.read(key), undefined);
      assert.equal(tables.delete(key), false);
    } finally {
      dp.close();
    }
  });
});

test('tables: a Maglev table of the default size round-trips; 0 ids and oversized tables are refused', () => {
  withLbPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { tables } = dp.maps.lb;
      const slots = maglevTable(['10.0.1.1:80/TCP', '10.0.1.2:80/TCP', '10.0.1.3:80/TCP']);
      const ids = slots.map((i) => 100 + i);
      const key = { serviceId: 9, backendSet: SluiceLbSet.CLUSTER };
      tables.replace(key, ids);
      assert.deepEqual(tables.read(key), ids);
      assert.throws(() => tables.replace(key, [1, 0]), RangeError);
      assert.throws(() => tables.replace(key, new Uint32Array(LB_TABLE_MAX_BACKENDS + 1).fill(1)), RangeError);
      assert.deepEqual(tables.read(key), ids, 'a refused replace leaves the table in place');
      tables.replace(key, new Uint32Array(LB_TABLE_MAX_BACKENDS).fill(4));
      assert.equal(tables.read(key)?.length, 131071);
    } finally {
      dp.close();
    }
  });
});

test('dumps: frontends, backends and affinities read back as rows; a service\'s affinities flush', () => {
  withLbPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { services, backends, affinity } = dp.maps.lb;
      services.update({ addr: VIP, port: 53, protocol: UDP, scope: SluiceLbScope.POD },
        { serviceId: 1, affinityTimeoutS: 0, backendSet: SluiceLbSet.CLUSTER, algorithm: SluiceLbAlgorithm.RANDOM, flags: 0 });
      services.update({ addr: VIP, port: 53, protocol: TCP, scope: SluiceLbScope.POD },
        { serviceId: 2, affinityTimeoutS: 30, backendSet: SluiceLbSet.LOCAL, algorithm: SluiceLbAlgorithm.MAGLEV, flags: SluiceLbSvcFlags.EMPTY_DROP });
      assert.deepEqual(dumpLbServices(services), [
        { frontend: '10.96.0.10:53/TCP', scope: 'POD', serviceId: 2, backendSet: 'LOCAL', algorithm: 'MAGLEV', affinityTimeoutS: 30, whenEmpty: 'drop' },
        { frontend: '10.96.0.10:53/UDP', scope: 'POD', serviceId: 1, backendSet: 'CLUSTER', algorithm: 'RANDOM', affinityTimeoutS: 0, whenEmpty: 'reject' },
      ]);
      assert.equal(formatFrontend({ addr: VIP, port: 80, protocol: TCP }), '10.96.0.10:80/TCP');
      backends.update(5, { addr: parseIpv4('10.0.1.5'), port: 5353, flags: SluiceLbBackendFlags.NOT_SELECTABLE, serviceId: 1 });
      backends.update(4, { addr: parseIpv4('10.0.1.4'), port: 5353, flags: 0, serviceId: 1 });
      assert.deepEqual(dumpLbBackends(backends), [
        { backendId: 4, serviceId: 1, address: '10.0.1.4:5353', state: 'active' },
        { backendId: 5, serviceId: 1, address: '10.0.1.5:5353', state: 'serving-only' },
      ]);
      const now = 10_000_000_000n;
      affinity.update({ serviceId: 1, clientAddr: parseIpv4('10.0.2.2') }, { lastUsedNs: now - 2_000_000_000n, backendId: 4 });
      affinity.update({ serviceId: 2, clientAddr: parseIpv4('10.0.2.2') }, { lastUsedNs: now, backendId: 7 });
      assert.deepEqual(dumpLbAffinity(affinity, now), [
        { serviceId: 1, client: '10.0.2.2', backendId: 4, idleMs: 2000 },
        { serviceId: 2, client: '10.0.2.2', backendId: 7, idleMs: 0 },
      ]);
      assert.equal(flushServiceAffinity(affinity, 1), 1);
      assert.deepEqual(dumpLbAffinity(affinity, now).map((r) => r.serviceId), [2]);
    } finally {
      dp.close();
    }
  });
});

test('flow hash: every input matters, and flows spread evenly over a Maglev table\'s slots', () => {
  const base = { clientAddr: parseIpv4('10.0.2.2'), clientPort: 40000, frontendPort: 80, protocol: TCP };
  const h = lbFlowHash(base);
  assert.equal(lbFlowHash({ ...base }), h);
  for (const change of [{ clientAddr: base.clientAddr + 1 }, { clientPort: 40001 }, { frontendPort: 81 }, { protocol: UDP }]) {
    assert.notEqual(lbFlowHash({ ...base, ...change }), h, JSON.stringify(change));
  }
  // 30000 client ports into 3 thirds of a 16381-slot table: each third within 5% of its share.
  const counts = [0, 0, 0];
  for (let port = 1024; port < 31024; port++) {
    const slot = lbFlowHash({ ...base, clientPort: port }) % 16381;
    counts[Math.floor((slot * 3) / 16381)]! += 1;
  }
  for (const c of counts) assert.ok(Math.abs(c - 10000) < 500, `thirds ${counts.join(' ')}`);
});

test('tables: replaceMany swaps many tables with batched outer updates; a bad table refuses the whole call', () => {
  withLbPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { tables } = dp.maps.lb;
      const many = Array.from({ length: 300 }, (_, i) => [{ serviceId: i + 1, backendSet: SluiceLbSet.CLUSTER }, [i + 1, i + 2]] as const);
      tables.replaceMany(many);
      assert.equal(tables.keys().length, 300);
      for (const [key, ids] of [many[0]!, many[299]!]) assert.deepEqual([...(tables.read(key) ?? [])], ids);
      assert.throws(() => tables.replaceMany([[{ serviceId: 1, backendSet: 0 }, [5]], [{ serviceId: 2, backendSet: 0 }, [0]]]), RangeError);
      assert.deepEqual([...(tables.read({ serviceId: 1, backendSet: 0 }) ?? [])], [1, 2], 'checked before anything is written');
    } finally {
      dp.close();
    }
  });
});

test('tables: deleteMany removes many tables with batched outer deletes; a key without a table counts as removed', () => {
  withLbPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { tables } = dp.maps.lb;
      const key = (i: number): { serviceId: number; backendSet: number } => ({ serviceId: i + 1, backendSet: SluiceLbSet.CLUSTER });
      tables.replaceMany(Array.from({ length: 600 }, (_, i) => [key(i), [i + 1]] as const));
      // 599 of them, with a key that never had a table in the middle of a batch, and one table kept.
      const gone = [...Array.from({ length: 300 }, (_, i) => key(i)), key(5000), ...Array.from({ length: 299 }, (_, i) => key(i + 300))];
      const t0 = performance.now();
      assert.deepEqual(tables.deleteMany(gone), []);
      const ms = performance.now() - t0;
      assert.deepEqual(tables.keys().map((k) => k.serviceId), [600]);
      assert.deepEqual([...(tables.read(key(599)) ?? [])], [600]);
      process.stderr.write(`# deleteMany: 600 keys in ${ms.toFixed(0)} ms\n`);
    } finally {
      dp.close();
    }
  });
});

test('tables: an inner array is filled and read whole by one batch syscall each way; a freed one reads as gone; an overfill is refused', () => {
  withLbPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
    try {
      const { tables } = dp.maps.lb;
      const slots = maglevTable(Array.from({ length: 7 }, (_, i) => `10.0.3.${i}:80/TCP`));
      const ids = slots.map((i) => 1000 + i);
      const key = { serviceId: 12, backendSet: SluiceLbSet.CLUSTER };
      tables.replace(key, ids);
      const innerId = tables.innerId(key);
      assert.ok(innerId !== undefined);
      assert.deepEqual(tables.readInner(innerId), ids);
      const inner = kernelInnerMaps.openById(innerId);
      try {
        const all = inner.readAll();
        assert.equal(all.length, ids.length + 1);
        assert.equal(all[0], ids.length, 'element 0: the count');
        assert.deepEqual(all.subarray(1), ids);
      } finally {
        inner.close();
      }
      tables.replace(key, [1]);
      assert.notEqual(tables.innerId(key), innerId);
      assert.equal(tables.readInner(innerId), undefined, 'the replaced inner array is gone');

      const small = kernelInnerMaps.create({ type: BpfMapType.ARRAY, name: 'sl_lbp_t', keySize: 4, valueSize: 4, maxEntries: 4 });
      try {
        small.fill(Uint32Array.of(9, 8, 7, 6));
        assert.deepEqual([...small.readAll()], [9, 8, 7, 6]);
        assert.throws(() => small.fill(Uint32Array.of(1, 2, 3, 4, 5)), (e) => isBpfError(e) && e.errno === constants.errno.E2BIG);
      } finally {
        small.close();
      }
    } finally {
      dp.close();
    }
  });
});
