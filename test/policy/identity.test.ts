/** Identity labels and the allocation policy. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError } from '../../src/policy/errors.js';
import {
  allocateIdentities,
  allocatePodIdentities,
  EMPTY_IDENTITY_TABLE,
  FIRST_IDENTITY,
  identityLabels,
  ReservedIdentity,
  restoreIdentityTable,
  type IdentityLabels,
} from '../../src/policy/identity.js';
import type { ClusterNamespace } from '../../src/policy/objects.js';
import { xyzCluster } from './xyz.js';

const nsX: ClusterNamespace = { name: 'x', labels: { ns: 'x', 'kubernetes.io/metadata.name': 'x' } };
const nsY: ClusterNamespace = { name: 'y', labels: { ns: 'y', 'kubernetes.io/metadata.name': 'y' } };

function labels(ns: ClusterNamespace, pod: Record<string, string>): IdentityLabels {
  return identityLabels({ namespace: ns.name, labels: pod }, ns);
}

test('reserved identities come from the ABI', () => {
  assert.deepEqual(ReservedIdentity, { UNKNOWN: 0, HOST: 1, WORLD: 2 });
  assert.equal(FIRST_IDENTITY, 256);
});

test('identity labels: pod and namespace labels prefixed, namespace name included, sorted', () => {
  const l = labels(nsX, { pod: 'a', app: 'web' });
  assert.deepEqual(l.labels, [
    'k8s:io.kubernetes.pod.namespace=x',
    'ns:kubernetes.io/metadata.name=x',
    'ns:ns=x',
    'pod:app=web',
    'pod:pod=a',
  ]);
  assert.equal(l.namespace, 'x');
  assert.deepEqual(Object.keys(l.podLabels), ['app', 'pod']);
});

test('the key is canonical: label order does not matter; sources never collide', () => {
  assert.equal(labels(nsX, { a: '1', b: '2' }).key, labels(nsX, { b: '2', a: '1' }).key);
  assert.notEqual(labels(nsX, { ns: 'x' }).key, labels({ name: 'x', labels: {} }, { ns: 'x' }).key);
  // A pod label spelled like a namespace label is still a pod label.
  const podSide = labels({ name: 'x', labels: {} }, { 'kubernetes.io/metadata.name': 'x' });
  const nsSide = labels({ name: 'x', labels: { 'kubernetes.io/metadata.name': 'x' } }, {});
  assert.notEqual(podSide.key, nsSide.key);
  assert.notEqual(labels(nsX, { pod: 'a' }).key, labels(nsY, { pod: 'a' }).key);
  assert.throws(() => identityLabels({ namespace: 'y', labels: {} }, nsX), PolicyError);
});

test('equal label sets share an id; ids start at 256 in key order', () => {
  const a = labels(nsX, { pod: 'a' });
  const b = labels(nsX, { pod: 'b' });
  const r = allocateIdentities(EMPTY_IDENTITY_TABLE, [b, a, labels(nsX, { pod: 'a' })]);
  assert.deepEqual(r.added, [256, 257]);
  assert.equal(r.table.byKey.get(a.key), 256, 'x/a sorts first');
  assert.equal(r.table.byKey.get(b.key), 257);
  assert.equal(r.table.byId.get(256)?.key, a.key);
  assert.deepEqual(r.released, []);
  assert.equal(r.table.next, 258);
});

test('kept sets keep their ids; released ids wait until fresh ids run out', () => {
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((p) => labels(nsX, { pod: p })) as [IdentityLabels, IdentityLabels, IdentityLabels, IdentityLabels];
  const first = allocateIdentities(EMPTY_IDENTITY_TABLE, [a, b]);
  const second = allocateIdentities(first.table, [b, c]);
  assert.equal(second.table.byKey.get(b.key), 257, 'b keeps its id');
  assert.deepEqual(second.released, [256]);
  assert.deepEqual(second.added, [258], 'c does not get the id a just released');
  assert.deepEqual(second.table.free, [256]);
  const third = allocateIdentities(second.table, [b, c, d, a]);
  assert.deepEqual(third.added, [259, 260], 'fresh ids first, even for a returning set');
  assert.equal(third.table.byKey.get(a.key), 259);
});

test('after the last fresh id, the smallest released id is reused; then exhaustion throws', () => {
  const sets = ['a', 'b', 'c', 'd'].map((p) => labels(nsX, { pod: p }));
  const maxId = FIRST_IDENTITY + 2;
  const full = allocateIdentities(EMPTY_IDENTITY_TABLE, sets.slice(0, 3), { maxId });
  assert.deepEqual(full.added, [256, 257, 258]);
  const shrunk = allocateIdentities(full.table, [sets[2] as IdentityLabels], { maxId });
  assert.deepEqual(shrunk.released, [256, 257]);
  const reused = allocateIdentities(shrunk.table, sets.slice(2), { maxId });
  assert.deepEqual(reused.added, [256]);
  assert.deepEqual(reused.table.free, [257]);
  assert.throws(
    () => allocateIdentities(reused.table, [...sets, labels(nsY, { pod: 'a' }), labels(nsY, { pod: 'b' })], { maxId }),
    (e: unknown) => e instanceof PolicyError && e.code === 'exhausted',
  );
});

test('allocation is deterministic: the same inputs give the same table', () => {
  const sets = ['c', 'a', 'b'].map((p) => labels(nsY, { pod: p }));
  const one = allocateIdentities(EMPTY_IDENTITY_TABLE, sets);
  const two = allocateIdentities(EMPTY_IDENTITY_TABLE, [...sets].reverse());
  assert.deepEqual([...one.table.byKey], [...two.table.byKey].sort((x, y) => x[1] - y[1]));
});

test('a table restored from the datapath keeps ids and releases the gaps', () => {
  const a = labels(nsX, { pod: 'a' });
  const b = labels(nsX, { pod: 'b' });
  const t = restoreIdentityTable([
    [300, a],
    [258, b],
  ]);
  assert.equal(t.next, 301);
  assert.equal(t.free.length, 300 - 256 - 1);
  assert.equal(t.free[0], 256);
  const r = allocateIdentities(t, [a, b, labels(nsX, { pod: 'c' })]);
  assert.equal(r.table.byKey.get(a.key), 300);
  assert.deepEqual(r.added, [301]);
  assert.equal(restoreIdentityTable([], 400).free.length, 400 - 256);
  assert.throws(() => restoreIdentityTable([[2, a]]), PolicyError, 'reserved ids are not label sets');
  assert.throws(() => restoreIdentityTable([[300, a], [301, a]]), PolicyError);
  assert.throws(() => restoreIdentityTable([[300, a]], 300), PolicyError);
});

test('pod identities of the x/y/z cluster: one per pod (labels differ), stable across snapshots', () => {
  const c = xyzCluster([]);
  const first = allocatePodIdentities(EMPTY_IDENTITY_TABLE, c.pods, c.namespaces);
  assert.equal(new Set(first.byPod.values()).size, 9);
  assert.equal(first.byPod.get('x/a'), 256);
  const again = allocatePodIdentities(first.table, c.pods, c.namespaces);
  assert.deepEqual([...again.byPod], [...first.byPod]);
  assert.deepEqual(again.added, []);
  const relabelled = xyzCluster([], { podLabels: { 'x/b': { pod: 'a' } } });
  const shared = allocatePodIdentities(first.table, relabelled.pods, relabelled.namespaces);
  assert.equal(shared.byPod.get('x/b'), shared.byPod.get('x/a'), 'same labels, same namespace: one identity');
  assert.deepEqual(shared.released, [first.byPod.get('x/b')]);
  assert.throws(() => allocatePodIdentities(EMPTY_IDENTITY_TABLE, c.pods, new Map()), PolicyError);
});
