/** Snapshots: cross-object checks and indexes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCluster } from '../../src/policy/cluster.js';
import { formatIssue } from '../../src/policy/errors.js';
import { netpol, PODS, xyzCluster, xyzNamespaces, xyzPods } from './xyz.js';

test('the x/y/z cluster indexes pods by id and IP, policies by namespace, all sorted', () => {
  const c = xyzCluster([netpol('y', 'b', { podSelector: {} }), netpol('x', 'z', { podSelector: {} }), netpol('x', 'a', { podSelector: {} })]);
  assert.deepEqual(c.pods.map((p) => p.id), PODS);
  assert.equal(c.podsById.get('y/b')?.name, 'b');
  assert.equal(c.podsByIp.get('10.9.2.3')?.id, 'z/c');
  assert.deepEqual(c.policies.map((p) => `${p.namespace}/${p.name}`), ['x/a', 'x/z', 'y/b']);
  assert.deepEqual(c.policiesByNamespace.get('x')?.map((p) => p.name), ['a', 'z']);
  assert.equal(c.policiesByNamespace.get('z'), undefined);
  assert.equal(c.namespaces.get('x')?.labels['kubernetes.io/metadata.name'], 'x');
});

test('every problem of every object is reported together, naming the object', () => {
  const r = buildCluster({
    namespaces: [...xyzNamespaces(), { metadata: { name: 'x' } }],
    pods: [
      ...xyzPods(),
      { metadata: { namespace: 'x', name: 'a' }, spec: { containers: [] } },
      { metadata: { namespace: 'w', name: 'lost' }, spec: { containers: [] }, status: { podIP: '10.9.0.1' } },
      { metadata: { namespace: 'x', name: 'bad' }, spec: { containers: [] }, status: { podIP: 'nope' } },
    ],
    networkPolicies: [
      netpol('x', 'p', { podSelector: {} }),
      netpol('x', 'p', { podSelector: {} }),
      netpol('q', 'elsewhere', { podSelector: {} }),
      netpol('x', 'broken', { podSelector: {}, policyTypes: ['Nope'] }),
    ],
  });
  assert.ok(!r.ok);
  assert.deepEqual(r.errors.map(formatIssue), [
    'Pod x/bad: status.podIP: "nope" is not a valid IPv4 address (want a.b.c.d, no leading zeros)',
    'NetworkPolicy x/broken: spec.policyTypes[0]: unknown policy type a string ("Nope") (want Ingress or Egress)',
    'Namespace x: defined twice',
    'Pod x/a: defined twice',
    'Pod w/lost: metadata.namespace: namespace "w" has no Namespace object',
    'Pod w/lost: status.podIP: 10.9.0.1 is also the IP of Pod x/a',
    'NetworkPolicy x/p: defined twice',
    'NetworkPolicy q/elsewhere: metadata.namespace: namespace "q" has no Namespace object',
  ]);
});

test('warnings of every object are collected; left-out pods are not in the snapshot', () => {
  const r = buildCluster({
    namespaces: xyzNamespaces(),
    pods: [...xyzPods(), { metadata: { namespace: 'x', name: 'host' }, spec: { hostNetwork: true, containers: [] } }],
    networkPolicies: [netpol('x', 'p', { podSelector: {}, ingress: [{ from: [] }] })],
  });
  assert.ok(r.ok);
  assert.equal(r.value.pods.length, 9);
  assert.deepEqual(r.warnings.map((w) => w.object), ['Pod x/host', 'NetworkPolicy x/p']);
});

test('defaultNamespace applies to pods and policies without one', () => {
  const r = buildCluster({
    namespaces: [{ metadata: { name: 'team' } }],
    pods: [{ metadata: { name: 'a' }, spec: { containers: [] } }],
    networkPolicies: [{ metadata: { name: 'p' }, spec: { podSelector: {} } }],
    defaultNamespace: 'team',
  });
  assert.ok(r.ok);
  assert.equal(r.value.pods[0]?.id, 'team/a');
  assert.equal(r.value.policies[0]?.namespace, 'team');
  const empty = buildCluster({});
  assert.ok(empty.ok && empty.value.pods.length === 0);
});
