/**
 * The map compiler: identities exact for ipBlocks and egress named ports,
 * the entry shapes of each kind of rule, isolation flags, rule ids, errors,
 * and recompiles that reuse what a change cannot affect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceIdentityReserved, SluicePolicyClass } from '../../src/datapath/generated/abi.js';
import { assembleCluster, buildCluster, type Cluster } from '../../src/policy/cluster.js';
import { validateNetworkPolicy } from '../../src/policy/validate.js';
import { compilePolicy, seedOf, type CompiledPolicy } from '../../src/policy/compile.js';
import { policyKeyOf } from '../../src/datapath/maps/policy-key.js';
import { endpointDirection, formatIpcachePrefix, policyClassMask, unpackPolicyKey } from '../../src/policy/datapath-state.js';
import { diffDatapath, diffSize } from '../../src/policy/diff.js';
import { PolicyError } from '../../src/policy/errors.js';
import type { NetworkPolicy, NetworkPolicySpec, Pod } from '../../src/policy/k8s-types.js';
import { randomCase, seededRandom } from './random-cluster.js';
import { ALL, netpol, pod, xyzCluster } from './xyz.js';

function cluster(pods: Pod[], policies: NetworkPolicy[]): Cluster {
  const built = buildCluster({ namespaces: [{ metadata: { name: 'x' } }, { metadata: { name: 'y' } }], pods, networkPolicies: policies });
  if (!built.ok) throw new Error(JSON.stringify(built.errors));
  return built.value;
}

function mkPod(name: string, ip: string, labels: Record<string, string>, ports: { name: string; port: number }[] = [], namespace = 'x'): Pod {
  return {
    metadata: { namespace, name, labels },
    spec: { containers: [{ name: 'c', ports: ports.map((p) => ({ name: p.name, containerPort: p.port })) }] },
    status: { podIP: ip },
  };
}

function all(c: Cluster, previous?: CompiledPolicy): CompiledPolicy {
  return compilePolicy({ cluster: c, endpoints: new Map(c.pods.map((p, i) => [p.id, i + 1])) }, previous);
}

const idOf = (c: CompiledPolicy, podRef: string): number => c.identities.podIdentity.get(podRef) ?? -1;

/** The entries of one endpoint-direction as readable strings. */
function entries(c: CompiledPolicy, endpointId: number, direction: 'ingress' | 'egress'): string[] {
  const m = c.datapath.policy.get(endpointDirection(endpointId, direction)) ?? new Map<number, number>();
  return [...m]
    .map(([packed, rule]) => {
      const k = policyKeyOf(endpointDirection(endpointId, direction), packed);
      const ref = c.rules.byId.get(rule);
      return `${k.remoteIdentity}/${k.portPrefixlen}/${k.protocol}/${k.dport} ${ref?.policy ?? '?'}[${ref?.index ?? '?'}]`;
    })
    .sort();
}

const spec = (s: NetworkPolicySpec): NetworkPolicySpec => s;

