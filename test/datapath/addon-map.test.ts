/**
 * Map operations through the addon on a real kernel: CRUD, iteration, batch
 * (and the per-entry fallback), per-CPU decoding and size checks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { Codec, LoadedObject } from '../../src/datapath/api.js';
import { openObject } from '../../src/datapath/bpf-object.js';
import { BatchSupport, BpfMapType, perCpuMap, rawMap, typedMap } from '../../src/datapath/bpf-map.js';
import { BpfError } from '../../src/datapath/errors.js';
import { testRun } from '../../src/datapath/test-run.js';
import { buildFixtures, FIXTURE, lpmKey, packet, u32, u64 } from './addon-support.js';

const u32Codec: Codec<number> = {
  size: 4,
  encode: (v) => u32(v),
  decode: (b, o = 0) => b.readUInt32LE(o),
};
const u64Codec: Codec<bigint> = {
  size: 8,
  encode: (v) => u64(v),
  decode: (b, o = 0) => b.readBigUInt64LE(o),
};
interface Counter {
  packets: number;
  bytes: number;
  lastLen: number;
}
const counterCodec: Codec<Counter> = {
  size: 12,
  encode: (v) => Buffer.concat([u32(v.packets), u32(v.bytes), u32(v.lastLen)]),
  decode: (b, o = 0) => ({ packets: b.readUInt32LE(o), bytes: b.readUInt32LE(o + 4), lastLen: b.readUInt32LE(o + 8) }),
};

function hexKeys(keys: Iterable<Buffer>): string[] {
  return [...keys].map((k) => k.toString('hex')).sort();
}

describe('addon maps', () => {
  let obj: LoadedObject;
  before(() => {
    buildFixtures();
    obj = openObject(FIXTURE); // no pinRoot: every map is private to this test
  });
  after(() => obj.close());

  test('hash: update modes, lookup, delete, iterate', () => {
    const m = obj.map('na_hash');
    assert.equal(m.info.type, BpfMapType.HASH);
    assert.deepEqual([m.info.keySize, m.info.valueSize, m.info.maxEntries], [4, 8, 64]);
    assert.equal(m.lookup(u32(1)), undefined);
    m.update(u32(1), u64(100n));
    m.update(u32(2), u64(200n), 'noexist');
    assert.throws(() => m.update(u32(2), u64(201n), 'noexist'), (e: BpfError) => e instanceof BpfError && e.code === 'EEXIST');
    assert.throws(() => m.update(u32(3), u64(300n), 'exist'), (e: BpfError) => e.code === 'ENOENT' && e.op === 'map_update');
    m.update(u32(2), u64(202n), 'exist');
    assert.equal(m.lookup(u32(2))?.readBigUInt64LE(), 202n);
    assert.deepEqual(hexKeys(m.keys()), [u32(1), u32(2)].map((k) => k.toString('hex')).sort());
    assert.equal(m.delete(u32(1)), true);
    assert.equal(m.delete(u32(1)), false);
    assert.deepEqual(hexKeys(m.keys()), [u32(2).toString('hex')]);
    m.delete(u32(2));
  });

  test('keys() tolerates deleting each key as it is yielded', () => {
    const m = obj.map('na_hash');
    for (let i = 0; i < 20; i++) m.update(u32(i), u64(BigInt(i)));
    const seen: number[] = [];
    for (const k of m.keys()) {
      seen.push(k.readUInt32LE());
      m.delete(k);
    }
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
    assert.deepEqual([...m.keys()], []);
  });

  test('wrong key or value size: BpfError naming both sizes, map unchanged', () => {
    const m = obj.map('na_hash');
    m.update(u32(7), u64(70n));
    assert.throws(
      () => m.update(Buffer.alloc(3), u64(1n)),
      (e: BpfError) => e instanceof BpfError && e.code === 'EINVAL' && /key is 3 bytes, expected 4/.test(e.message) && /na_hash/.test(e.message),
    );
    assert.throws(() => m.update(u32(8), Buffer.alloc(4)), /value is 4 bytes, expected 8/);
    assert.throws(() => m.lookup(Buffer.alloc(5)), /key is 5 bytes, expected 4/);
    assert.throws(() => m.updateBatch([[u32(9), u64(1n)], [Buffer.alloc(2), u64(2n)]]), /keys\[1\] is 2 bytes, expected 4/);
    assert.deepEqual(hexKeys(m.keys()), [u32(7).toString('hex')]);
    assert.equal(m.lookup(u32(7))?.readBigUInt64LE(), 70n);
    m.delete(u32(7));
  });

  test('hash batch update/delete go through the kernel batch ops', () => {
    const batch = new BatchSupport();
    const m = rawMap(obj.map('na_hash').fd, { batchSupport: batch });
    const entries = Array.from({ length: 10 }, (_, i) => [u32(100 + i), u64(BigInt(i * 10))] as const);
    assert.equal(m.updateBatch(entries), 10);
    assert.equal(batch.supported(BpfMapType.HASH, 'update'), true);
    assert.equal(m.lookup(u32(105))?.readBigUInt64LE(), 50n);
    // noexist on a present key: stops there and reports how many went in.
    assert.throws(
      () => m.updateBatch([[u32(200), u64(1n)], [u32(100), u64(1n)]], 'noexist'),
      (e: BpfError) => e.code === 'EEXIST' && e.applied === 1,
    );
    assert.equal(m.deleteBatch(entries.map(([k]) => k)), 10);
    assert.equal(batch.supported(BpfMapType.HASH, 'delete'), true);
    assert.throws(() => m.deleteBatch([u32(200), u32(999)]), (e: BpfError) => e.code === 'ENOENT' && e.applied === 1);
    assert.deepEqual([...m.keys()], []);
  });

  test('LPM trie: longest-prefix lookups, batch ops, forced per-entry fallback', () => {
    const lpm = obj.map('na_lpm');
    assert.equal(lpm.info.type, BpfMapType.LPM_TRIE);
    const kernel = new BatchSupport();
    const m = rawMap(lpm.fd, { batchSupport: kernel });
    assert.equal(
      m.updateBatch([
        [lpmKey(8, '10.0.0.0'), u32(1)],
        [lpmKey(16, '10.1.0.0'), u32(2)],
        [lpmKey(24, '192.168.1.0'), u32(3)],
      ]),
      3,
    );
    // Measured on the 6.18 kernel: LPM tries have batch update/delete.
    assert.equal(kernel.supported(BpfMapType.LPM_TRIE, 'update'), true);
    assert.equal(m.lookup(lpmKey(32, '10.1.2.3'))?.readUInt32LE(), 2);
    assert.equal(m.lookup(lpmKey(32, '10.2.0.1'))?.readUInt32LE(), 1);
    assert.equal(m.lookup(lpmKey(32, '11.0.0.1')), undefined);
    assert.equal(m.deleteBatch([lpmKey(8, '10.0.0.0'), lpmKey(24, '192.168.1.0')]), 2);
    assert.equal(kernel.supported(BpfMapType.LPM_TRIE, 'delete'), true);
    assert.deepEqual(hexKeys(m.keys()), [lpmKey(16, '10.1.0.0').toString('hex')]);

    // A kernel without LPM batch ops: the same calls go one entry at a time.
    const old = new BatchSupport();
    old.record(BpfMapType.LPM_TRIE, 'update', false);
    old.record(BpfMapType.LPM_TRIE, 'delete', false);
    const perEntry = rawMap(lpm.fd, { batchSupport: old });
    assert.equal(perEntry.updateBatch([[lpmKey(12, '172.16.0.0'), u32(4)], [lpmKey(32, '10.1.0.9'), u32(5)]]), 2);
    assert.equal(m.lookup(lpmKey(32, '172.17.0.1'))?.readUInt32LE(), 4);
    assert.equal(m.lookup(lpmKey(32, '10.1.0.9'))?.readUInt32LE(), 5);
    assert.throws(
      () => perEntry.updateBatch([[lpmKey(16, '10.1.0.0'), u32(6)], [lpmKey(32, '10.1.0.9'), u32(7)]], 'noexist'),
      (e: BpfError) => e.code === 'EEXIST' && e.applied === 0 && e.op === 'map_update',
    );
    assert.equal(perEntry.deleteBatch([lpmKey(12, '172.16.0.0'), lpmKey(32, '10.1.0.9'), lpmKey(16, '10.1.0.0')]), 3);
    assert.deepEqual([...m.keys()], []);
  });

  test('array delete batch: kernel says ENOTSUPP, remembered per map type, per-entry error surfaces', () => {
    const batch = new BatchSupport();
    const pcpu = obj.map('na_pcpu');
    const m = rawMap(pcpu.fd, { batchSupport: batch });
    // Arrays have batch update...
    const zero = Buffer.alloc(m.info.valueSize === 12 ? 16 * perCpuMap(m, u32Codec, counterCodec).cpus : 0);
    assert.equal(m.updateBatch([[u32(3), zero]]), 1);
    assert.equal(batch.supported(BpfMapType.PERCPU_ARRAY, 'update'), true);
    // ...but no batch delete; the fallback then meets arrays' EINVAL for delete.
    assert.throws(() => m.deleteBatch([u32(3)]), (e: BpfError) => e.code === 'EINVAL' && e.op === 'map_delete' && e.applied === 0);
    assert.equal(batch.supported(BpfMapType.PERCPU_ARRAY, 'delete'), false);
  });

  test('per-CPU array: one 8-aligned slot per possible CPU, decoded per CPU', () => {
    const raw = obj.map('na_pcpu');
    const counters = perCpuMap(raw, u32Codec, counterCodec);
    assert.ok(counters.cpus >= 1);
    const before = counters.lookup(0)!;
    assert.equal(before.length, counters.cpus);
    const bytes = raw.lookup(u32(0))!;
    assert.equal(bytes.length, 16 * counters.cpus, 'value_size 12 is rounded to 16 per CPU');

    const runs = 5;
    testRun(obj.program('na_tc'), { data: packet(100), repeat: runs });
    testRun(obj.program('na_tc'), { data: packet(60) });
    const now = counters.lookup(0)!;
    const sum = (vs: Counter[], f: (c: Counter) => number): number => vs.reduce((a, c) => a + f(c), 0);
    assert.equal(sum(now, (c) => c.packets) - sum(before, (c) => c.packets), runs + 1);
    assert.equal(sum(now, (c) => c.bytes) - sum(before, (c) => c.bytes), runs * 100 + 60);
    assert.ok(now.some((c) => c.lastLen === 60));
    const all = [...counters.entries()];
    assert.equal(all.length, raw.info.maxEntries);
    assert.throws(() => typedMap(raw, u32Codec, counterCodec), /per-CPU: use perCpuMap/);
  });

  test('typedMap encodes and decodes through codecs', () => {
    const m = typedMap(obj.map('na_hash'), u32Codec, u64Codec);
    m.update(42, 4242n);
    assert.equal(m.updateBatch([[43, 1n], [44, 2n]]), 2);
    assert.deepEqual(new Map(m.entries()), new Map([[42, 4242n], [43, 1n], [44, 2n]]));
    assert.equal(m.deleteBatch([43, 44]), 2);
    assert.equal(m.lookup(42), 4242n);
    assert.equal(m.delete(42), true);
    assert.throws(() => typedMap(obj.map('na_hash'), u64Codec, u64Codec), /key codec is 8 bytes, the map's key is 4/);
  });

  test('a map of a closed object refuses work instead of using a stale fd', () => {
    const other = openObject(FIXTURE);
    const m = other.map('na_hash');
    m.update(u32(1), u64(1n));
    other.close();
    assert.throws(() => m.lookup(u32(1)), (e: BpfError) => e.code === 'EBADF' && /was closed/.test(e.message));
  });

  test('unknown map or program names the object and what it has', () => {
    assert.throws(() => obj.map('nope'), (e: BpfError) => e.code === 'ENOENT' && e.path === FIXTURE && /na_hash/.test(e.message));
    assert.throws(() => obj.program('nope'), /no program 'nope'.*na_tc/);
  });
});
