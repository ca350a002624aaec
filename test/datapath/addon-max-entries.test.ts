/**
 * Map sizes set between open and load (OpenOptions.maxEntries): the size the
 * kernel map gets, the errors that name what is wrong, and pinned maps, which
 * keep their size (a pin of another size than asked for is refused, not
 * recreated; a loader that asks nothing takes the pin's size).
 */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { before, test } from 'node:test';

import { openObject } from '../../src/datapath/bpf-object.js';
import { removePinDir } from '../../src/datapath/bpffs.js';
import { BpfError } from '../../src/datapath/errors.js';
import { buildFixtures, FIXTURE, pinDirName, u32, u64 } from './addon-support.js';

before(() => buildFixtures());

test('maxEntries sizes the map: the kernel refuses the entry past it (E2BIG)', () => {
  const obj = openObject(FIXTURE, { maxEntries: { na_hash: 3 } });
  try {
    const map = obj.map('na_hash');
    assert.equal(map.info.maxEntries, 3);
    assert.equal(obj.map('na_lpm').info.maxEntries, 64, 'maps not named keep their compiled size');
    for (const k of [1, 2, 3]) map.update(u32(k), u64(BigInt(k)));
    assert.throws(() => map.update(u32(4), u64(4n)), (e: BpfError) => e.errno === constants.errno.E2BIG);
    map.update(u32(2), u64(22n)); // an existing key still updates in a full map
  } finally {
    obj.close();
  }
});

test('an unknown map name: error listing the maps of the object', () => {
  assert.throws(
    () => openObject(FIXTURE, { maxEntries: { na_hahs: 8 } }),
    (e: BpfError) => e instanceof BpfError && e.op === 'max_entries' && e.code === 'ENOENT' && e.path === FIXTURE &&
      /no map 'na_hahs' in .*na_fixture\.o \(has: .*na_hash.*\)/.test(e.message),
  );
});

test('0, a fraction or a negative size: error naming the map, before anything is loaded', () => {
  for (const n of [0, 1.5, -1, Number.NaN, 2 ** 32]) {
    assert.throws(
      () => openObject(FIXTURE, { maxEntries: { na_hash: n } }),
      (e: BpfError) => e instanceof BpfError && e.op === 'max_entries' && e.code === 'EINVAL' && e.message.startsWith(`maxEntries.na_hash: ${String(n)} `),
      String(n),
    );
  }
});

test('a pinned map keeps its size: another size is refused naming both, none or the same reuses it', () => {
  const pinRoot = pinDirName();
  try {
    const first = openObject(FIXTURE, { pinRoot, maxEntries: { na_hash: 8 } });
    const id = first.map('na_hash').info.id;
    first.map('na_hash').update(u32(7), u64(77n));
    first.close();

    assert.throws(
      () => openObject(FIXTURE, { pinRoot, maxEntries: { na_hash: 16 } }),
      (e: BpfError) => e instanceof BpfError && e.op === 'max_entries' && e.code === 'EEXIST' &&
        e.message.includes(`map 'na_hash' is pinned at ${pinRoot}/na_hash with max_entries 8, wanted 16`),
    );
    for (const opts of [{ pinRoot }, { pinRoot, maxEntries: { na_hash: 8 } }]) {
      const again = openObject(FIXTURE, opts);
      try {
        const map = again.map('na_hash');
        assert.equal(map.info.id, id, 'the pinned map, not a new one');
        assert.equal(map.info.maxEntries, 8);
        assert.equal(map.lookup(u32(7))?.readBigUInt64LE(), 77n, 'its entries are kept');
      } finally {
        again.close();
      }
    }
  } finally {
    removePinDir(pinRoot);
  }
});
