/** One instance per distinct JSON value while it is in use. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ValuePool } from '../../src/agent/k8s/value-pool.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('an equal value comes back as the first instance; a different one is its own', () => {
  const pool = new ValuePool();
  const first = { app: 'web', tier: 'front' };
  assert.equal(pool.share(first), first);
  assert.equal(pool.share({ app: 'web', tier: 'front' }), first);
  const other = { app: 'web', tier: 'back' };
  assert.equal(pool.share(other), other);
  const list = [{ name: 'http', containerPort: 80 }];
  assert.equal(pool.share([{ name: 'http', containerPort: 80 }]), pool.share(list));
  assert.equal(pool.size, 3);
  assert.equal(pool.share('text'), 'text', 'primitives pass through');
  assert.equal(pool.share(null), null);
  assert.equal(pool.size, 3);
});

test('a value nobody uses any more leaves the pool', async () => {
  const pool = new ValuePool();
  const kept = pool.share({ keep: true });
  for (let i = 0; i < 100; i++) pool.share({ gone: i });
  assert.equal(pool.size, 101);
  // Finalization callbacks run some time after the collection that found the values dead.
  for (let i = 0; i < 20 && pool.size > 1; i++) {
    gc();
    await sleep(10);
  }
  assert.equal(pool.size, 1);
  assert.equal(pool.share({ keep: true }), kept);
});
