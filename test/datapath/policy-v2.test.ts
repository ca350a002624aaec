/**
 * src/datapath/maps/policy-v2.ts: port ranges as LPM prefixes (exhaustively
 * against brute force for edge and random ranges, then against the kernel's
 * own LPM trie), key construction and its refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceDirection, SluicePolicyAction, SluicePolicyPrefix } from '../../src/datapath/generated/abi.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import {
  policyLpmKey, policyLpmKeysForPorts, portPrefixRange, portRangeToPrefixes, PORT_PROTOCOLS, type PortPrefix,
} from '../../src/datapath/maps/policy-v2.js';
import { withTestPinRoot } from '../helpers/pins.js';

/** Deterministic pseudo-random generator, so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

/** Which ports the prefixes cover, and how often (a port covered twice is a bug too). */
function coverage(prefixes: readonly PortPrefix[]): Uint8Array {
  const hits = new Uint8Array(65536);
  for (const p of prefixes) {
    const { from: start, to: end } = portPrefixRange(p);
    for (let port = start; port <= end; port++) hits[port] = (hits[port] ?? 0) + 1;
  }
  return hits;
}

/** The fewest aligned blocks: brute force over every block size at every step. */
function minimalCount(start: number, end: number): number {
  let n = 0;
  for (let at = start; at <= end; n++) {
    let size = 1;
    for (let k = 16; k >= 0; k--) {
      if (at % 2 ** k === 0 && at + 2 ** k - 1 <= end) {
        size = 2 ** k;
        break;
      }
    }
    at += size;
  }
  return n;
}

function checkRange(start: number, end: number): void {
  const prefixes = portRangeToPrefixes(start, end);
  const hits = coverage(prefixes);
  for (let port = 0; port < 65536; port++) {
    const want = port >= start && port <= end ? 1 : 0;
    if (hits[port] !== want) assert.fail(`${start}-${end}: port ${port} covered ${hits[port]} times, want ${want}`);
  }
  for (const p of prefixes) {
    assert.ok(Number.isInteger(p.bits) && p.bits >= 0 && p.bits <= 16, `${start}-${end}: bits ${p.bits}`);
    assert.equal(p.port % 2 ** (16 - p.bits), 0, `${start}-${end}: ${p.port}/${p.bits} has bits past its length`);
  }
  const ports = prefixes.map((p) => p.port);
  assert.deepEqual(ports, [...ports].sort((a, b) => a - b), 'ascending');
  assert.equal(prefixes.length, minimalCount(start, end), `${start}-${end}: not minimal`);
  assert.ok(prefixes.length <= 30);
}

test('portRangeToPrefixes: edge ranges cover exactly their ports, minimally', () => {
  const edges: [number, number][] = [
    [0, 0], [65535, 65535], [0, 65535], [1, 65534], [0, 65534], [1, 65535], [80, 80], [8000, 8063], [8000, 8064],
    [1024, 2047], [1023, 2048], [32768, 65535], [32767, 32768], [0, 1], [1, 2], [65534, 65535],
  ];
  for (const [start, end] of edges) checkRange(start, end);
  assert.deepEqual(portRangeToPrefixes(0, 65535), [{ port: 0, bits: 0 }]);
  assert.deepEqual(portRangeToPrefixes(80, 80), [{ port: 80, bits: 16 }]);
  assert.deepEqual(portRangeToPrefixes(8000, 8063), [{ port: 8000, bits: 10 }]); // 8000 = 125 * 64
  assert.deepEqual(portRangeToPrefixes(8080, 8090).map((p) => `${p.port}/${p.bits}`), ['8080/13', '8088/15', '8090/16']);
  assert.equal(portRangeToPrefixes(1, 65534).length, 30);
});

test('portRangeToPrefixes: 400 random ranges cover exactly their ports, minimally', () => {
  const next = prng(20260101);
  for (let i = 0; i < 400; i++) {
    // Half small ranges (endPort near port, the common case), half anywhere.
    const a = next() % 65536;
    const b = i % 2 === 0 ? Math.min(65535, a + (next() % 300)) : next() % 65536;
    checkRange(Math.min(a, b), Math.max(a, b));
  }
});

