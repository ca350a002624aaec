/** Maglev: the hash against an independent MurmurHash3 (Python's mmh3), balance, order independence, and disruption. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MAGLEV_TABLE_SIZE, maglevTable, murmur3 } from '../../src/lb/maglev.js';

test('murmur3 x86_32 matches mmh3 (every tail length, several seeds)', () => {
  // Reference values from mmh3.hash(key, seed, signed=False).
  const vectors: [string, number, number][] = [
    ['', 0, 0], ['hello', 0, 613153351], ['hello', 0x5eed0001, 2283159574], ['10.0.0.5:8080/TCP', 0x5eed0002, 4095649490],
    ['abc', 1, 2859854335], ['abcd', 0x9747b28c, 4031219239], ['ab', 7, 4264175359], ['10.1.2.3:80/UDP', 0, 3304995334],
  ];
  for (const [key, seed, want] of vectors) assert.equal(murmur3(key, seed), want, `${key} seed ${seed}`);
});

const keys = (n: number, base = 0): string[] => Array.from({ length: n }, (_, i) => `10.${Math.floor((i + base) / 250)}.${(i + base) % 250}.7:8080/TCP`);

function shares(table: Uint32Array, n: number): number[] {
  const c = new Array<number>(n).fill(0);
  for (const i of table) c[i] = (c[i] ?? 0) + 1;
  return c;
}

test('equal backends get shares within one slot of each other, every slot filled', () => {
  for (const n of [1, 2, 3, 10, 100, 1000]) {
    const t = maglevTable(keys(n));
    assert.equal(t.length, DEFAULT_MAGLEV_TABLE_SIZE);
    const s = shares(t, n);
    assert.ok(Math.max(...s) - Math.min(...s) <= 1, `N=${n}: shares ${Math.min(...s)}..${Math.max(...s)}`);
    assert.equal(s.reduce((a, b) => a + b, 0), DEFAULT_MAGLEV_TABLE_SIZE);
  }
});

test('the table depends on the backends, not on the order they are listed in', () => {
  const k = keys(10);
  const shuffled = [...k].reverse();
  const a = maglevTable(k, 1021);
  const b = maglevTable(shuffled, 1021);
  for (let slot = 0; slot < a.length; slot++) assert.equal(k[a[slot] ?? 0], shuffled[b[slot] ?? 0]);
});

test('removing one of N backends moves its own 1/N of the slots and little more (excess over 1/N printed)', () => {
  const M = DEFAULT_MAGLEV_TABLE_SIZE;
  for (const [n, bound] of [[3, 0.01], [10, 0.02], [100, 0.03]] as const) {
    const all = keys(n);
    const before = maglevTable(all, M);
    let worst = 0;
    // Remove each of up to 10 backends in turn.
    for (let removed = 0; removed < Math.min(n, 10); removed++) {
      const rest = all.filter((_, i) => i !== removed);
      const after = maglevTable(rest, M);
      let excess = 0;
      let changed = 0;
      for (let slot = 0; slot < M; slot++) {
        const was = all[before[slot] ?? 0];
        const now = rest[after[slot] ?? 0];
        if (was === now) continue;
        changed++;
        if (was !== all[removed]) excess++;
      }
      assert.ok(changed >= Math.floor(M / n), 'at least the removed backend\'s own slots move');
      worst = Math.max(worst, excess / M);
    }
    console.log(`# maglev M=${M} N=${n}: excess over 1/N, worst of ${Math.min(n, 10)} removals: ${(100 * worst).toFixed(2)}% of the slots`);
    assert.ok(worst < bound, `N=${n}: excess ${(100 * worst).toFixed(2)}% ≥ ${100 * bound}%`);
  }
});

test('bad input is a RangeError naming what is wrong', () => {
  assert.throws(() => maglevTable(keys(3), 1000), /maglev table size 1000: want one of 251, .*16381/);
  assert.throws(() => maglevTable([]), /no backends/);
  assert.throws(() => maglevTable(['a', 'a']), /distinct/);
});
