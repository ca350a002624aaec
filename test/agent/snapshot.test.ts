/** Informer caches → the compiler's snapshot, with bad objects isolated and named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIp } from '../../src/policy/cidr.js';
import { ObjectStore } from '../../src/agent/k8s/store.js';
import {
  ENDPOINT_SLICES, NAMESPACES, NETWORK_POLICIES, NODES, PODS, SERVICES, type ResourceType, type SlimObject,
} from '../../src/agent/k8s/resources.js';
import { buildSnapshot, type SnapshotResult } from '../../src/agent/snapshot.js';
import type { EndpointRecord } from '../../src/endpoint/contract.js';
import { denyAll, endpointRecord, namespace, node, pod } from './helpers/objects.js';

function store<T extends SlimObject>(type: ResourceType<T>, raws: unknown[]): ObjectStore<T> {
  const s = new ObjectStore<T>();
  for (const r of raws) {
    const slim = type.slim(r);
    if (slim === undefined) throw new Error(`bad fixture ${JSON.stringify(r)}`);
    s.upsert(slim);
  }
  return s;
}

interface Input {
  namespaces?: unknown[];
  pods?: unknown[];
  policies?: unknown[];
  endpoints?: EndpointRecord[];
}

function build(i: Input): SnapshotResult {
  return buildSnapshot({
    nodeName: 'n1',
    namespaces: store(NAMESPACES, i.namespaces ?? [namespace('a'), namespace('b')]),
    pods: store(PODS, i.pods ?? []),
    networkPolicies: store(NETWORK_POLICIES, i.policies ?? []),
    nodes: store(NODES, [node('n1'), node('n2')]),
    services: store(SERVICES, [{ metadata: { name: 's', namespace: 'a' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } }]),
    endpointSlices: store(ENDPOINT_SLICES, []),
    endpoints: i.endpoints ?? [],
  });
}

function ok(r: SnapshotResult): Extract<SnapshotResult, { ok: true }> {
  assert.ok(r.ok, JSON.stringify(r.problems));
  return r;
}

test('a clean cluster: pods, policies, local pods, nodes and services', () => {
  const r = ok(build({
    pods: [pod('a', 'x', { ip: '10.0.0.1', node: 'n1' }), pod('b', 'y', { ip: '10.0.0.2', node: 'n2' }), pod('a', 'h', { hostNetwork: true, node: 'n1' })],
    policies: [denyAll('a')],
  }));
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.snapshot.cluster.pods.map((p) => p.id), ['a/x', 'b/y'], 'host-network pods are not endpoints');
  assert.deepEqual([...r.snapshot.localPods], ['a/x']);
  assert.equal(r.snapshot.cluster.policies.length, 1);
  assert.deepEqual(r.snapshot.nodes.map((n) => n.metadata.name), ['n1', 'n2']);
  assert.equal(r.snapshot.services.length, 1);
});

test('a policy with a field Sluice does not know is left out and named; the rest is unaffected', () => {
  const bad = { ...denyAll('a', 'typo'), spec: { podSelector: {}, ingress: [{ fromm: [] }] } };
  const r = ok(build({ pods: [pod('a', 'x', { ip: '10.0.0.1' })], policies: [bad, denyAll('b', 'fine')] }));
  assert.deepEqual(r.snapshot.cluster.policies.map((p) => `${p.namespace}/${p.name}`), ['b/fine']);
  assert.equal(r.problems.length, 1);
  const p = r.problems[0];
  assert.equal(p?.kind, 'NetworkPolicy');
  assert.equal(p?.name, 'a/typo');
  assert.equal(p?.severity, 'error');
  assert.match(p?.message ?? '', /spec\.ingress\[0\]\.fromm/);
});

test('a pod without an IP is kept (its labels matter) and reported as a warning', () => {
  const r = ok(build({ pods: [pod('a', 'pending'), pod('a', 'x', { ip: '10.0.0.1' })] }));
  assert.deepEqual(r.snapshot.cluster.pods.map((p) => p.id), ['a/pending', 'a/x']);
  assert.deepEqual(r.problems, [{ kind: 'Pod', name: 'a/pending', severity: 'warning', message: 'has no IPv4 address yet: left out of the ipcache until it has one' }]);
});

test('a pod with an invalid field is left out and named', () => {
  const broken = pod('a', 'broken', { ip: '10.0.0.300' });
  const r = ok(build({ pods: [broken, pod('a', 'x', { ip: '10.0.0.1' })] }));
  assert.deepEqual(r.snapshot.cluster.pods.map((p) => p.id), ['a/x']);
  assert.equal(r.problems[0]?.name, 'a/broken');
  assert.match(r.problems[0]?.message ?? '', /status\.podIP.*10\.0\.0\.300/);
});

test('objects of a namespace the cache has not seen yet wait, with a problem each', () => {
  const r = ok(build({ namespaces: [namespace('a')], pods: [pod('late', 'p', { ip: '10.0.0.9' })], policies: [denyAll('late')] }));
  assert.equal(r.snapshot.cluster.pods.length, 0);
  assert.equal(r.snapshot.cluster.policies.length, 0);
  assert.deepEqual(r.problems.map((p) => `${p.kind} ${p.name} ${p.severity}`), ['Pod late/p error', 'NetworkPolicy late/deny-all error']);
});

test('two pods on one IP: the one being deleted yields; with no way to choose, neither keeps it', () => {
  const r = ok(build({ pods: [pod('a', 'old', { ip: '10.0.0.5', deleting: true }), pod('a', 'new', { ip: '10.0.0.5' })] }));
  assert.equal(r.snapshot.cluster.podsByIp.get('10.0.0.5')?.id, 'a/new');
  assert.equal(r.snapshot.cluster.podsById.get('a/old')?.ip, undefined);
  assert.deepEqual(r.problems.map((p) => `${p.name} ${p.severity}`), ['a/old warning']);

  const tie = ok(build({ pods: [pod('a', 'p', { ip: '10.0.0.5' }), pod('b', 'q', { ip: '10.0.0.5' })] }));
  assert.equal(tie.snapshot.cluster.podsByIp.size, 0);
  assert.deepEqual(tie.problems.map((p) => `${p.name} ${p.severity}`).sort(), ['a/p error', 'b/q error']);
  assert.match(tie.problems[0]?.message ?? '', /also claimed by/);
});

test('a local endpoint gives its pod the registered IP before the kubelet reports one', () => {
  const r = ok(build({
    pods: [pod('a', 'new', { node: 'n1' })],
    endpoints: [endpointRecord(7, 'a', 'new', '10.0.0.7')],
  }));
  const p = r.snapshot.cluster.podsById.get('a/new');
  assert.ok(p?.ip !== undefined);
  assert.equal(formatIp(p.ip), '10.0.0.7');
  assert.deepEqual(r.problems, []);
  assert.equal(r.snapshot.localEndpoints[0]?.pod?.id, 'a/new');
});

test('the registered IP wins over a different status.podIP, with a warning', () => {
  const r = ok(build({ pods: [pod('a', 'p', { node: 'n1', ip: '10.0.0.1' })], endpoints: [endpointRecord(3, 'a', 'p', '10.0.0.3')] }));
  assert.equal(formatIp(r.snapshot.cluster.podsById.get('a/p')?.ip ?? { family: 4, value: 0n }), '10.0.0.3');
  assert.match(r.problems[0]?.message ?? '', /differs from 10\.0\.0\.3/);
});

test('an endpoint whose pod the API server does not know yet is kept without a pod, and reported', () => {
  const r = ok(build({ endpoints: [endpointRecord(9, 'a', 'ghost', '10.0.0.9'), endpointRecord(2, 'a', 'x', '10.0.0.2')], pods: [pod('a', 'x', { node: 'n1' })] }));
  assert.deepEqual(r.snapshot.localEndpoints.map((e) => [e.endpoint.endpointId, e.pod?.id]), [[2, 'a/x'], [9, undefined]]);
  assert.deepEqual(r.problems.map((p) => `${p.kind} ${p.name}`), ['Endpoint c9/eth0']);
});

test('a pod scheduled elsewhere does not take a local endpoint IP', () => {
  const r = ok(build({ pods: [pod('a', 'x', { node: 'n2' })], endpoints: [endpointRecord(1, 'a', 'x', '10.0.0.1')] }));
  assert.equal(r.snapshot.cluster.podsById.get('a/x')?.ip, undefined);
  assert.equal(r.snapshot.localPods.size, 0);
});