test('pods with the same labels share an identity until an ipBlock tells them apart', () => {
  const pods = [mkPod('a', '10.0.0.1', { app: 'web' }), mkPod('b', '10.0.1.1', { app: 'web' }), mkPod('t', '10.0.2.1', { app: 'db' })];
  const plain = all(cluster(pods, []));
  assert.equal(idOf(plain, 'x/a'), idOf(plain, 'x/b'));
  const withBlock = all(cluster(pods, [netpol('x', 'p', spec({ podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/24' } }] }] }))]));
  assert.notEqual(idOf(withBlock, 'x/a'), idOf(withBlock, 'x/b'));
  const labels = withBlock.identities.table.byId.get(idOf(withBlock, 'x/a'))?.labels ?? [];
  assert.ok(labels.includes('cidr:10.0.0.0/24'), labels.join(' '));
  // t's ingress allows exactly a's identity (and the CIDR identity of the block's other addresses).
  const t = withBlock.endpoints.get(3);
  assert.deepEqual(t?.isolatedBy.ingress, ['x/p']);
  const ids = entries(withBlock, 3, 'ingress').map((e) => Number(e.split('/')[0]));
  assert.ok(ids.includes(idOf(withBlock, 'x/a')) && !ids.includes(idOf(withBlock, 'x/b')));
});

test('an except hole carves the block: pods in the hole lose the term; the hole gets its own ipcache entry', () => {
  const pods = [mkPod('a', '10.0.0.1', { app: 'web' }), mkPod('b', '10.0.0.200', { app: 'web' }), mkPod('t', '10.0.2.1', { app: 'db' })];
  const c = all(cluster(pods, [
    netpol('x', 'p', spec({ podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.0.128/25'] } }] }] })),
  ]));
  assert.notEqual(idOf(c, 'x/a'), idOf(c, 'x/b'));
  const prefixes = new Map([...c.datapath.ipcache].map(([p, id]) => [formatIpcachePrefix(p), id]));
  const block = prefixes.get('10.0.0.0/16');
  assert.ok(block !== undefined && block >= 256, 'the block has a CIDR identity');
  assert.equal(prefixes.get('10.0.0.128/25'), SluiceIdentityReserved.WORLD, 'the hole is WORLD: no term holds it');
  assert.equal(prefixes.get('10.0.0.1/32'), idOf(c, 'x/a'));
  assert.equal(c.identities.table.byId.get(block)?.kind, 'cidr');
});

test('nested and overlapping blocks across policies: each boundary resolves to the set of terms holding it; redundant ones are left out', () => {
  const pods = [mkPod('t', '192.168.0.1', { app: 'db' })];
  const c = all(cluster(pods, [
    netpol('x', 'p1', spec({ podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] }] })),
    netpol('x', 'p2', spec({ podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.1.2.0/24' } }] }] })),
    netpol('x', 'p3', spec({ podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] })),
  ]));
  const prefixes = new Map([...c.datapath.ipcache].map(([p, id]) => [formatIpcachePrefix(p), id]));
  const labels = (p: string): readonly string[] => c.identities.table.byId.get(prefixes.get(p) ?? -1)?.labels ?? [];
  assert.deepEqual(labels('10.0.0.0/8'), ['cidr:10.0.0.0/8', 'cidr:10.0.0.0/8 except 10.1.0.0/16']);
  assert.deepEqual(labels('10.1.0.0/16'), ['cidr:10.0.0.0/8']);
  assert.deepEqual(labels('10.1.2.0/24'), ['cidr:10.0.0.0/8', 'cidr:10.1.2.0/24']);
  // Three rules, three peer sets: every identity holding a term is allowed by that term's rule.
  assert.equal(c.stats.cidrIdentities, 3);
});

test('egress named ports make identities exact: same labels, different container port', () => {
  const pods = [
    mkPod('a', '10.0.0.1', { app: 'web' }, [{ name: 'http', port: 80 }]),
    mkPod('b', '10.0.0.2', { app: 'web' }, [{ name: 'http', port: 8080 }]),
    mkPod('s', '10.0.0.3', { app: 'client' }),
  ];
  const ingressOnly = all(cluster(pods, [netpol('x', 'in', spec({ podSelector: pod('nobody'), ingress: [{ ports: [{ port: 'http' }] }] }))]));
  assert.equal(idOf(ingressOnly, 'x/a'), idOf(ingressOnly, 'x/b'), 'ingress named ports resolve on the local pod: no split');
  const c = all(cluster(pods, [netpol('x', 'out', spec({ podSelector: { matchLabels: { app: 'client' } }, egress: [{ ports: [{ port: 'http' }] }] }))]));
  assert.notEqual(idOf(c, 'x/a'), idOf(c, 'x/b'));
  // Any peer + a named port: one entry per identity that defines the name, with its number.
  assert.deepEqual(entries(c, 3, 'egress'), [
    `${idOf(c, 'x/a')}/16/6/80 x/out[0]`,
    `${idOf(c, 'x/b')}/16/6/8080 x/out[0]`,
  ].sort());
});

test('pod identities share equal parts: pod label sets and named-port maps', () => {
  const pods = [
    mkPod('a', '10.0.0.1', { app: 'web' }, [{ name: 'http', port: 80 }]),
    mkPod('b', '10.0.0.2', { app: 'web' }, [{ name: 'http', port: 8080 }]),
    mkPod('c', '10.0.1.1', { app: 'web' }, [{ name: 'http', port: 80 }], 'y'),
  ];
  const c = all(cluster(pods, [netpol('x', 'out', spec({ podSelector: pod('nobody'), egress: [{ ports: [{ port: 'http' }] }] }))]));
  const identity = (ref: string) => {
    const s = c.identities.table.byId.get(idOf(c, ref));
    if (s?.kind !== 'pod') throw new Error(`${ref}: no pod identity`);
    return s;
  };
  const [a, b, y] = [identity('x/a'), identity('x/b'), identity('y/c')];
  assert.notEqual(a, b, 'the port tells them apart');
  assert.deepEqual(a.podLabels, { app: 'web' });
  assert.equal(a.podLabels, b.podLabels, 'one record for equal pod labels');
  assert.equal(a.podLabels, y.podLabels, 'across namespaces too');
  assert.deepEqual([...a.namedPorts], [['http/TCP', 80]]);
  assert.equal(a.namedPorts, y.namedPorts, 'one map for equal named ports');
  assert.notEqual(a.namedPorts, b.namedPorts);
});

test('entry shapes: no ports = class NO_PORTS, protocol only = 0, ports and endPort ranges = port prefixes, SCTP, any peer = identity 0; the endpoint\'s class masks', () => {
  const pods = [mkPod('a', '10.0.0.1', { app: 'web' }, [{ name: 'http', port: 8080 }])];
  const c = all(cluster(pods, [
    netpol('x', 'p', spec({
      podSelector: ALL,
      ingress: [
        {},
        { ports: [{ protocol: 'UDP' }] },
        { ports: [{ protocol: 'SCTP', port: 9000, endPort: 9003 }, { port: 'http' }] },
      ],
    })),
  ]));
  assert.deepEqual(entries(c, 1, 'ingress'), [
    '0/0/17/0 x/p[1]',
    '0/14/132/9000 x/p[2]',
    '0/16/6/8080 x/p[2]',
    '0/17/0/0 x/p[0]',
  ]);
  assert.equal(c.endpoints.get(1)?.entry.flags, 1);
  // Exactly the classes used: 16 (8080), 14 (9000-9003), 0 (UDP), NO_PORTS; nothing for egress (not isolated).
  assert.equal(c.endpoints.get(1)?.entry.ingressPolicyClasses, 2 ** 16 + 2 ** 14 + 2 ** 0 + 2 ** SluicePolicyClass.NO_PORTS);
  assert.equal(c.endpoints.get(1)?.entry.egressPolicyClasses, 0);
});

test('isolation flags: default deny has a flag and no entries; a direction no policy affects has neither', () => {
  const c = xyzCluster([netpol('x', 'deny', { podSelector: ALL, policyTypes: ['Egress'] })]);
  const compiled = all(c);
  const xa = [...compiled.endpoints.values()].find((e) => e.pod.id === 'x/a');
  assert.equal(xa?.entry.flags, 2);
  assert.deepEqual(xa?.isolatedBy, { ingress: [], egress: ['x/deny'] });
  assert.equal(compiled.stats.policyEntries, 0);
  const ya = [...compiled.endpoints.values()].find((e) => e.pod.id === 'y/a');
  assert.equal(ya?.entry.flags, 0);
});

test('when two rules give the same key the smaller rule id wins, and rule ids map back to rules', () => {
  const c = all(cluster([mkPod('a', '10.0.0.1', {})], [
    netpol('x', 'p', spec({ podSelector: ALL, ingress: [{ ports: [{ port: 80 }] }, { ports: [{ port: 80 }, { port: 81 }] }] })),
  ]));
  const m = c.datapath.policy.get(endpointDirection(1, 'ingress')) ?? new Map<number, number>();
  const rules = [...m.values()].map((r) => c.rules.byId.get(r)?.index);
  assert.deepEqual(rules.sort(), [0, 1]);
  for (const packed of m.keys()) assert.equal(unpackPolicyKey(packed).remoteIdentity, 0);
});

test('errors: an endpoint of an unknown pod, of a pod without an address, repeated or invalid ids', () => {
  const c = cluster([mkPod('a', '10.0.0.1', {}), { metadata: { namespace: 'x', name: 'noip' }, spec: { containers: [] } }], []);
  assert.throws(() => compilePolicy({ cluster: c, endpoints: new Map([['x/zz', 1]]) }), (e: unknown) => e instanceof PolicyError && e.code === 'not-found');
  assert.throws(() => compilePolicy({ cluster: c, endpoints: new Map([['x/noip', 1]]) }), (e: unknown) => e instanceof PolicyError && e.code === 'required');
  assert.throws(() => compilePolicy({ cluster: c, endpoints: new Map([['x/a', 0]]) }), (e: unknown) => e instanceof PolicyError && e.code === 'invalid');
  // Pods without an address get no identity but do not stop others.
  assert.equal(all(cluster([mkPod('a', '10.0.0.1', {})], [])).identities.podIdentity.size, 1);
});

test('only local endpoints get entries; every pod gets an ipcache entry', () => {
  const c = xyzCluster([netpol('x', 'deny', { podSelector: ALL, ingress: [{ from: [{ podSelector: ALL }] }] })]);
  const compiled = compilePolicy({ cluster: c, endpoints: new Map([['x/a', 7]]) });
  assert.deepEqual([...compiled.endpoints.keys()], [7]);
  assert.deepEqual([...compiled.datapath.policy.keys()], [endpointDirection(7, 'ingress')]);
  assert.equal(compiled.datapath.ipcache.size, 9);
});

test('recompiling the same snapshot reuses everything: empty diff, same revisions', () => {
  const c = xyzCluster([netpol('x', 'p', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }] }] })]);
  const first = all(c);
  const again = all(c, first);
  assert.equal(again.stats.identitiesReused, true);
  assert.equal(again.stats.recomputed, 0);
  assert.equal(diffSize(diffDatapath(first.datapath, again.datapath)), 0);
  assert.deepEqual([...again.datapath.endpoints], [...first.datapath.endpoints]);
});

test('one policy change recomputes only its namespace, touches only its entries and bumps only affected revisions', () => {
  const policies = [
    netpol('x', 'p', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }] }] }),
    netpol('y', 'q', { podSelector: ALL, ingress: [{ from: [{ namespaceSelector: {} }] }] }),
  ];
  const before = all(xyzCluster(policies));
  // Same pod and namespace objects, one policy replaced: the agent's incremental case.
  const changed = validateNetworkPolicy(netpol('x', 'p', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('c') }] }] }));
  assert.ok(changed.ok);
  const snapshot = assembleCluster([...before.cluster.namespaces.values()], before.cluster.pods, [changed.value, before.cluster.policies[1]!]);
  assert.ok(snapshot.ok);
  const next = all(snapshot.value, before);
  assert.equal(next.stats.identitiesReused, true);
  assert.equal(next.stats.recomputed, 1, 'only x/a ingress');
  const d = diffDatapath(before.datapath, next.datapath);
  assert.deepEqual(d.ipcache, { added: [], changed: [], removed: [] });
  assert.equal(d.policy.added.length, 1);
  assert.equal(d.policy.removed.length, 1);
  assert.deepEqual(d.endpoints.changed.map(([id, e, old]) => [id, e.policyRevision, old.policyRevision]), [[1, 2, 1]]);
});

