import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RING_CAPACITY, FlowRing } from '../../src/flow/ring.js';

test('the ring keeps the last capacity items with growing sequence numbers', () => {
  const r = new FlowRing<number>(3);
  assert.equal(new FlowRing<number>().capacity, DEFAULT_RING_CAPACITY);
  for (let i = 0; i < 5; i++) r.push(i);
  assert.deepEqual([r.written, r.size, r.oldest, r.head], [5, 3, 2, 5]);
  assert.deepEqual([...r.all()], [2, 3, 4]);
  assert.deepEqual([...r.reversed()], [4, 3, 2]);
  assert.equal(r.at(1), undefined, 'overwritten');
  assert.equal(r.at(4), 4);
  assert.equal(r.at(5), undefined, 'not written yet');
  assert.throws(() => new FlowRing<number>(0), RangeError);
});
