/**
 * Properties of the evaluator over random clusters and policies (seeded, so a
 * failure reproduces): the verdict is the AND of its directions, policies
 * are additive and their order is irrelevant, an address means its pod, and
 * without policies everything is allowed. The randomized model-vs-BPF
 * differential test reuses this generator's idea against the datapath.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCluster, type Cluster } from '../../src/policy/cluster.js';
import { formatIssue } from '../../src/policy/errors.js';
import type { LabelSelector, Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, Pod } from '../../src/policy/k8s-types.js';
import type { TrafficProtocol } from '../../src/policy/match.js';
import { evaluate } from '../../src/policy/model.js';

/** Deterministic PRNG (LCG), so a failure reproduces from its seed. */
function prng(seed: number): { int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return {
    int: (n) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    chance: (p) => next() < p,
  };
}
type Rng = ReturnType<typeof prng>;

interface World {
  readonly namespaces: Namespace[];
  readonly pods: Pod[];
  readonly podIds: string[];
  readonly podIps: string[];
}

function randomWorld(rng: Rng): World {
  const namespaces: Namespace[] = [];
  const pods: Pod[] = [];
  const podIds: string[] = [];
  const podIps: string[] = [];
  for (let n = 0; n < 3; n++) {
    const name = `n${n}`;
    const labels: Record<string, string> = { team: rng.pick(['a', 'b']) };
    if (rng.chance(0.5)) labels['env'] = rng.pick(['prod', 'dev']);
    namespaces.push({ metadata: { name, labels } });
    const count = 2 + rng.int(3);
    for (let i = 0; i < count; i++) {
      const podLabels: Record<string, string> = { app: rng.pick(['web', 'db', 'cache']) };
      if (rng.chance(0.4)) podLabels['tier'] = rng.pick(['1', '2']);
      const ip = `10.1.${n}.${i + 1}`;
      pods.push({
        metadata: { namespace: name, name: `p${i}`, labels: podLabels },
        spec: {
          containers: [
            { name: 'c', ports: [{ name: 'http', containerPort: rng.pick([80, 8080]) }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] },
          ],
        },
        status: { podIP: ip },
      });
      podIds.push(`${name}/p${i}`);
      podIps.push(ip);
    }
  }
  return { namespaces, pods, podIds, podIps };
}

function randomSelector(rng: Rng, kind: 'pod' | 'ns'): LabelSelector {
  switch (rng.int(4)) {
    case 0:
      return {};
    case 1:
      return kind === 'pod' ? { matchLabels: { app: rng.pick(['web', 'db', 'cache']) } } : { matchLabels: { team: rng.pick(['a', 'b']) } };
    case 2:
      return { matchExpressions: [{ key: kind === 'pod' ? 'tier' : 'env', operator: rng.pick(['Exists', 'DoesNotExist']) }] };
    default:
      return kind === 'pod'
        ? { matchExpressions: [{ key: 'app', operator: rng.pick(['In', 'NotIn']), values: ['web', 'db'] }] }
        : { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: rng.pick(['In', 'NotIn']), values: ['n1'] }] };
  }
}

function randomPeer(rng: Rng): NetworkPolicyPeer {
  switch (rng.int(4)) {
    case 0:
      return { podSelector: randomSelector(rng, 'pod') };
    case 1:
      return { namespaceSelector: randomSelector(rng, 'ns') };
    case 2:
      return { podSelector: randomSelector(rng, 'pod'), namespaceSelector: randomSelector(rng, 'ns') };
    default: {
      const n = rng.int(3);
      return rng.chance(0.5)
        ? { ipBlock: { cidr: '10.1.0.0/16', except: [`10.1.${n}.0/24`] } }
        : { ipBlock: { cidr: `10.1.${n}.${1 + rng.int(3)}/32` } };
    }
  }
}

function randomPorts(rng: Rng): NetworkPolicyPort[] | undefined {
  if (rng.chance(0.4)) return undefined;
  const choices: NetworkPolicyPort[] = [
    { port: 80 },
    { port: 'http' },
    { protocol: 'UDP', port: 'dns' },
    { protocol: 'UDP' },
    { port: 8000, endPort: 8100 },
    { protocol: 'SCTP', port: 80 },
  ];
  return Array.from({ length: 1 + rng.int(2) }, () => rng.pick(choices));
}

