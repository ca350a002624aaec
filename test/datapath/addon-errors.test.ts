/** BpfError: codes for kernel, kernel-internal and libbpf errnos; batch progress. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BpfError, errnoCode, isBpfError } from '../../src/datapath/errors.js';

test('errno codes: POSIX names, ENOTSUPP (524), libbpf codes, unknown', () => {
  assert.equal(errnoCode(2), 'ENOENT');
  assert.equal(errnoCode(95), 'EOPNOTSUPP');
  assert.equal(errnoCode(11), 'EAGAIN');
  assert.equal(errnoCode(524), 'ENOTSUPP');
  assert.equal(errnoCode(4007), 'LIBBPF_ERRNO__VERIFY');
  assert.equal(errnoCode(99999), 'E99999');
});

test('a BpfError carries its details; withApplied keeps them and adds progress', () => {
  const e = new BpfError({ errno: 17, op: 'map_update', message: "map 'm': update: File exists", path: '/p' });
  assert.ok(e instanceof Error && isBpfError(e));
  assert.deepEqual([e.name, e.code, e.op, e.path, e.applied], ['BpfError', 'EEXIST', 'map_update', '/p', undefined]);
  const w = e.withApplied(3);
  assert.deepEqual([w.code, w.op, w.path, w.message, w.applied], ['EEXIST', 'map_update', '/p', e.message, 3]);
  assert.ok(!('ifname' in w));
  assert.equal(isBpfError(new Error('x')), false);
});
