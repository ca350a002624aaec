/** A pod's workload, from its controller owner reference. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePod } from '../../src/policy/objects.js';
import { workloadOf } from '../../src/policy/workload.js';

test('a ReplicaSet named after the pod-template-hash stands for its Deployment; other controllers are themselves', () => {
  const rs = [{ kind: 'ReplicaSet', name: 'web-5d9c8b7f4', controller: true }];
  assert.deepEqual(workloadOf(rs, { 'pod-template-hash': '5d9c8b7f4' }), { kind: 'Deployment', name: 'web' });
  assert.deepEqual(workloadOf(rs, {}), { kind: 'ReplicaSet', name: 'web-5d9c8b7f4' }, 'no hash label: a ReplicaSet of its own');
  assert.deepEqual(workloadOf(rs, { 'pod-template-hash': 'other' }), { kind: 'ReplicaSet', name: 'web-5d9c8b7f4' });
  assert.deepEqual(workloadOf([{ kind: 'StatefulSet', name: 'db', controller: true }], {}), { kind: 'StatefulSet', name: 'db' });
  assert.deepEqual(workloadOf([{ kind: 'Node', name: 'n1' }, { kind: 'DaemonSet', name: 'agent', controller: true }], {}), { kind: 'DaemonSet', name: 'agent' });
  assert.equal(workloadOf([], {}), undefined);
  assert.equal(workloadOf([{ kind: 'A', name: 'a' }, { kind: 'B', name: 'b' }], {}), undefined, 'several owners, none the controller');
});

test('parsePod reads the owner references; malformed entries are skipped, not fatal', () => {
  const pod = (owners: unknown) => parsePod({
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'web-5d9c8b7f4-x2x9z', namespace: 'shop', labels: { app: 'web', 'pod-template-hash': '5d9c8b7f4' }, ownerReferences: owners },
    status: { podIP: '10.0.0.5' },
  } as never);
  const ok = pod([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d9c8b7f4', uid: 'u', controller: true }]);
  assert.ok(ok.ok && ok.value !== null);
  assert.deepEqual(ok.value.workload, { kind: 'Deployment', name: 'web' });
  const bad = pod([{ kind: 7 }, 'x']);
  assert.ok(bad.ok && bad.value !== null && bad.value.workload === undefined);
});
