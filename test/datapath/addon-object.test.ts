/**
 * Loading objects: errors that name what failed, .rodata globals, and pinned
 * maps that outlive the object and the process that created them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';

import { openObject } from '../../src/datapath/bpf-object.js';
import { openPinnedMap } from '../../src/datapath/bpf-map.js';
import { ensurePinDir, removePinDir } from '../../src/datapath/bpffs.js';
import { BpfError } from '../../src/datapath/errors.js';
import { testRun } from '../../src/datapath/test-run.js';
import { buildFixtures, FIXTURE, packet, pinDirName, REJECT_FIXTURE, runNode, sh, u32, u64 } from './addon-support.js';

before(() => buildFixtures());

describe('object errors', () => {
  test('a missing object file: ENOENT naming the path', () => {
    const path = '/nonexistent/sluice-missing.o';
    assert.throws(
      () => openObject(path),
      (e: BpfError) => e instanceof BpfError && e.code === 'ENOENT' && e.op === 'open' && e.path === path && e.message.includes(path),
    );
  });

  test('a corrupt object file (random bytes): error naming the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-na-'));
    try {
      const path = join(dir, 'garbage.o');
      writeFileSync(path, randomBytes(4096));
      assert.throws(
        () => openObject(path),
        (e: BpfError) => e instanceof BpfError && e.op === 'open' && e.path === path && e.message.includes(path) && e.code === 'LIBBPF_ERRNO__FORMAT',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a program the verifier rejects: load error with the verifier log', () => {
    assert.throws(
      () => openObject(REJECT_FIXTURE),
      (e: BpfError) =>
        e instanceof BpfError &&
        e.op === 'load' &&
        e.code === 'EACCES' &&
        e.path === REJECT_FIXTURE &&
        /invalid access to packet/.test(e.verifierLog ?? '') &&
        /verifier: /.test(e.message) &&
        /na_reject/.test(e.libbpfLog ?? ''),
    );
  });

  test('an unknown .rodata global: error naming it', () => {
    assert.throws(
      () => openObject(FIXTURE, { globals: { no_such_knob: u32(1) } }),
      (e: BpfError) => e.op === 'set_global' && e.code === 'ENOENT' && /'no_such_knob'/.test(e.message) && e.path === FIXTURE,
    );
  });

  test('a global of the wrong size: error naming it and both sizes', () => {
    assert.throws(
      () => openObject(FIXTURE, { globals: { verdict: u64(2n) } }),
      (e: BpfError) => e.op === 'set_global' && e.code === 'EINVAL' && /global 'verdict' is 4 bytes .* got 8/.test(e.message),
    );
  });
});

describe('.rodata globals', () => {
  test('change what the program does', () => {
    const plain = openObject(FIXTURE);
    const tuned = openObject(FIXTURE, { globals: { verdict: u32(2), stamp: Buffer.from([0xab]) } });
    try {
      const data = packet(64);
      const a = testRun(plain.program('na_tc'), { data });
      assert.equal(a.retval, 0); // TC_ACT_OK
      assert.deepEqual(a.data, data);
      const b = testRun(tuned.program('na_tc'), { data });
      assert.equal(b.retval, 2); // TC_ACT_SHOT
      assert.equal(b.data[0], 0xab);
      assert.deepEqual(b.data.subarray(1), data.subarray(1));
    } finally {
      plain.close();
      tuned.close();
    }
  });
});

describe('pinned maps', () => {
  test('survive closing the object and are reused by the next open', () => {
    const pinRoot = pinDirName();
    try {
      const first = openObject(FIXTURE, { pinRoot });
      const id = first.map('na_hash').info.id;
      first.map('na_hash').update(u32(5), u64(55n));
      // Unpinned maps are private to each load.
      first.map('na_lpm').update(Buffer.alloc(8), u32(1));
      first.close();
      assert.ok(existsSync(`${pinRoot}/na_hash`));
      assert.ok(!existsSync(`${pinRoot}/na_lpm`));

      const second = openObject(FIXTURE, { pinRoot });
      try {
        assert.equal(second.map('na_hash').info.id, id, 'the same kernel map, not a new one');
        assert.equal(second.map('na_hash').lookup(u32(5))?.readBigUInt64LE(), 55n);
        assert.equal(second.map('na_lpm').lookup(Buffer.alloc(8)), undefined);
      } finally {
        second.close();
      }

      const pinned = openPinnedMap(`${pinRoot}/na_hash`);
      try {
        assert.equal(pinned.info.name, 'na_hash');
        assert.equal(pinned.lookup(u32(5))?.readBigUInt64LE(), 55n);
      } finally {
        pinned.close();
      }
      assert.throws(() => pinned.lookup(u32(5)), (e: BpfError) => e.code === 'EBADF');
    } finally {
      removePinDir(pinRoot);
    }
  });

  test('written by a child process that has exited, read by us', () => {
    const pinRoot = pinDirName();
    try {
      const out = runNode(`
        import { openObject } from 'DP/bpf-object.js';
        const obj = openObject(${JSON.stringify(FIXTURE)}, { pinRoot: ${JSON.stringify(pinRoot)} });
        const key = Buffer.alloc(4); key.writeUInt32LE(9);
        const value = Buffer.alloc(8); value.writeBigUInt64LE(999n);
        obj.map('na_hash').update(key, value);
        console.log(obj.map('na_hash').info.id);
        obj.close();
      `);
      const childMapId = Number(out.trim());
      const obj = openObject(FIXTURE, { pinRoot });
      try {
        assert.equal(obj.map('na_hash').info.id, childMapId);
        assert.equal(obj.map('na_hash').lookup(u32(9))?.readBigUInt64LE(), 999n);
      } finally {
        obj.close();
      }
    } finally {
      removePinDir(pinRoot);
    }
  });

  test('a pinned map with another layout is refused, naming the pin', () => {
    const pinRoot = pinDirName();
    try {
      ensurePinDir(pinRoot);
      // What an older build with an 8-byte key would have left behind.
      sh('bpftool', ['map', 'create', `${pinRoot}/na_hash`, 'type', 'hash', 'key', '8', 'value', '8', 'entries', '4', 'name', 'na_hash']);
      assert.throws(
        () => openObject(FIXTURE, { pinRoot }),
        (e: BpfError) => e.op === 'load' && e.code === 'EINVAL' && e.message.includes(`couldn't reuse pinned map at '${pinRoot}/na_hash'`),
      );
    } finally {
      removePinDir(pinRoot);
    }
  });

  test('a missing pinned map: error naming the path', () => {
    const path = `${pinDirName()}/na_hash`;
    assert.throws(() => openPinnedMap(path), (e: BpfError) => e.code === 'ENOENT' && e.path === path && e.message.includes(path));
  });
});
