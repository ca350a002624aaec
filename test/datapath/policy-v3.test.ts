/**
 * src/datapath/maps/policy-v3.ts (and policy-key.ts): port ranges as port
 * classes (exhaustively against brute force for edge and random ranges,
 * then against the kernel's hash, looked up class by class as the datapath
 * does), key construction, its inverse and their refusals, class masks, the
 * dump.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceDirection, SluicePolicyAction, SluicePolicyClass, type PolicyKey } from '../../src/datapath/generated/abi.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import {
  ALL_POLICY_CLASSES, dumpPolicyV3, formatPolicyClasses, policyClassesOf, policyKey, policyKeysForPorts, policyMatchOf,
  portPrefixRange, portRangeToPrefixes, type PortPrefix,
} from '../../src/datapath/maps/policy-v3.js';
import { IP_PROTOCOL } from '../../src/policy/protocols.js';
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

const { NO_PORTS, PORT_FULL } = SluicePolicyClass;

test('policyKey: no ports = class NO_PORTS, protocol = class 0, a port prefix its bits; refusals name the problem', () => {
  const base = { endpointId: 3, remoteIdentity: 300, direction: SluiceDirection.INGRESS };
  assert.deepEqual(policyKey(base), { ...base, protocol: 0, portPrefixlen: NO_PORTS, dport: 0 });
  assert.deepEqual(policyKey({ ...base, protocol: IP_PROTOCOL.SCTP }), { ...base, protocol: 132, portPrefixlen: 0, dport: 0 });
  assert.deepEqual(policyKey({ ...base, protocol: IP_PROTOCOL.TCP, port: { port: 443, bits: 16 } }),
    { ...base, protocol: 6, portPrefixlen: PORT_FULL, dport: 443 });
  assert.deepEqual(policyKeysForPorts(base, IP_PROTOCOL.UDP, 8080, 8090).map((k) => [k.portPrefixlen, k.dport]),
    [[13, 8080], [15, 8088], [16, 8090]]);
  assert.throws(() => policyKey({ ...base, port: { port: 80, bits: 16 } }), /a port \(80\/16\) needs a protocol/);
  assert.throws(() => policyKey({ ...base, protocol: 1 }), /protocol 1 has no ports; want one of TCP, UDP, SCTP or none/);
  assert.throws(() => policyKey({ ...base, protocol: 6, port: { port: 81, bits: 15 } }), /81\/15 has bits set past its length/);
  assert.throws(() => policyKey({ ...base, protocol: 6, port: { port: 80, bits: 17 } }), /80\/17/);
});

test('policyMatchOf inverts policyKey and refuses keys it never makes', () => {
  const base = { endpointId: 3, remoteIdentity: 300, direction: SluiceDirection.EGRESS };
  const matches = [base, { ...base, protocol: 17 }, { ...base, protocol: 6, port: { port: 8064, bits: 11 } },
    { ...base, remoteIdentity: 0, protocol: 132, port: { port: 65535, bits: 16 } }];
  for (const m of matches) {
    const back = policyMatchOf(policyKey(m));
    assert.ok(back !== undefined);
    assert.deepEqual(policyKey(back), policyKey(m));
  }
  const tcp80 = policyKey({ ...base, protocol: 6, port: { port: 80, bits: 16 } });
  const foreign: [string, PolicyKey][] = [
    ['no ports, with a protocol', { ...policyKey(base), protocol: 6 }],
    ['no ports, with a port', { ...policyKey(base), dport: 80 }],
    ['bits past the prefix', { ...tcp80, dport: 81, portPrefixlen: 12 }],
    ['a class out of range', { ...tcp80, portPrefixlen: 18 }],
    ['a protocol without ports', { ...tcp80, protocol: 1 }],
  ];
  for (const [why, k] of foreign) assert.equal(policyMatchOf(k), undefined, why);
});

test('class masks: one bit per class used, formatted most specific first', () => {
  const base = { endpointId: 3, remoteIdentity: 300, direction: SluiceDirection.INGRESS };
  const keys = [policyKey(base), ...policyKeysForPorts(base, 6, 8000, 8100), ...policyKeysForPorts(base, 17, 53, 53)];
  const mask = policyClassesOf(keys);
  assert.equal(mask, 2 ** 10 + 2 ** 11 + 2 ** 14 + 2 ** 16 + 2 ** NO_PORTS);
  assert.equal(formatPolicyClasses(mask), '16,14,11,10,*');
  assert.equal(formatPolicyClasses(0), '');
  assert.equal(ALL_POLICY_CLASSES, 2 ** 18 - 1);
  assert.equal(formatPolicyClasses(ALL_POLICY_CLASSES), '16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1,0,*');
  assert.equal(formatPolicyClasses((ALL_POLICY_CLASSES + 2 ** 20) >>> 0).endsWith(',*,0x100000?'), true);
});

test('the kernel\'s hash agrees: looked up class by class, every port of random ranges matches once, its neighbours never', () => {
  withTestPinRoot((pinRoot) => {
    const dp = loadLxc({ pinRoot });
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
        const keys = policyKeysForPorts(base, IP_PROTOCOL.TCP, start, end);
        policy.updateBatch(keys.map((k) => [k, { action: SluicePolicyAction.ALLOW, ruleId }] as const));
        const classes = [...new Set(keys.map((k) => k.portPrefixlen))];
        // The datapath's lookups: each class of the mask, the port masked to it. Every port, so nothing hides between blocks.
        for (let port = 0; port < 65536; port++) {
          let hits = 0;
          for (const c of classes) {
            const dport = c === 0 ? 0 : port & ((0xffff << (16 - c)) & 0xffff);
            const hit = policy.lookup({ ...base, protocol: IP_PROTOCOL.TCP, portPrefixlen: c, dport });
            if (hit !== undefined) hits += hit.ruleId === ruleId ? 1 : 100;
          }
          const want = port >= start && port <= end ? 1 : 0;
          if (hits !== want) assert.fail(`${start}-${end}: port ${port} matched ${hits} times`);
        }
        // Another protocol never matches a TCP range.
        assert.equal(policy.lookup({ ...base, protocol: IP_PROTOCOL.UDP, portPrefixlen: keys[0]?.portPrefixlen ?? 0, dport: start }),
          undefined);
        if (ruleId === 2) {
          assert.deepEqual(dumpPolicyV3(policy), [{ endpointId: 5, direction: 'EGRESS', remoteIdentity: 400, protocol: 'TCP',
            ports: '8000-8063', action: 'ALLOW', ruleId: 2 }]);
        }
        assert.equal(policy.deleteBatch(keys), keys.length);
      }
    } finally {
      dp.close();
    }
  });
});
