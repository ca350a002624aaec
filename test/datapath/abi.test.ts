/**
 * The generated codecs (src/datapath/generated/abi.ts) against the BTF they
 * came from: round-trips for every shared struct, byte order of wire-order
 * fields, zeroed padding, and drift between the header and the committed file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as abi from '../../src/datapath/generated/abi.js';
import type { Codec } from '../../src/datapath/api.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** Deterministic pseudo-random generator, so a failure reproduces. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s;
  };
}

type NumericRecord = Record<string, number | bigint>;
/** Every codec the generator emitted, so a new struct is covered without editing this test. */
const codecs = Object.entries(abi.structCodecs) as [string, Codec<NumericRecord>][];

test('the generator emitted a codec for every shared struct', () => {
  const names = codecs.map(([n]) => n);
  for (const expected of ['ipcache_key', 'ipcache_entry', 'policy_key', 'policy_entry', 'endpoint_entry',
    'ct_key', 'ct_entry', 'ct_config', 'frag_key', 'frag_entry', 'counter_value',
    'metrics_value', 'global_config', 'endpoint_config', 'sluice_event']) {
    assert.ok(names.includes(expected), `missing ${expected}`);
  }
});

for (const [name, codec] of codecs) {
  test(`${name}: round-trips boundary and random values`, () => {
    const probe = codec.decode(Buffer.alloc(codec.size));
    const fields = Object.keys(probe);
    assert.ok(fields.length > 0);
    const next = prng(name.length * 7919);
    for (let round = 0; round < 50; round++) {
      const value: NumericRecord = {};
      for (const f of fields) {
        // Find each field's width by encoding its maximum: a too-wide value throws.
        const isBig = typeof probe[f] === 'bigint';
        if (isBig) {
          value[f] = round === 0 ? 0n : round === 1 ? 0xffff_ffff_ffff_ffffn : (BigInt(next()) << 32n) | BigInt(next());
        } else {
          const width = widthOf(codec, probe, f);
          const max = 2 ** (8 * width) - 1;
          value[f] = round === 0 ? 0 : round === 1 ? max : next() % (max + 1);
        }
      }
      const bytes = codec.encode(value);
      assert.equal(bytes.length, codec.size);
      assert.deepEqual(codec.decode(bytes), value);
      // Decoding at an offset reads the same struct.
      assert.deepEqual(codec.decode(Buffer.concat([Buffer.alloc(3), bytes]), 3), value);
    }
  });
}

/** Width in bytes of a numeric field: the largest power-of-256 range encode accepts. */
function widthOf(codec: Codec<NumericRecord>, zero: NumericRecord, f: string): number {
  for (const w of [4, 2, 1]) {
    try {
      codec.encode({ ...zero, [f]: 2 ** (8 * w) - 1 });
      return w;
    } catch {
      // too wide for this field: try the next smaller width
    }
  }
  throw new Error(`cannot determine width of ${f}`);
}

test('wire-order fields are big-endian, host-order fields little-endian', () => {
  const key = abi.ipcacheKeyCodec.encode({ prefixlen: 24, addr: 0x0a000100 });
  assert.deepEqual([...key], [24, 0, 0, 0, 0x0a, 0x00, 0x01, 0x00]);
  const ev = abi.sluiceEventCodec.decode(Buffer.alloc(abi.sluiceEventCodec.size));
  const bytes = abi.sluiceEventCodec.encode({ ...ev, sport: 0x1234, dport: 80 });
  // struct sluice_event: u64 timestamp, be32 saddr, be32 daddr, be16 sport @16, be16 dport @18
  assert.deepEqual([...bytes.subarray(16, 20)], [0x12, 0x34, 0x00, 0x50]);
});

test('padding is written as zero', () => {
  const b = abi.ctKeyCodec.encode({ endpointId: 0xffffffff, localAddr: 0xffffffff, remoteAddr: 0xffffffff,
    localPort: 0xffff, remotePort: 0xffff, protocol: 0xff });
  assert.equal(b.length, 20);
  assert.deepEqual([...b.subarray(17)], [0, 0, 0]);
  const e = abi.ctEntryCodec.encode({ expiresNs: 2n ** 64n - 1n, policyRevision: 0xffffffff, ruleId: 0xffffffff,
    origDirection: 0xff, tcpState: 0xff, flags: 0xff, tcpFlagsSeen: 0xff, natAddr: 0xffffffff, natPort: 0xffff,
    backendId: 0xffffffff });
  assert.equal(e.length, 32);
  assert.deepEqual([...e.subarray(26, 28)], [0, 0]);
});

test('the policy hash key: exact fields, explicit zero padding, port big-endian; classes as the datapath numbers them', () => {
  const b = abi.policyKeyCodec.encode({ endpointId: 7, remoteIdentity: 256, direction: 1, protocol: 6, portPrefixlen: 16,
    dport: 0x1f90 });
  assert.deepEqual([...b], [7, 0, 0, 0, 0, 1, 0, 0, 1, 6, 16, 0, 0x1f, 0x90, 0, 0]);
  assert.equal(abi.SluicePolicyClass.PORT_FULL, 16);
  assert.equal(abi.SluicePolicyClass.NO_PORTS, 17);
  assert.equal(abi.SluicePolicyClass.CLASSES, 18);
  const e = abi.endpointEntryCodec.encode({ flags: 3, policyRevision: 9, ingressPolicyClasses: 0x20000, egressPolicyClasses: 1 });
  assert.deepEqual([...e], [3, 0, 0, 0, 9, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0]);
});

test('decoding a short buffer fails with the struct name and sizes', () => {
  assert.throws(() => abi.ipcacheKeyCodec.decode(Buffer.alloc(5)), /ipcache_key: need 8 bytes, got 5/);
});

test('enum names come from the C enum, unknown values are marked', () => {
  assert.equal(abi.SluiceDropReason.POLICY_DENIED, 1);
  assert.equal(abi.sluiceDropReasonName(abi.SluiceDropReason.POLICY_DENIED), 'POLICY_DENIED');
  assert.equal(abi.sluiceDropReasonName(9999), 'UNKNOWN(9999)');
});

test('generated codecs match the BTF of the built object (no drift)', () => {
  // Exits non-zero, with the reason on stderr, when abi.ts differs from what
  // the current bpf/include/sluice_abi.h generates.
  execFileSync('node', ['scripts/gen-abi.mjs', '--check'], { cwd: repoRoot, stdio: 'pipe' });
});
