/** The matching predicates, one concept at a time. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr, parseIp, type Cidr } from '../../src/policy/cidr.js';
import { peerMatches, policySelectsPod, portMatches, resolveNamedPort, ruleAllows, type Endpoint } from '../../src/policy/match.js';
import type { PeerMatcher, PolicyRule, PortMatcher } from '../../src/policy/policy-types.js';
import { EVERYTHING, makeSelector } from '../../src/policy/selectors.js';
import { netpol, pod, xyzCluster } from './xyz.js';

const cluster = xyzCluster([netpol('x', 'a-only', { podSelector: pod('a') })], {
  extraPorts: { 'y/b': [{ name: 'web', containerPort: 8080 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] },
});

function podEp(id: string): Endpoint {
  const p = cluster.podsById.get(id);
  assert.ok(p !== undefined, id);
  return { kind: 'pod', pod: p };
}
function ext(s: string): Endpoint {
  const ip = parseIp(s);
  assert.ok(typeof ip !== 'string');
  return { kind: 'external', ip };
}
function cidr(s: string): Cidr {
  const c = parseCidr(s);
  assert.ok(typeof c !== 'string');
  return c.cidr;
}
const sel = (key: string, value: string) => makeSelector([{ key, operator: 'In', values: [value] }]);

test('a policy selects pods of its own namespace only', () => {
  const policy = cluster.policies[0];
  assert.ok(policy !== undefined);
  const xa = cluster.podsById.get('x/a');
  const ya = cluster.podsById.get('y/a');
  const xb = cluster.podsById.get('x/b');
  assert.ok(xa !== undefined && ya !== undefined && xb !== undefined);
  assert.equal(policySelectsPod(policy, xa), true);
  assert.equal(policySelectsPod(policy, ya), false, 'same labels, other namespace');
  assert.equal(policySelectsPod(policy, xb), false);
});

test('a lone podSelector peer means pods of the policy namespace', () => {
  const peer: PeerMatcher = { kind: 'pods', namespaces: { kind: 'policy-namespace', namespace: 'x' }, pods: sel('pod', 'b') };
  assert.equal(peerMatches(cluster, peer, podEp('x/b')), true);
  assert.equal(peerMatches(cluster, peer, podEp('y/b')), false);
  assert.equal(peerMatches(cluster, peer, ext('10.9.0.2')), false, 'an address is not a pod');
});

test('namespaceSelector alone and with a podSelector', () => {
  const nsOnly: PeerMatcher = { kind: 'pods', namespaces: { kind: 'selector', selector: sel('ns', 'y') }, pods: EVERYTHING };
  assert.equal(peerMatches(cluster, nsOnly, podEp('y/c')), true);
  assert.equal(peerMatches(cluster, nsOnly, podEp('x/c')), false);
  const both: PeerMatcher = { kind: 'pods', namespaces: { kind: 'selector', selector: sel('ns', 'y') }, pods: sel('pod', 'c') };
  assert.equal(peerMatches(cluster, both, podEp('y/c')), true);
  assert.equal(peerMatches(cluster, both, podEp('y/a')), false);
  assert.equal(peerMatches(cluster, both, podEp('z/c')), false);
  const anyNs: PeerMatcher = { kind: 'pods', namespaces: { kind: 'selector', selector: EVERYTHING }, pods: sel('pod', 'c') };
  assert.equal(peerMatches(cluster, anyNs, podEp('z/c')), true);
});

test('ipBlock matches pod IPs and external addresses, minus except', () => {
  const block: PeerMatcher = { kind: 'ipBlock', cidr: cidr('10.9.0.0/16'), except: [cidr('10.9.1.0/24'), cidr('10.9.2.3/32')] };
  assert.equal(peerMatches(cluster, block, podEp('x/a')), true);
  assert.equal(peerMatches(cluster, block, podEp('y/a')), false);
  assert.equal(peerMatches(cluster, block, podEp('z/b')), true);
  assert.equal(peerMatches(cluster, block, podEp('z/c')), false);
  assert.equal(peerMatches(cluster, block, ext('10.9.200.1')), true);
  assert.equal(peerMatches(cluster, block, ext('10.10.0.1')), false);
  const v6: PeerMatcher = { kind: 'ipBlock', cidr: cidr('::/0'), except: [] };
  assert.equal(peerMatches(cluster, v6, podEp('x/a')), false, 'IPv6 blocks never match IPv4 traffic');
});

test('ports: protocol must match; all, ranges, named ports resolved on the destination', () => {
  const tcp80: PortMatcher = { protocol: 'TCP', port: { kind: 'range', from: 80, to: 80 } };
  assert.equal(portMatches(tcp80, podEp('x/a'), 80, 'TCP'), true);
  assert.equal(portMatches(tcp80, podEp('x/a'), 80, 'UDP'), false);
  assert.equal(portMatches(tcp80, podEp('x/a'), 81, 'TCP'), false);
  const range: PortMatcher = { protocol: 'UDP', port: { kind: 'range', from: 1000, to: 2000 } };
  assert.equal(portMatches(range, ext('1.1.1.1'), 1000, 'UDP'), true);
  assert.equal(portMatches(range, ext('1.1.1.1'), 2000, 'UDP'), true);
  assert.equal(portMatches(range, ext('1.1.1.1'), 2001, 'UDP'), false);
  const allSctp: PortMatcher = { protocol: 'SCTP', port: { kind: 'all' } };
  assert.equal(portMatches(allSctp, podEp('x/a'), 5, 'SCTP'), true);
  assert.equal(portMatches(allSctp, podEp('x/a'), 5, 'ICMP'), false);
  const web: PortMatcher = { protocol: 'TCP', port: { kind: 'named', name: 'web' } };
  assert.equal(portMatches(web, podEp('y/b'), 8080, 'TCP'), true);
  assert.equal(portMatches(web, podEp('y/a'), 8080, 'TCP'), false, 'y/a has no port named web');
  assert.equal(portMatches(web, ext('10.9.1.2'), 8080, 'TCP'), false, 'an address has no named ports');
  assert.deepEqual(resolveNamedPort(podEp('y/b'), 'dns', 'UDP'), [53]);
  assert.deepEqual(resolveNamedPort(podEp('y/b'), 'dns', 'TCP'), [], 'the name must carry the protocol');
  assert.deepEqual(resolveNamedPort(podEp('x/a'), 'serve-81-sctp', 'SCTP'), [81]);
});

test('a rule needs a matching peer and a matching port; absent lists match all', () => {
  const fromY: PolicyRule = {
    direction: 'ingress',
    index: 0,
    peers: [{ kind: 'pods', namespaces: { kind: 'selector', selector: sel('ns', 'y') }, pods: EVERYTHING }],
    ports: [{ protocol: 'TCP', port: { kind: 'range', from: 80, to: 80 } }],
  };
  assert.equal(ruleAllows(cluster, fromY, podEp('y/a'), podEp('x/a'), 80, 'TCP'), true);
  assert.equal(ruleAllows(cluster, fromY, podEp('z/a'), podEp('x/a'), 80, 'TCP'), false);
  assert.equal(ruleAllows(cluster, fromY, podEp('y/a'), podEp('x/a'), 81, 'TCP'), false);
  assert.equal(ruleAllows(cluster, fromY, podEp('y/a'), podEp('x/a'), 0, 'ICMP'), false);
  const open: PolicyRule = { direction: 'ingress', index: 1, peers: 'all', ports: 'all' };
  assert.equal(ruleAllows(cluster, open, ext('8.8.8.8'), podEp('x/a'), 0, 'ICMP'), true);
  assert.equal(ruleAllows(cluster, { ...fromY, peers: [] }, podEp('y/a'), podEp('x/a'), 80, 'TCP'), false, 'no peer in a compiled list matches nothing');
});
