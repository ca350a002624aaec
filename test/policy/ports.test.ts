/** Port ranges as LPM port prefixes: exact, disjoint, few. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portPrefixRange, portRangeToPrefixes } from '../../src/policy/ports.js';
import { seededRandom } from './random-cluster.js';

function covered(start: number, end: number): Set<number> {
  const out = new Set<number>();
  for (const p of portRangeToPrefixes(start, end)) {
    const { from, to } = portPrefixRange(p);
    for (let port = from; port <= to; port++) {
      assert.ok(!out.has(port), `${start}..${end}: port ${port} covered twice`);
      out.add(port);
    }
  }
  return out;
}

test('a single port is one full-length prefix', () => {
  assert.deepEqual(portRangeToPrefixes(80, 80), [{ port: 80, bits: 16 }]);
});

test('aligned blocks are one prefix each; 1..65535 takes 16', () => {
  assert.deepEqual(portRangeToPrefixes(8000, 8063), [{ port: 8000, bits: 10 }]);
  assert.deepEqual(portRangeToPrefixes(79, 81), [{ port: 79, bits: 16 }, { port: 80, bits: 15 }]);
  assert.deepEqual(portRangeToPrefixes(0, 65535), [{ port: 0, bits: 0 }]);
  assert.deepEqual(portRangeToPrefixes(32768, 65535), [{ port: 32768, bits: 1 }]);
  assert.equal(portRangeToPrefixes(1, 65535).length, 16);
  assert.equal(portRangeToPrefixes(1, 65534).length, 30);
});

test('a prefix has no bits set past its length', () => {
  for (const p of portRangeToPrefixes(79, 9091)) assert.equal(p.port % 2 ** (16 - p.bits), 0, JSON.stringify(p));
});

test('random ranges are covered exactly, each port once, in at most 30 prefixes', () => {
  const rng = seededRandom(7);
  for (let i = 0; i < 300; i++) {
    const a = rng.int(65536);
    const b = Math.min(65535, a + rng.int(rng.chance(0.5) ? 300 : 65536));
    const set = covered(a, b);
    assert.equal(set.size, b - a + 1, `${a}..${b}`);
    assert.ok(set.has(a) && set.has(b));
    assert.ok(portRangeToPrefixes(a, b).length <= 30);
  }
});

test('bad ranges are refused', () => {
  assert.throws(() => portRangeToPrefixes(81, 80), RangeError);
  assert.throws(() => portRangeToPrefixes(-1, 80), RangeError);
  assert.throws(() => portRangeToPrefixes(1, 65536), RangeError);
  assert.throws(() => portRangeToPrefixes(1.5, 2), RangeError);
});
