/** The compiler's compact map state and its conversions to and from the ABI structs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluicePolicyAction, SluicePolicyClass } from '../../src/datapath/generated/abi.js';
import {
  endpointDirection, formatIpcachePrefix, ipcacheKeyOf, ipcachePrefix, ipcachePrefixOf, packPolicyKey, policyClassMask,
  policyClassOfPacked, sameEndpointEntry, splitEndpointDirection, unpackPolicyKey, type PortMatch,
} from '../../src/policy/datapath-state.js';
import { policyKeyOf, slotOfPolicyKey, stateFromMapContents } from '../../src/datapath/maps/policy-key.js';
import { seededRandom } from './random-cluster.js';

test('ipcache prefixes round-trip and format', () => {
  const p = ipcachePrefix(0x0a010000, 16);
  assert.deepEqual(ipcacheKeyOf(p), { addr: 0x0a010000, prefixlen: 16 });
  assert.equal(ipcachePrefixOf({ addr: 0x0a010000, prefixlen: 16 }), p);
  assert.equal(formatIpcachePrefix(p), '10.1.0.0/16');
  assert.equal(formatIpcachePrefix(ipcachePrefix(0xffffffff, 32)), '255.255.255.255/32');
  assert.equal(formatIpcachePrefix(ipcachePrefix(0, 0)), '0.0.0.0/0');
});

test('endpoint-direction slots', () => {
  assert.deepEqual(splitEndpointDirection(endpointDirection(7, 'egress')), { endpointId: 7, direction: 'egress' });
  assert.deepEqual(splitEndpointDirection(endpointDirection(0xffffffff, 'ingress')), { endpointId: 0xffffffff, direction: 'ingress' });
});

test('packed policy keys round-trip for every kind of match, identities up to 2^32-1', () => {
  const rng = seededRandom(3);
  for (let i = 0; i < 2000; i++) {
    const identity = rng.chance(0.1) ? 0xffffffff : rng.int(2 ** 32);
    const bits = rng.int(17);
    const port = Math.floor(rng.int(65536) / 2 ** (16 - bits)) * 2 ** (16 - bits);
    const match: PortMatch = rng.chance(0.2) ? { kind: 'any' } : { kind: 'port', protocol: rng.pick(['TCP', 'UDP', 'SCTP'] as const), prefix: { port, bits } };
    const packed = packPolicyKey(identity, match);
    assert.ok(Number.isSafeInteger(packed));
    assert.deepEqual(unpackPolicyKey(packed), { remoteIdentity: identity, match });
  }
});

test('hash keys: class NO_PORTS = any protocol and port, the prefix bits for ports; the inverse refuses what is never written', () => {
  const { NO_PORTS } = SluicePolicyClass;
  const epdir = endpointDirection(3, 'ingress');
  const any = policyKeyOf(epdir, packPolicyKey(0, { kind: 'any' }));
  assert.deepEqual(any, { endpointId: 3, remoteIdentity: 0, direction: 0, protocol: 0, portPrefixlen: NO_PORTS, dport: 0 });
  const tcp80 = policyKeyOf(epdir, packPolicyKey(300, { kind: 'port', protocol: 'TCP', prefix: { port: 80, bits: 16 } }));
  assert.deepEqual(tcp80, { endpointId: 3, remoteIdentity: 300, direction: 0, protocol: 6, portPrefixlen: 16, dport: 80 });
  const allUdp = policyKeyOf(endpointDirection(3, 'egress'), packPolicyKey(300, { kind: 'port', protocol: 'UDP', prefix: { port: 0, bits: 0 } }));
  assert.deepEqual(allUdp, { endpointId: 3, remoteIdentity: 300, direction: 1, protocol: 17, portPrefixlen: 0, dport: 0 });
  const sctpRange = policyKeyOf(epdir, packPolicyKey(9, { kind: 'port', protocol: 'SCTP', prefix: { port: 8000, bits: 10 } }));
  assert.equal(sctpRange.portPrefixlen, 10);
  assert.equal(sctpRange.protocol, 132);
  for (const k of [any, tcp80, allUdp, sctpRange]) {
    const back = slotOfPolicyKey(k);
    assert.ok(back !== undefined);
    assert.deepEqual(policyKeyOf(back.epdir, back.packed), k);
    assert.equal(policyClassOfPacked(back.packed), k.portPrefixlen, 'the packed key\'s class is the key\'s');
  }
  assert.equal(slotOfPolicyKey({ ...tcp80, portPrefixlen: 10 }), undefined, 'bits past the prefix');
  assert.equal(slotOfPolicyKey({ ...tcp80, protocol: 1 }), undefined, 'ICMP has no port entries');
  assert.equal(slotOfPolicyKey({ ...any, protocol: 6 }), undefined, 'a no-ports key with a protocol');
  assert.equal(slotOfPolicyKey({ ...tcp80, direction: 2 }), undefined);
  assert.equal(slotOfPolicyKey({ ...tcp80, portPrefixlen: 18 }), undefined);
});

test('class masks: one bit per class of an endpoint-direction\'s entries', () => {
  const m = new Map<number, number>([
    [packPolicyKey(300, { kind: 'port', protocol: 'TCP', prefix: { port: 80, bits: 16 } }), 1],
    [packPolicyKey(0, { kind: 'port', protocol: 'UDP', prefix: { port: 8064, bits: 11 } }), 2],
    [packPolicyKey(0xffffffff, { kind: 'port', protocol: 'SCTP', prefix: { port: 0, bits: 0 } }), 3],
    [packPolicyKey(7, { kind: 'any' }), 4],
  ]);
  assert.equal(policyClassMask(m), 2 ** 16 + 2 ** 11 + 2 ** 0 + 2 ** SluicePolicyClass.NO_PORTS);
  assert.equal(policyClassMask(undefined), 0);
  assert.equal(policyClassMask(new Map()), 0);
  const e = { flags: 1, policyRevision: 2, ingressPolicyClasses: 4, egressPolicyClasses: 0 };
  assert.equal(sameEndpointEntry(e, { ...e }), true);
  assert.equal(sameEndpointEntry(e, { ...e, ingressPolicyClasses: 5 }), false, 'a mask change is a change');
});

test('read-back state: canonical entries kept, foreign keys listed, non-ALLOW entries left for overwrite', () => {
  const allow = { action: SluicePolicyAction.ALLOW, ruleId: 4 };
  const good = { endpointId: 1, remoteIdentity: 256, direction: 0, protocol: 6, portPrefixlen: 16, dport: 80 };
  const foreign = { ...good, portPrefixlen: 10 };
  const deny = { ...good, dport: 81 };
  const r = stateFromMapContents({
    ipcache: [[{ addr: 0x0a000001, prefixlen: 32 }, { identity: 256, flags: 0 }]],
    endpoints: [[1, { flags: 1, policyRevision: 2, ingressPolicyClasses: 2 ** 16, egressPolicyClasses: 0 }]],
    policy: [[good, allow], [foreign, allow], [deny, { action: SluicePolicyAction.DENY, ruleId: 4 }]],
  });
  assert.deepEqual([...r.state.ipcache], [[ipcachePrefix(0x0a000001, 32), 256]]);
  assert.deepEqual([...r.state.endpoints], [[1, { flags: 1, policyRevision: 2, ingressPolicyClasses: 2 ** 16, egressPolicyClasses: 0 }]]);
  assert.deepEqual(r.foreignPolicyKeys, [foreign]);
  const slot = slotOfPolicyKey(good);
  assert.ok(slot !== undefined);
  assert.deepEqual([...(r.state.policy.get(slot.epdir) ?? [])], [[slot.packed, 4]]);
});
