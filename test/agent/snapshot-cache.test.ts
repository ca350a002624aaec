/**
 * Parse results kept between snapshots (src/agent/snapshot-cache.ts): an
 * unchanged API object comes out as the same parsed object, a changed one is
 * parsed again, and so the bpf compiler's incremental paths apply — a policy
 * change keeps the identity assignment instead of recomputing it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyStage } from '../../src/agent/datapath/policy-stage.js';
import { NAMESPACES, NETWORK_POLICIES, PODS, type SlimNamespace, type SlimNetworkPolicy, type SlimPod } from '../../src/agent/k8s/resources.js';
import { ObjectStore } from '../../src/agent/k8s/store.js';
import { SnapshotCache } from '../../src/agent/snapshot-cache.js';
import { buildSnapshot, type AgentSnapshot } from '../../src/agent/snapshot.js';
import { EMPTY_DATAPATH_STATE } from '../../src/policy/datapath-state.js';
import { endpointRecord, namespace, pod } from './helpers/objects.js';

function slim<T>(r: { slim(raw: unknown): T | undefined }, raw: unknown): T {
  const s = r.slim(raw);
  if (s === undefined) throw new Error('not an object');
  return s;
}

const allowPolicy = (port: number): Record<string, unknown> => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow', namespace: 'a' },
  spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: {} }], ports: [{ port }] }] },
});

function stores(): { namespaces: ObjectStore<SlimNamespace>; pods: ObjectStore<SlimPod>; policies: ObjectStore<SlimNetworkPolicy> } {
  const namespaces = new ObjectStore<SlimNamespace>();
  namespaces.upsert(slim(NAMESPACES, namespace('a')));
  const pods = new ObjectStore<SlimPod>();
  pods.upsert(slim(PODS, pod('a', 'web', { ip: '10.0.0.1', node: 'n1' })));
  pods.upsert(slim(PODS, pod('a', 'client', { ip: '10.0.0.2', node: 'n2' })));
  pods.upsert(slim(PODS, pod('a', 'new', { node: 'n1' })));
  const policies = new ObjectStore<SlimNetworkPolicy>();
  policies.upsert(slim(NETWORK_POLICIES, allowPolicy(80)));
  return { namespaces, pods, policies };
}

function snapshot(s: ReturnType<typeof stores>, parsed: SnapshotCache | undefined): AgentSnapshot {
  const empty = new ObjectStore<never>();
  const r = buildSnapshot({
    nodeName: 'n1', namespaces: s.namespaces, pods: s.pods, networkPolicies: s.policies, nodes: empty, services: empty, endpointSlices: empty,
    // "new" has no status IP yet: its endpoint's registered address fills it in.
    endpoints: [endpointRecord(1, 'a', 'web', '10.0.0.1'), endpointRecord(2, 'a', 'new', '10.0.0.3')],
    ...(parsed !== undefined ? { parsed } : {}),
  });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.snapshot;
}

test('unchanged objects come out as the same parsed objects; a changed one is parsed again', () => {
  const s = stores();
  const cache = new SnapshotCache();
  const one = snapshot(s, cache);
  const two = snapshot(s, cache);
  assert.equal(two.cluster.pods.length, 3);
  two.cluster.pods.forEach((p, i) => assert.equal(p, one.cluster.pods[i], p.id));
  assert.equal(two.cluster.policies[0], one.cluster.policies[0]);
  assert.equal(two.cluster.namespaces.get('a'), one.cluster.namespaces.get('a'));
  assert.equal(two.cluster.podsById.get('a/new')?.ip, one.cluster.podsById.get('a/new')?.ip);

  s.pods.upsert(slim(PODS, pod('a', 'client', { ip: '10.0.0.2', node: 'n2', labels: { app: 'client', v: '2' } })));
  const three = snapshot(s, cache);
  assert.notEqual(three.cluster.podsById.get('a/client'), two.cluster.podsById.get('a/client'));
  assert.equal(three.cluster.podsById.get('a/web'), two.cluster.podsById.get('a/web'));
  assert.equal(three.cluster.podsById.get('a/new'), two.cluster.podsById.get('a/new'), 'the pod with its registered IP too');

  s.pods.upsert(slim(PODS, pod('a', 'noip', { node: 'n2' })));
  const four = buildSnapshot({
    nodeName: 'n1', namespaces: s.namespaces, pods: s.pods, networkPolicies: s.policies, nodes: new ObjectStore(), services: new ObjectStore(),
    endpointSlices: new ObjectStore(), endpoints: [], parsed: cache,
  });
  s.policies.upsert(slim(NETWORK_POLICIES, allowPolicy(99)));
  const five = buildSnapshot({
    nodeName: 'n1', namespaces: s.namespaces, pods: s.pods, networkPolicies: s.policies, nodes: new ObjectStore(), services: new ObjectStore(),
    endpointSlices: new ObjectStore(), endpoints: [], parsed: cache,
  });
  assert.ok(four.ok && five.ok);
  assert.equal(five.snapshot.cluster.pods[0], four.snapshot.cluster.pods[0], 'a policy change reuses the pods part');
  assert.equal(five.snapshot.cluster.podsById, four.snapshot.cluster.podsById, 'and the pod indexes of the cluster');
  assert.equal(five.snapshot.cluster.pods, four.snapshot.cluster.pods);
  assert.notEqual(five.snapshot.cluster.policies, four.snapshot.cluster.policies, 'the policies are the new ones');
  assert.equal(JSON.stringify(five.snapshot.cluster.policies[0]?.ingress[0]?.ports).includes('99'), true);
  assert.notEqual(four.snapshot.cluster.podsById, three.cluster.podsById, 'a pod change indexes the pods again');
  assert.ok(four.snapshot.cluster.podsById.has('a/noip'));
  assert.deepEqual(five.problems, four.problems, 'and still reports its problems (the pod without an IP)');
  assert.equal(five.problems.filter((p) => p.name === 'a/noip').length, 1);

  const uncached = snapshot(s, undefined);
  assert.notEqual(uncached.cluster.podsById.get('a/web'), three.cluster.podsById.get('a/web'), 'without a cache every sync parses afresh');
});

test('parsed pods with equal labels and container ports share them', () => {
  const s = stores();
  const cache = new SnapshotCache();
  s.pods.upsert(slim(PODS, pod('a', 'web-2', { ip: '10.0.0.9', node: 'n2', labels: { app: 'web' } })));
  const snap = snapshot(s, cache);
  const web = snap.cluster.podsById.get('a/web');
  const twin = snap.cluster.podsById.get('a/web-2');
  assert.ok(web !== undefined && twin !== undefined);
  assert.deepEqual(web.labels, { app: 'web' });
  assert.equal(twin.labels, web.labels);
  assert.equal(twin.ports, web.ports);
  assert.notEqual(snap.cluster.podsById.get('a/client')?.labels, web.labels);
});

test('with the cache, a policy change keeps the identity assignment (incremental compile)', () => {
  const s = stores();
  const cache = new SnapshotCache();
  const stage = new PolicyStage();
  const first = stage.compile(snapshot(s, cache), EMPTY_DATAPATH_STATE);
  s.policies.upsert(slim(NETWORK_POLICIES, allowPolicy(81)));
  // The owners' views are what the last compile produced (a complete round): the compile is incremental.
  const second = stage.compile(snapshot(s, cache), first.datapath);
  assert.equal(second.stats.identitiesReused, true);
  assert.notEqual(second.datapath, first.datapath, 'the change itself is compiled');
  const third = stage.compile(snapshot(s, new SnapshotCache()), second.datapath);
  assert.equal(third.stats.identitiesReused, false, 'fresh objects: everything recomputed');
});

test('a store\'s sorted list: the same array while unchanged; replaced objects swapped in place; adds and deletes sorted again; always the full sort\'s order', () => {
  const cache = new SnapshotCache();
  const store = new ObjectStore<SlimNamespace>();
  const ns = (name: string, rev: string): SlimNamespace => ({ metadata: { name, labels: { rev } } });
  const fullSort = (): string[] => [...store.values()].map((n) => `${n.metadata.name}@${n.metadata.labels?.rev ?? ''}`).sort();
  const shown = (list: readonly SlimNamespace[]): string[] => list.map((n) => `${n.metadata.name}@${n.metadata.labels?.rev ?? ''}`);
  for (const name of ['m', 'c', 'x', 'a', 'q']) store.upsert(ns(name, '0'));
  const first = cache.sorted(store);
  assert.deepEqual(shown(first), fullSort());
  assert.equal(cache.sorted(store), first, 'unchanged: the same array');

  store.upsert(ns('x', '1'));
  store.upsert(ns('a', '1'));
  const replaced = cache.sorted(store);
  assert.notEqual(replaced, first);
  assert.deepEqual(shown(first), ['a@0', 'c@0', 'm@0', 'q@0', 'x@0'], 'the earlier list is left as it was');
  assert.deepEqual(shown(replaced), fullSort());
  assert.equal(cache.sorted(store), replaced);

  // Random replaces, adds and deletes, each checked against a full sort.
  let seed = 7;
  const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let round = 0; round < 300; round++) {
    const name = `n${rand(40)}`;
    const op = rand(3);
    if (op === 0) store.remove(name);
    else store.upsert(ns(name, String(round)));
    assert.deepEqual(shown(cache.sorted(store)), fullSort(), `round ${round}`);
  }
});
