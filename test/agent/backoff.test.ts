import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, checkBackoffPolicy } from '../../src/agent/backoff.js';
import { sequence } from './helpers/fake-clock.js';

const POLICY = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };

test('without randomness the delays double up to the cap', () => {
  const b = new Backoff(POLICY, () => 0);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => b.next()), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(b.failures, 6);
});

test('jitter takes off up to jitter × the delay, never more', () => {
  const b = new Backoff(POLICY, sequence(0.999999, 0.5, 0.25));
  assert.deepEqual([b.next(), b.next(), b.next()], [50, 150, 350]);
  const full = new Backoff({ ...POLICY, jitter: 1 }, () => 0.999999);
  assert.ok(full.next() <= 1);
});

test('random values outside [0, 1) are clamped', () => {
  assert.equal(new Backoff(POLICY, () => 7).next(), 50);
  assert.equal(new Backoff(POLICY, () => -3).next(), 100);
});

test('reset starts over from the initial delay', () => {
  const b = new Backoff(POLICY, () => 0);
  b.next();
  b.next();
  b.reset();
  assert.equal(b.failures, 0);
  assert.equal(b.next(), 100);
});

test('a very long outage neither overflows nor exceeds the cap', () => {
  const b = new Backoff({ ...POLICY, factor: 10 }, () => 0);
  for (let i = 0; i < 2000; i++) assert.ok(b.next() <= 1000);
});

test('policy checks name the field', () => {
  assert.equal(checkBackoffPolicy(POLICY, 'watch.backoff'), undefined);
  assert.deepEqual(checkBackoffPolicy({ ...POLICY, initialMs: 0 }, 'w')?.field, 'w.initialMs');
  assert.deepEqual(checkBackoffPolicy({ ...POLICY, maxMs: 50 }, 'w')?.field, 'w.maxMs');
  assert.deepEqual(checkBackoffPolicy({ ...POLICY, factor: 0.5 }, 'w')?.field, 'w.factor');
  assert.deepEqual(checkBackoffPolicy({ ...POLICY, jitter: 1.5 }, 'w')?.field, 'w.jitter');
});
