import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonEqual, pick } from '../../src/agent/k8s/shape.js';
import { NETWORK_POLICIES, NODES, objectKey, PODS, resourceVersionOf } from '../../src/agent/k8s/resources.js';
import { ObjectStore } from '../../src/agent/k8s/store.js';
import { ValuePool } from '../../src/agent/k8s/value-pool.js';

const bigPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name: 'web-1', namespace: 'shop', labels: { app: 'web' }, uid: 'u1', resourceVersion: '42',
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(5000) },
    managedFields: [{ manager: 'kubectl', fieldsV1: { f: {} } }],
  },
  spec: {
    nodeName: 'n1',
    containers: [{ name: 'c', image: 'nginx', env: [{ name: 'A', value: 'b' }], ports: [{ name: 'http', containerPort: 80 }] }],
    volumes: [{ name: 'v' }],
  },
  status: { phase: 'Running', podIP: '10.0.0.5', podIPs: [{ ip: '10.0.0.5' }], conditions: [{ type: 'Ready', status: 'True' }] },
};

test('pods keep labels, node, container ports, phase and IPs; nothing else', () => {
  const slim = PODS.slim(bigPod);
  assert.deepEqual(slim, {
    metadata: { name: 'web-1', namespace: 'shop', labels: { app: 'web' }, uid: 'u1' },
    spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }] },
    status: { phase: 'Running', podIP: '10.0.0.5', podIPs: [{ ip: '10.0.0.5' }] },
  });
  assert.ok(JSON.stringify(slim).length < JSON.stringify(bigPod).length / 10);
});

test('a network policy keeps its whole spec, so that validation sees every field', () => {
  const np = { metadata: { name: 'p', namespace: 'a', managedFields: [{}] }, spec: { podSelector: {}, futureField: 1 } };
  assert.deepEqual(NETWORK_POLICIES.slim(np), { metadata: { name: 'p', namespace: 'a' }, spec: { podSelector: {}, futureField: 1 } });
});

test('kept values are copied verbatim, not coerced', () => {
  const odd = { metadata: { name: 'n', labels: 'not-a-map' }, spec: { podCIDR: 7 } };
  assert.deepEqual(NODES.slim(odd), { metadata: { name: 'n', labels: 'not-a-map' }, spec: { podCIDR: 7 } });
  assert.equal(pick('text', { fields: { a: 'keep' } }), 'text');
  assert.deepEqual(pick([1, { a: 1, b: 2 }], { items: { fields: { a: 'keep' } } }), [1, { a: 1 }]);
});

test('parts marked shared come from the pool: the pods of a ReplicaSet keep one copy of their labels and containers', () => {
  const pool = new ValuePool();
  const a = PODS.slim(bigPod, pool);
  const b = PODS.slim({ ...bigPod, metadata: { ...bigPod.metadata, name: 'web-2', uid: 'u2' }, status: { ...bigPod.status, podIP: '10.0.0.6' } }, pool);
  assert.ok(a !== undefined && b !== undefined);
  assert.equal(b.metadata.labels, a.metadata.labels);
  assert.equal(b.spec?.containers, a.spec?.containers);
  assert.notEqual(b.status, a.status);
  assert.deepEqual(PODS.slim(bigPod), a, 'the same content without a pool');
  assert.deepEqual(pick({ x: { a: 1, b: 2 } }, { fields: { x: { shared: { fields: { a: 'keep' } } } } }, pool), { x: { a: 1 } });
});

test('objects without a name are refused', () => {
  for (const raw of [null, 'x', {}, { metadata: {} }, { metadata: { name: '' } }, { metadata: { name: 3 } }]) {
    assert.equal(PODS.slim(raw), undefined, JSON.stringify(raw));
  }
});

test('keys and resource versions', () => {
  const pod = PODS.slim(bigPod);
  assert.ok(pod !== undefined);
  assert.equal(objectKey(pod), 'shop/web-1');
  assert.equal(objectKey({ metadata: { name: 'node-a' } }), 'node-a');
  assert.equal(resourceVersionOf(bigPod), '42');
  assert.equal(resourceVersionOf({ metadata: {} }), undefined);
});

test('jsonEqual compares structure, not identity or key order', () => {
  assert.ok(jsonEqual({ a: [1, { b: 'x' }], c: null }, { c: null, a: [1, { b: 'x' }] }));
  assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: undefined }));
  assert.ok(!jsonEqual([1, 2], [2, 1]));
  assert.ok(!jsonEqual({ a: [] }, { a: {} }));
  assert.ok(!jsonEqual(null, {}));
});

test('the store reports only changes to what it keeps, and a relist reports deletions', () => {
  const store = new ObjectStore<{ metadata: { name: string; namespace?: string }; v?: number }>();
  assert.equal(store.upsert({ metadata: { name: 'a' }, v: 1 })?.type, 'added');
  assert.equal(store.upsert({ metadata: { name: 'a' }, v: 1 }), undefined);
  assert.equal(store.upsert({ metadata: { name: 'a' }, v: 2 })?.type, 'updated');
  store.upsert({ metadata: { name: 'b' } });
  const changes = store.replace([{ metadata: { name: 'a' }, v: 2 }, { metadata: { name: 'c' } }]);
  assert.deepEqual(changes.map((c) => `${c.type}:${c.key}`).sort(), ['added:c', 'deleted:b']);
  assert.equal(store.size, 2);
  assert.equal(store.remove('zzz'), undefined);
});