function randomPolicy(rng: Rng, name: string): NetworkPolicy {
  const rules = (): { peers?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[] =>
    Array.from({ length: rng.int(3) }, () => {
      const peers = rng.chance(0.3) ? undefined : Array.from({ length: 1 + rng.int(2) }, () => randomPeer(rng));
      const ports = randomPorts(rng);
      return { ...(peers === undefined ? {} : { peers }), ...(ports === undefined ? {} : { ports }) };
    });
  const types = rng.pick([undefined, ['Ingress'], ['Egress'], ['Ingress', 'Egress']]);
  return {
    metadata: { namespace: `n${rng.int(3)}`, name },
    spec: {
      podSelector: randomSelector(rng, 'pod'),
      ...(types === undefined ? {} : { policyTypes: types }),
      ingress: rules().map((r) => ({ ...(r.peers === undefined ? {} : { from: r.peers }), ...(r.ports === undefined ? {} : { ports: r.ports }) })),
      egress: rules().map((r) => ({ ...(r.peers === undefined ? {} : { to: r.peers }), ...(r.ports === undefined ? {} : { ports: r.ports }) })),
    },
  };
}

function cluster(world: World, policies: readonly NetworkPolicy[]): Cluster {
  const r = buildCluster({ namespaces: world.namespaces, pods: world.pods, networkPolicies: policies });
  if (!r.ok) throw new Error(r.errors.map(formatIssue).join('\n'));
  return r.value;
}

const PROBES: readonly [number, TrafficProtocol][] = [
  [80, 'TCP'],
  [8080, 'TCP'],
  [8050, 'TCP'],
  [53, 'UDP'],
  [80, 'SCTP'],
  [0, 'ICMP'],
];

const SEEDS = Array.from({ length: 60 }, (_, i) => 1000 + i);

test('the verdict is the AND of egress and ingress, and names rules exactly when isolated', () => {
  for (const seed of SEEDS) {
    const rng = prng(seed);
    const world = randomWorld(rng);
    const c = cluster(world, Array.from({ length: 1 + rng.int(5) }, (_, i) => randomPolicy(rng, `p${i}`)));
    for (const [port, protocol] of PROBES) {
      for (const from of world.podIds) {
        for (const to of world.podIds) {
          const v = evaluate(c, from, to, port, protocol);
          assert.equal(v.allowed, v.egress.allowed && v.ingress.allowed, `seed ${seed}: ${v.reason}`);
          for (const d of [v.egress, v.ingress]) {
            assert.equal(d.allowed, d.isolatedBy.length === 0 || d.allowedBy.length > 0, `seed ${seed}: ${v.reason}`);
            assert.ok(d.allowedBy.every((r) => d.isolatedBy.includes(r.policy)), `seed ${seed}: rules only of isolating policies`);
          }
        }
      }
    }
  }
});

test('policies are additive: a new policy never takes away from an isolated direction', () => {
  for (const seed of SEEDS) {
    const rng = prng(seed);
    const world = randomWorld(rng);
    const base = Array.from({ length: 1 + rng.int(4) }, (_, i) => randomPolicy(rng, `p${i}`));
    const before = cluster(world, base);
    const after = cluster(world, [...base, randomPolicy(rng, 'extra')]);
    for (const [port, protocol] of PROBES) {
      for (const from of world.podIds) {
        for (const to of world.podIds) {
          const b = evaluate(before, from, to, port, protocol);
          const a = evaluate(after, from, to, port, protocol);
          for (const dir of ['egress', 'ingress'] as const) {
            if (b[dir].isolatedBy.length > 0 && b[dir].allowed) {
              assert.ok(a[dir].allowed, `seed ${seed} ${from}→${to} ${protocol}/${port} ${dir}: ${a.reason}`);
            }
            if (!a[dir].allowed) assert.ok(a[dir].isolatedBy.length > 0);
          }
        }
      }
    }
  }
});

test('the order of policies does not matter, and an address means its pod', () => {
  for (const seed of SEEDS.slice(0, 20)) {
    const rng = prng(seed);
    const world = randomWorld(rng);
    const policies = Array.from({ length: 2 + rng.int(4) }, (_, i) => randomPolicy(rng, `p${i}`));
    const forward = cluster(world, policies);
    const backward = cluster(world, [...policies].reverse());
    for (const [port, protocol] of PROBES) {
      world.podIds.forEach((from, i) => {
        world.podIds.forEach((to, j) => {
          const v = evaluate(forward, from, to, port, protocol);
          assert.deepEqual(evaluate(backward, from, to, port, protocol), v, `seed ${seed}`);
          assert.equal(evaluate(forward, world.podIps[i] ?? '', world.podIps[j] ?? '', port, protocol).allowed, v.allowed);
        });
      });
    }
  }
});

test('without policies everything is allowed', () => {
  const world = randomWorld(prng(7));
  const c = cluster(world, []);
  for (const [port, protocol] of PROBES) {
    for (const from of world.podIds) for (const to of world.podIds) assert.ok(evaluate(c, from, to, port, protocol).allowed);
  }
});
