/** The API objects of a cluster lab (src/lab/cluster/objects.ts): pure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterObjects, LAST_APPLIED, PLACEHOLDER_IMAGE } from '../../src/lab/cluster/objects.js';
import { LabError } from '../../src/lab/errors.js';
import { resolveSpec } from '../../src/lab/spec.js';

const plan = resolveSpec({ name: 'ldunit', pods: ['a', 'b'], cidr: '10.9.0.0/24' }, { bpffs: '/sys/fs/bpf', stateDir: '/tmp' });

test('pods without manifests: default/<name>, app=<name>, bound to the lab node, one placeholder container', () => {
  const o = clusterObjects(plan, []);
  assert.deepEqual(o.node, {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'sluice-ldunit', labels: { 'kubernetes.io/hostname': 'sluice-ldunit' } },
    spec: { podCIDR: '10.9.0.0/24', podCIDRs: ['10.9.0.0/24'] },
  });
  assert.deepEqual(o.namespaces, []);
  assert.deepEqual(o.pods[0], {
    pod: 'a',
    namespace: 'default',
    object: {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'a', namespace: 'default', labels: { app: 'a' } },
      spec: { nodeName: 'sluice-ldunit', containers: [{ image: PLACEHOLDER_IMAGE, name: 'main' }] },
    },
  });
});

test('a described pod keeps namespace, labels, containers and ports; its manifest becomes last-applied', () => {
  const b = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'b', namespace: 'shop', labels: { app: 'web' } },
    spec: { containers: [{ name: 'srv', ports: [{ name: 'http', containerPort: 80 }] }, { name: 'side', image: 'x:1' }] },
  };
  const o = clusterObjects(plan, [b, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other', labels: { team: 'blue' } } }]);
  const pb = o.pods[1];
  assert.equal(pb?.namespace, 'shop');
  assert.deepEqual(pb?.object['metadata'], { name: 'b', namespace: 'shop', labels: { app: 'web' } });
  assert.deepEqual(pb?.object['spec'], {
    nodeName: 'sluice-ldunit',
    containers: [{ image: PLACEHOLDER_IMAGE, name: 'srv', ports: [{ name: 'http', containerPort: 80 }] }, { image: 'x:1', name: 'side' }],
  });
  assert.deepEqual(JSON.parse(pb?.lastApplied ?? '{}'), b, 'no image or nodeName that the user did not write');
  assert.equal(o.pods[0]?.lastApplied, undefined);
  assert.deepEqual(o.namespaces.map((n) => n['metadata']), [{ name: 'other', labels: { team: 'blue' } }, { name: 'shop' }], 'given and implied namespaces');
  assert.equal(LAST_APPLIED, 'kubectl.kubernetes.io/last-applied-configuration');
});

test('bad manifests fail naming the object', () => {
  const bad = (m: unknown[], re: RegExp): void =>
    assert.throws(() => clusterObjects(plan, m), (e: unknown) => e instanceof LabError && e.code === 'invalid-spec' && re.test(e.message));
  bad([{ kind: 'Pod', metadata: { name: 'zz' } }], /Pod zz: the lab has no pod "zz" \(pods: a, b\)/);
  bad([{ kind: 'Pod', metadata: { name: 'a' } }, { kind: 'Pod', metadata: { name: 'a' } }], /Pod a: described twice/);
  bad([{ kind: 'NetworkPolicy', metadata: { name: 'p' } }], /kind NetworkPolicy: lab up takes Pods and Namespaces/);
  bad([{ kind: 'Pod' }], /manifest 1: no metadata/);
  bad(['x'], /manifest 1: not an object/);
});