test('ids survive through a seed: identities, rules and revisions', () => {
  const c = xyzCluster([netpol('x', 'p', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }] }] })]);
  const first = all(c);
  const again = xyzCluster([netpol('x', 'p', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }] }] })]);
  const fromSeed = compilePolicy({ cluster: again, endpoints: new Map(again.pods.map((p, i) => [p.id, i + 1])) }, seedOf(first));
  assert.deepEqual([...fromSeed.identities.podIdentity], [...first.identities.podIdentity]);
  assert.deepEqual([...fromSeed.rules.byKey], [...first.rules.byKey]);
  const withState = compilePolicy({ cluster: c, endpoints: new Map(c.pods.map((p, i) => [p.id, i + 1])) }, { ...seedOf(first), datapath: first.datapath });
  assert.equal(diffSize(diffDatapath(first.datapath, withState.datapath)), 0, 'no revision bump when the maps already hold it');
});

test('incremental recompiles (same pods, endpoints and namespaces; policies changed) equal full compiles', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const rc = randomCase(seed);
    const rng = seededRandom(seed);
    const pick = (): NetworkPolicy[] => rc.policies.filter(() => rng.chance(0.6));
    const first = rc.cluster;
    const endpoints = new Map(first.pods.map((p, i) => [p.id, i + 1]));
    let current = compilePolicy({ cluster: first, endpoints });
    for (let step = 0; step < 4; step++) {
      const validated = pick().map((p) => validateNetworkPolicy(p)).flatMap((r) => (r.ok ? [r.value] : []));
      // Keep unchanged policies as the same objects, as an agent's cache would.
      const policies = validated.map((p) => current.cluster.policies.find((q) => q.namespace === p.namespace && q.name === p.name) ?? p);
      const snapshot = assembleCluster([...first.namespaces.values()], first.pods, policies);
      assert.ok(snapshot.ok);
      const next = compilePolicy({ cluster: snapshot.value, endpoints }, current);
      const full = compilePolicy({ cluster: snapshot.value, endpoints }, seedOf(current));
      const where = `seed ${seed} step ${step}`;
      assert.deepEqual([...next.datapath.ipcache].sort(), [...full.datapath.ipcache].sort(), where);
      assert.deepEqual(
        [...next.datapath.policy].map(([k, m]) => [k, [...m].sort()]).sort(),
        [...full.datapath.policy].map(([k, m]) => [k, [...m].sort()]).sort(),
        where,
      );
      const shape = ([k, e]: readonly [number, { flags: number; ingressPolicyClasses: number; egressPolicyClasses: number }]): number[] =>
        [k, e.flags, e.ingressPolicyClasses, e.egressPolicyClasses];
      assert.deepEqual([...next.datapath.endpoints].map(shape), [...full.datapath.endpoints].map(shape), where);
      // The masks are exactly the classes of the entries (incremental or not).
      for (const [id, e] of next.datapath.endpoints) {
        assert.equal(e.ingressPolicyClasses, policyClassMask(next.datapath.policy.get(endpointDirection(id, 'ingress'))), `${where}: ${id} ingress mask`);
        assert.equal(e.egressPolicyClasses, policyClassMask(next.datapath.policy.get(endpointDirection(id, 'egress'))), `${where}: ${id} egress mask`);
      }
      assert.deepEqual(
        [...next.endpoints.values()].map((e) => e.isolatedBy),
        [...full.endpoints.values()].map((e) => e.isolatedBy),
        where,
      );
      for (const [id, e] of next.datapath.endpoints) {
        const old = current.datapath.endpoints.get(id);
        const moved = (['ingress', 'egress'] as const).some((d) => current.datapath.policy.get(endpointDirection(id, d)) !== next.datapath.policy.get(endpointDirection(id, d)));
        if (old !== undefined && old.flags === e.flags && !moved) assert.equal(e.policyRevision, old.policyRevision, `${where}: endpoint ${id} revision bumped without a change`);
      }
      current = next;
    }
  }
});