test('portRangeToPrefixes refuses what is not a range of ports', () => {
  for (const [s, e] of [[-1, 5], [5, 65536], [10, 9], [1.5, 3], [Number.NaN, 1]] as const) {
    assert.throws(() => portRangeToPrefixes(s, e), /port range .*: want integers 0 ≤ start ≤ end ≤ 65535/, `${s}-${e}`);
  }
});

test('policyLpmKey: no ports = prefix 72, protocol = 80, a port prefix 80 + bits; refusals name the problem', () => {
  const base = { endpointId: 3, remoteIdentity: 300, direction: SluiceDirection.INGRESS };
  assert.deepEqual(policyLpmKey(base), { prefixlen: SluicePolicyPrefix.PEER, ...base, protocol: 0, dport: 0 });
  assert.deepEqual(policyLpmKey({ ...base, protocol: PORT_PROTOCOLS.SCTP }),
    { prefixlen: SluicePolicyPrefix.PROTO, ...base, protocol: 132, dport: 0 });
  assert.deepEqual(policyLpmKey({ ...base, protocol: PORT_PROTOCOLS.TCP, port: { port: 443, bits: 16 } }),
    { prefixlen: SluicePolicyPrefix.FULL, ...base, protocol: 6, dport: 443 });
  assert.deepEqual(policyLpmKeysForPorts(base, PORT_PROTOCOLS.UDP, 8080, 8090).map((k) => [k.prefixlen, k.dport]),
    [[93, 8080], [95, 8088], [96, 8090]]);
  assert.throws(() => policyLpmKey({ ...base, port: { port: 80, bits: 16 } }), /a port \(80\/16\) needs a protocol/);
  assert.throws(() => policyLpmKey({ ...base, protocol: 1 }), /protocol 1 has no ports; want one of TCP, UDP, SCTP or none/);
  assert.throws(() => policyLpmKey({ ...base, protocol: 6, port: { port: 81, bits: 15 } }), /81\/15 has bits set past its length/);
  assert.throws(() => policyLpmKey({ ...base, protocol: 6, port: { port: 80, bits: 17 } }), /80\/17/);
});

test('the kernel\'s LPM trie agrees: every port of random ranges matches, its neighbours do not', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot, endpoint: { endpointId: 1, ipv4: 0 } });
    try {
      const { policy } = dp.maps;
      const next = prng(7);
      const base = { endpointId: 5, remoteIdentity: 400, direction: SluiceDirection.EGRESS };
      const ranges: [number, number][] = [[0, 65535], [1, 65534], [8000, 8063]];
      for (let i = 0; i < 5; i++) {
        const a = next() % 65536;
        const b = Math.min(65535, a + (next() % 5000));
        ranges.push([a, b]);
      }
      for (const [ruleId, [start, end]] of ranges.entries()) {
        const keys = policyLpmKeysForPorts(base, PORT_PROTOCOLS.TCP, start, end);
        policy.updateBatch(keys.map((k) => [k, { action: SluicePolicyAction.ALLOW, ruleId }] as const));
        // A packet's lookup: the full 96 bits. Every port, so nothing hides between the prefixes.
        for (let port = 0; port < 65536; port++) {
          const hit = policy.lookup({ prefixlen: SluicePolicyPrefix.FULL, ...base, protocol: PORT_PROTOCOLS.TCP, dport: port });
          const want = port >= start && port <= end;
          if ((hit?.ruleId === ruleId) !== want) assert.fail(`${start}-${end}: port ${port} matched ${JSON.stringify(hit)}`);
        }
        // Another protocol never matches a TCP range.
        assert.equal(policy.lookup({ prefixlen: SluicePolicyPrefix.FULL, ...base, protocol: PORT_PROTOCOLS.UDP, dport: start }), undefined);
        assert.equal(policy.deleteBatch(keys), keys.length);
      }
    } finally {
      dp.close();
    }
  });
});
