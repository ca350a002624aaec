/**
 * The applier over in-memory maps: it reaches the new state; after EVERY
 * single write of a transition, no packet is allowed that neither the old
 * nor the new state allows (random transitions: policies added, removed,
 * rewritten, a pod relabelled, ipBlocks appearing; endpoints moving between
 * port classes, also from maps read back after an apply that died before
 * its endpoint writes); and when writes fail (full maps, injected errors)
 * it reports them and the result allows at most what the new state allows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceEndpointFlags } from '../../src/datapath/generated/abi.js';
import { formatIpv4 } from '../../src/policy/cidr.js';
import { buildCluster, type Cluster } from '../../src/policy/cluster.js';
import { compilePolicy, type CompiledPolicy } from '../../src/policy/compile.js';
import { lookupConnection, type LookupEnd } from '../../src/policy/datapath-lookup.js';
import {
  EMPTY_DATAPATH_STATE, endpointClasses, policyClassOfPacked, splitEndpointDirection, type DatapathState,
} from '../../src/policy/datapath-state.js';
import { diffDatapath, diffSize } from '../../src/policy/diff.js';
import type { NetworkPolicy, Pod } from '../../src/policy/k8s-types.js';
import type { TrafficProtocol } from '../../src/policy/match.js';
import { evaluate } from '../../src/policy/model.js';
import { randomCase, seededRandom, type RandomCase, type Rng } from '../policy/random-cluster.js';
import { ALL, netpol, pod, xyzCluster } from '../policy/xyz.js';
import { applyDatapathState, policyGroup, type ApplyReport } from '../../src/reconcile/policy-group.js';
import { Phase, type Reconciler } from '../../src/reconcile/reconciler.js';
import type { PolicyRoundInput } from '../../src/reconcile/policy-input.js';
import { runRound } from '../../src/reconcile/round.js';
import { SimMaps } from './sim-maps.js';

/** One round of the policy group's owners from what `maps` hold to `to`. */
function applyState(maps: SimMaps, to: DatapathState): ApplyReport {
  return applyDatapathState(policyGroup(maps), to);
}

const { INGRESS_ISOLATED, POLICY_INCOMPLETE } = SluiceEndpointFlags;

const PROBES: readonly { port: number; protocol: TrafficProtocol }[] = [
  { port: 80, protocol: 'TCP' },
  { port: 8080, protocol: 'TCP' },
  { port: 53, protocol: 'UDP' },
  { port: 0, protocol: 'ICMP' },
];

function compileAll(cluster: Cluster, previous?: CompiledPolicy): CompiledPolicy {
  return compilePolicy({ cluster, endpoints: new Map(cluster.pods.map((p, i) => [p.id, i + 1])) }, previous);
}

function ends(c: Cluster): Map<string, LookupEnd> {
  const out = new Map<string, LookupEnd>(c.pods.map((p, i) => [p.id, { addr: Number(p.ip?.value ?? 0), endpointId: i + 1 }]));
  for (const ip of externals(c)) out.set(ip, { addr: ipNumber(ip) });
  return out;
}

/**
 * Addresses outside the pods, inside and around every ipBlock and except
 * hole of the policies (first and last address of each prefix): where the
 * ipcache's CIDR entries, and their write order, decide.
 */
function externals(c: Cluster): string[] {
  const pods = new Set(c.pods.map((p) => Number(p.ip?.value ?? 0)));
  const out = new Set<number>();
  for (const policy of c.policies) {
    for (const rule of [...policy.ingress, ...policy.egress]) {
      if (rule.peers === 'all') continue;
      for (const peer of rule.peers) {
        if (peer.kind !== 'ipBlock' || peer.cidr.family !== 4) continue;
        for (const prefix of [peer.cidr, ...peer.except]) {
          const base = Number(prefix.base);
          const size = 2 ** (32 - prefix.prefixlen);
          for (const a of size > 2 ? [base + 1, base + size - 2] : [base]) if (!pods.has(a)) out.add(a);
        }
      }
    }
  }
  return [...out].sort((a, b) => a - b).slice(0, 8).map(formatIpv4);
}

function ipNumber(ip: string): number {
  return ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** The pairs a check covers: every pod pair, and each external address with every pod, both ways. */
function pairs(c: Cluster, extra: readonly string[]): [string, string][] {
  const pods = c.pods.map((p) => p.id);
  const out: [string, string][] = [];
  for (const a of pods) for (const b of pods) out.push([a, b]);
  for (const x of extra) for (const p of pods) out.push([x, p], [p, x]);
  return out;
}

type Probe = { readonly port: number; readonly protocol: TrafficProtocol };

/** [from, to, probe index] → allowed, for every pair and probe. */
function verdicts(c: Cluster, extra: readonly string[] = [], probes: readonly Probe[] = PROBES): Map<string, boolean> {
  const out = new Map<string, boolean>();
  probes.forEach(({ port, protocol }, i) => {
    for (const [a, b] of pairs(c, extra)) out.set(`${a} ${b} ${i}`, evaluate(c, a, b, port, protocol).allowed);
  });
  return out;
}

function simulated(state: DatapathState, c: Cluster, extra: readonly string[] = [], e = ends(c),
  probes: readonly Probe[] = PROBES): Map<string, boolean> {
  for (const x of extra) if (!e.has(x)) e.set(x, { addr: ipNumber(x) });
  const out = new Map<string, boolean>();
  probes.forEach(({ port, protocol }, i) => {
    for (const [a, b] of pairs(c, extra)) out.set(`${a} ${b} ${i}`, lookupConnection(state, e.get(a)!, e.get(b)!, protocol, port).allowed);
  });
  return out;
}

/** Two snapshots over the same pods: policy subsets (one maybe rewritten) and maybe one pod relabelled. */
function transition(rc: RandomCase, rng: Rng): { a: Cluster; b: Cluster } {
  const subset = (): NetworkPolicy[] => rc.policies.filter(() => rng.chance(0.6));
  const pa = subset();
  let pb = subset();
  if (rng.chance(0.5)) {
    // Rewrite one policy in place: same name, another spec (the S/D case lives here).
    const other = randomCase(rc.seed + 7777).policies[0];
    if (other?.spec && pa[0] !== undefined) pb = [{ ...pa[0], spec: other.spec }, ...pb.filter((p) => p.metadata?.name !== pa[0]?.metadata?.name)];
  }
  let podsB: readonly Pod[] = rc.pods;
  if (rng.chance(0.4)) {
    const i = rng.int(rc.pods.length);
    podsB = rc.pods.map((p, j) => (j !== i ? p : { ...p, metadata: { ...p.metadata, labels: { app: rng.pick(['web', 'db']), ...(rng.chance(0.5) ? { tier: '1' } : {}) } } }));
  }
  const build = (pods: readonly Pod[], policies: NetworkPolicy[]): Cluster => {
    const r = buildCluster({ namespaces: rc.namespaces, pods, networkPolicies: policies });
    if (!r.ok) throw new Error(`seed ${rc.seed}: invalid transition`);
    return r.value;
  };
  return { a: build(rc.pods, pa), b: build(podsB, pb) };
}

test('the applier takes the maps from one state to the next, and an unchanged state costs no write', () => {
  const a = compileAll(xyzCluster([]));
  const b = compileAll(xyzCluster([netpol('x', 'p', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }], ports: [{ port: 80 }] }] })]), a);
  const maps = new SimMaps(a.datapath);
  const report = applyState(maps, b.datapath);
  assert.ok(report.ok);
  assert.equal(diffSize(diffDatapath(maps.state, b.datapath)), 0);
  const again = applyState(maps, b.datapath);
  assert.equal(again.written.ipcache + again.written.policy + again.written.endpoints, 0);
});

test('a policy rewritten from "S may send, D may not receive" to the reverse never lets S reach D mid-apply', () => {
  // One policy selects both pods: egress open / ingress closed, then the reverse.
  const before = xyzCluster([netpol('x', 'p', { podSelector: ALL, policyTypes: ['Ingress', 'Egress'], egress: [{}], ingress: [] })]);
  const after = xyzCluster([netpol('x', 'p', { podSelector: ALL, policyTypes: ['Ingress', 'Egress'], ingress: [{}], egress: [] })]);
  const a = compileAll(before);
  const b = compileAll(after, a);
  const e = ends(after);
  let seen = 0;
  const maps: SimMaps = new SimMaps(a.datapath, {
    afterWrite: () => {
      seen++;
      assert.equal(lookupConnection(maps.state, e.get('x/a')!, e.get('x/b')!, 'TCP', 80).allowed, false, `after write ${seen}`);
    },
  });
  assert.ok(applyState(maps, b.datapath).ok);
  assert.ok(seen > 0);
});

test('no write of a transition allows what neither state allows (40 random transitions, every pair after every write)', () => {
  const rng = seededRandom(99);
  let writes = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const rc = randomCase(seed);
    const { a, b } = transition(rc, rng);
    const ca = compileAll(a);
    const cb = compileAll(b, ca);
    const extra = [...new Set([...externals(a), ...externals(b)])];
    const va = verdicts(a, extra);
    const vb = verdicts(b, extra);
    const e = ends(b);
    const maps: SimMaps = new SimMaps(ca.datapath, {
      afterWrite: () => {
        writes++;
        for (const [k, ok] of simulated(maps.state, b, extra, e)) {
          if (ok) assert.ok(va.get(k) === true || vb.get(k) === true, `seed ${seed}: ${k} allowed mid-apply by neither state`);
        }
      },
    });
    assert.ok(applyState(maps, cb.datapath).ok);
    assert.deepEqual(simulated(maps.state, b, extra, e), vb, `seed ${seed}: final state`);
  }
  assert.ok(writes > 200, `only ${writes} writes exercised`);
});

// ---- port-class masks ------------------------------------------------------------

/** Ports on both sides of every block boundary the class states below use, and ICMP. */
const CLASS_PROBES: readonly Probe[] = [
  ...[79, 80, 81, 7999, 8000, 8063, 8064, 8079, 8080, 8081, 8095, 8096, 8100, 8101].map((port) => ({ port, protocol: 'TCP' as const })),
  { port: 53, protocol: 'UDP' }, { port: 54, protocol: 'UDP' }, { port: 8080, protocol: 'UDP' }, { port: 0, protocol: 'ICMP' },
];

/** States that move x/a's and x/b's entries between port classes (16, the blocks of ranges, 0, no ports). */
const CLASS_STATES: readonly (readonly NetworkPolicy[])[] = [
  [],
  [netpol('x', 'p', { podSelector: pod('a'), ingress: [
    { from: [{ podSelector: pod('b') }], ports: [{ protocol: 'TCP', port: 8000, endPort: 8100 }] },
    { ports: [{ protocol: 'UDP', port: 53 }] },
  ] })],
  [
    netpol('x', 'p', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }], ports: [{ port: 8080 }] }, { from: [{ podSelector: pod('c') }] }] }),
    netpol('x', 'q', { podSelector: pod('b'), policyTypes: ['Egress'], egress: [{ to: [{ podSelector: pod('a') }], ports: [{ protocol: 'TCP' }] }] }),
  ],
  [
    netpol('x', 'p', { podSelector: pod('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 80 }] }] }),
    netpol('x', 'q', { podSelector: pod('b'), policyTypes: ['Egress'], egress: [{ to: [{ podSelector: pod('a') }], ports: [{ port: 8064, endPort: 8095 }] }] }),
  ],
  // x/b gains ingress isolation; its egress keeps class 11 with another entry (UDP instead of TCP).
  [netpol('x', 'q', { podSelector: pod('b'), policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [{ podSelector: pod('c') }] }],
    egress: [{ to: [{ podSelector: pod('a') }], ports: [{ protocol: 'UDP', port: 8064, endPort: 8095 }] }] })],
  // As 3, and x/b gains ingress isolation while its egress entries stay.
  [
    netpol('x', 'p', { podSelector: pod('a'), ingress: [{ ports: [{ protocol: 'TCP', port: 80 }] }] }),
    netpol('x', 'q', { podSelector: pod('b'), policyTypes: ['Ingress', 'Egress'], ingress: [{ from: [{ podSelector: pod('c') }] }],
      egress: [{ to: [{ podSelector: pod('a') }], ports: [{ port: 8064, endPort: 8095 }] }] }),
  ],
];

/** Whether the endpoint entry of `state` makes the entry `packed` of `epdir` visible (isolated direction, class in the mask). */
function visible(state: DatapathState, epdir: number, packed: number): boolean {
  const { endpointId, direction } = splitEndpointDirection(epdir);
  const ep = state.endpoints.get(endpointId);
  const isolated = ep !== undefined && (ep.flags & (direction === 'ingress' ? 1 : 2)) !== 0;
  return isolated && (endpointClasses(ep, direction) & (2 ** policyClassOfPacked(packed))) !== 0;
}

/**
 * Entries the maps show (present, isolated direction, class in the mask)
 * that neither state shows: the old one does not (absent, or hidden by its
 * mask) and the new one does not hold. Per direction, stricter than a
 * connection check, which another direction's denial can mask.
 */
function visibleByNeither(now: DatapathState, from: DatapathState, to: DatapathState): string[] {
  const out: string[] = [];
  for (const [epdir, entries] of now.policy) {
    for (const [packed, rule] of entries) {
      if (!visible(now, epdir, packed)) continue;
      const inFrom = from.policy.get(epdir)?.get(packed) === rule && visible(from, epdir, packed);
      if (!inFrom && to.policy.get(epdir)?.get(packed) !== rule) out.push(`${JSON.stringify(splitEndpointDirection(epdir))} ${packed}`);
    }
  }
  return out;
}

/** Entries both states have (same key, same rule) whose class the maps' endpoint entry does not name: hidden. */
function hiddenCommonEntries(now: DatapathState, a: DatapathState, b: DatapathState): string[] {
  const out: string[] = [];
  for (const [epdir, entries] of a.policy) {
    const { endpointId, direction } = splitEndpointDirection(epdir);
    const ep = now.endpoints.get(endpointId);
    if (ep === undefined) continue; // no entry: drops everything, a separate (closed) matter
    for (const [packed, rule] of entries) {
      if (b.policy.get(epdir)?.get(packed) !== rule) continue;
      if ((endpointClasses(ep, direction) & (2 ** policyClassOfPacked(packed))) === 0) out.push(`${endpointId} ${direction} ${packed}`);
    }
  }
  return out;
}

test('endpoints moving between port classes: after every write nothing neither state allows passes, and no entry both states share is hidden', () => {
  const clusters = [0, 1, 2, 3, 4, 1, 0, 3, 5, 2, 4, 0].map((i) => xyzCluster([...(CLASS_STATES[i] ?? [])]));
  let current = compileAll(clusters[0] as Cluster);
  let inMaps: DatapathState = current.datapath;
  let writes = 0;
  for (const [step, c] of clusters.slice(1).entries()) {
    const next = compileAll(c, current);
    const [va, vb] = [verdicts(current.cluster, [], CLASS_PROBES), verdicts(c, [], CLASS_PROBES)];
    assert.deepEqual(simulated(next.datapath, c, [], ends(c), CLASS_PROBES), vb, `step ${step}: the compiled state is the model`);
    const [from, to] = [current.datapath, next.datapath];
    const maps: SimMaps = new SimMaps(inMaps, {
      afterWrite: () => {
        writes++;
        for (const [k, ok] of simulated(maps.state, c, [], ends(c), CLASS_PROBES)) {
          if (ok) assert.ok(va.get(k) === true || vb.get(k) === true, `step ${step}, write ${writes}: ${k} allowed by neither state`);
        }
        assert.deepEqual(hiddenCommonEntries(maps.state, from, to), [], `step ${step}, write ${writes}`);
        assert.deepEqual(visibleByNeither(maps.state, from, to), [], `step ${step}, write ${writes}`);
      },
    });
    assert.ok(applyState(maps, to).ok);
    assert.equal(diffSize(diffDatapath(maps.state, to)), 0, `step ${step}: maps hold the new state, masks included`);
    inMaps = maps.state;
    current = next;
  }
  assert.ok(writes > 30, `only ${writes} writes exercised`);
});

test('maps read back after an apply died before its endpoint writes (new entries, old masks): the next apply shows no hidden entry early', () => {
  for (const [i, j, k] of [[1, 2, 3], [2, 3, 1], [3, 1, 0], [1, 3, 2], [0, 2, 1], [2, 3, 4], [4, 2, 3]] as const) {
    const ca = compileAll(xyzCluster([...(CLASS_STATES[i] ?? [])]));
    const cb = compileAll(xyzCluster([...(CLASS_STATES[j] ?? [])]), ca);
    const dead = new SimMaps(ca.datapath);
    // The dead apply: every step up to and including the policy upserts, no endpoint upsert or delete.
    const g = policyGroup(dead);
    const diesAfterRestrict: Reconciler<PolicyRoundInput> = {
      name: g.endpoints.name,
      group: g.endpoints.group,
      plan: (input) => g.endpoints.plan(input).filter((s) => s.phase === Phase.RESTRICT),
      settle: (complete) => g.endpoints.settle(complete),
      invalidate: () => g.endpoints.invalidate(),
      closeEndpoint: (id, fail) => g.endpoints.closeEndpoint(id, fail),
    };
    const round = runRound([diesAfterRestrict, g.ipcache, g.policy], { datapath: cb.datapath });
    assert.deepEqual(round.owners.flatMap((o) => o.failures), []);
    const readBack: DatapathState = structuredClone(dead.state);
    const hidden = [...readBack.policy].some(([epdir, m]) => {
      const { endpointId, direction } = splitEndpointDirection(epdir);
      const ep = readBack.endpoints.get(endpointId);
      return ep !== undefined && [...m.keys()].some((p) => (endpointClasses(ep, direction) & (2 ** policyClassOfPacked(p))) === 0);
    });
    const target = xyzCluster([...(CLASS_STATES[k] ?? [])]);
    const cc = compileAll(target, cb);
    // What the dead maps do is the "old" state now (hidden entries stay hidden: datapath-lookup honours the masks).
    const vr = simulated(readBack, target, [], ends(target), CLASS_PROBES);
    const vc = verdicts(target, [], CLASS_PROBES);
    let writes = 0;
    const maps: SimMaps = new SimMaps(readBack, {
      afterWrite: () => {
        writes++;
        for (const [key, ok] of simulated(maps.state, target, [], ends(target), CLASS_PROBES)) {
          if (ok) assert.ok(vr.get(key) === true || vc.get(key) === true, `${i}->${j} died, ->${k}: ${key} allowed by neither`);
        }
        assert.deepEqual(visibleByNeither(maps.state, readBack, cc.datapath), [], `${i}->${j} died, ->${k}, write ${writes}`);
      },
    });
    assert.ok(applyState(maps, cc.datapath).ok);
    assert.equal(diffSize(diffDatapath(maps.state, cc.datapath)), 0, `${i}->${j} died, ->${k}: final`);
    assert.deepEqual(simulated(maps.state, target, [], ends(target), CLASS_PROBES), vc);
    if (i === 1 && j === 2) assert.ok(hidden && writes > 0, 'the dead apply left entries its masks hide');
  }
});

test('full maps and failing writes are reported, and the result allows at most what the new state allows', () => {
  const rng = seededRandom(5);
  let failures = 0;
  let closedSomething = 0;
  for (let seed = 100; seed < 160; seed++) {
    const rc = randomCase(seed);
    const { a, b } = transition(rc, rng);
    const ca = compileAll(a);
    const cb = compileAll(b, ca);
    const mode = seed % 3;
    const maps = new SimMaps(ca.datapath, {
      batch: seed % 2 === 0,
      ...(mode === 0 ? { capacity: { policy: Math.max(0, countEntries(ca.datapath) - 1) } } : {}),
      ...(mode === 1 ? { capacity: { ipcache: ca.datapath.ipcache.size } } : {}),
      ...(mode === 2 ? { failWrite: () => rng.chance(0.15) } : {}),
    });
    const report = applyState(maps, cb.datapath);
    failures += report.failures.length;
    closedSomething += report.failClosed.endpointsClosed.length + report.failClosed.taintedIdentities.length;
    assert.equal(report.ok, report.failures.length === 0);
    const extra = externals(b);
    const vb = verdicts(b, extra);
    for (const [k, ok] of simulated(maps.state, b, extra)) {
      if (ok) assert.ok(vb.get(k) === true, `seed ${seed} (mode ${mode}): ${k} allowed after a failed apply; failures: ${report.failures.map((f) => f.key).join('; ')}`);
    }
  }
  assert.ok(failures > 20, `only ${failures} failures injected`);
  assert.ok(closedSomething > 0, 'no fail-closed action was exercised');
});

test('a full policy map: isolation still lands, the missing allows deny, the report names the entries', () => {
  const a = compileAll(xyzCluster([]));
  const b = compileAll(xyzCluster([netpol('x', 'allow-b', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }] }] })]), a);
  const maps = new SimMaps(EMPTY_DATAPATH_STATE, { capacity: { policy: 0 } });
  const report = applyState(maps, b.datapath);
  assert.equal(report.ok, false);
  assert.ok(report.failures.every((f) => f.map === 'policy' && f.step === 'policy-upsert' && f.errno === 7), JSON.stringify(report.failures));
  assert.match(report.failures[0]?.key ?? '', /^endpoint 1 ingress identity \d+ every protocol and port$/);
  const e = ends(b.cluster);
  assert.equal(maps.endpointData.get(1)?.flags, INGRESS_ISOLATED | POLICY_INCOMPLETE, 'x/a is isolated, and closed as a unit');
  assert.deepEqual(report.failClosed.endpointsClosed, [1]);
  assert.deepEqual(lookupConnection(maps.state, e.get('x/b')!, e.get('x/a')!, 'TCP', 80).ingress, { verdict: 'incomplete' });
  assert.deepEqual(lookupConnection(maps.state, e.get('x/a')!, e.get('x/b')!, 'TCP', 80).egress, { verdict: 'incomplete' }, 'both directions');
  assert.equal(lookupConnection(maps.state, e.get('x/b')!, e.get('x/c')!, 'TCP', 80).allowed, true, 'others unaffected');
});

/** x/a accepts x/b on TCP 80, 81 and 82 (three entries for endpoint 1); x/c accepts x/b on 80. */
function threePorts(): CompiledPolicy {
  return compileAll(xyzCluster([
    netpol('x', 'a-ports', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }], ports: [{ port: 80 }, { port: 81 }, { port: 82 }] }] }),
    netpol('x', 'c-port', { podSelector: pod('c'), ingress: [{ from: [{ podSelector: pod('b') }], ports: [{ port: 80 }] }] }),
  ]));
}

test('POLICY_INCOMPLETE: one allow of an endpoint that does not fit closes that endpoint as a unit, with a revision past both states', () => {
  const a = compileAll(xyzCluster([]));
  const b = threePorts();
  for (const batch of [false, true]) {
    // Room for everything but one entry; x/c's entry goes first (endpoint order), so x/a is the one cut short.
    const maps = new SimMaps(a.datapath, { batch, capacity: { policy: countEntries(b.datapath) - 1 } });
    const report = applyState(maps, b.datapath);
    assert.equal(report.failures.length, 1, JSON.stringify(report.failures));
    const closedId = report.failClosed.endpointsClosed[0];
    assert.deepEqual(report.failClosed.endpointsClosed, [closedId]);
    const entry = maps.endpointData.get(closedId!);
    const revisions = [a.datapath.endpoints.get(closedId!)?.policyRevision ?? 0, b.datapath.endpoints.get(closedId!)?.policyRevision ?? 0];
    assert.equal(entry?.flags, INGRESS_ISOLATED | POLICY_INCOMPLETE);
    assert.equal(entry?.policyRevision, Math.max(...revisions) + 1, 'a bump: conntrack re-checks established connections');
    // Every endpoint but the closed one is exactly as b wants it.
    for (const [id, want] of b.datapath.endpoints) if (id !== closedId) assert.deepEqual(maps.endpointData.get(id), want, `endpoint ${id}`);
    const e = ends(b.cluster);
    const closedPod = [...e].find(([, end]) => end.endpointId === closedId)?.[0];
    for (const port of [80, 81, 82]) {
      assert.deepEqual(lookupConnection(maps.state, e.get('x/b')!, e.get(closedPod!)!, 'TCP', port).ingress, { verdict: 'incomplete' }, `port ${port}`);
    }
  }
});

test('POLICY_INCOMPLETE: marking needs no free slot (the endpoints map is full), and the next complete apply clears it', () => {
  const a = compileAll(xyzCluster([]));
  const b = threePorts();
  const maps = new SimMaps(a.datapath, { capacity: { policy: 1, endpoints: a.datapath.endpoints.size } });
  const report = applyState(maps, b.datapath);
  assert.ok(report.failures.every((f) => f.map === 'policy' && f.errno === 7), JSON.stringify(report.failures));
  assert.deepEqual(report.failClosed.endpointsClosed, [1, 3], 'x/a and x/c: each lost an allow');
  for (const id of [1, 3]) assert.equal((maps.endpointData.get(id)?.flags ?? 0) & POLICY_INCOMPLETE, POLICY_INCOMPLETE);
  assert.equal((maps.endpointData.get(2)?.flags ?? 0) & POLICY_INCOMPLETE, 0, 'x/b had nothing to write');

  // As the agent does after a failure: read back, plan from what is there. Room now: the flags go.
  const readBack = maps.state;
  const roomy = new SimMaps(readBack);
  const again = applyState(roomy, b.datapath);
  assert.deepEqual(again.failures, []);
  assert.deepEqual(again.failClosed.endpointsClosed, []);
  for (const [id, want] of b.datapath.endpoints) assert.deepEqual(roomy.endpointData.get(id), want, `endpoint ${id}`);
  const e = ends(b.cluster);
  assert.equal(lookupConnection(roomy.state, e.get('x/b')!, e.get('x/a')!, 'TCP', 82).allowed, true);
  assert.equal(lookupConnection(roomy.state, e.get('x/b')!, e.get('x/a')!, 'TCP', 83).allowed, false);
});

test('POLICY_INCOMPLETE read back (a restarted agent): a plan that fails again marks it again, with a new revision', () => {
  const a = compileAll(xyzCluster([]));
  const b = threePorts();
  const first = new SimMaps(a.datapath, { capacity: { policy: 1 } });
  applyState(first, b.datapath);
  const readBack = first.state;
  const revision = readBack.endpoints.get(1)?.policyRevision ?? 0;
  const second = new SimMaps(readBack, { capacity: { policy: 1 } });
  const report = applyState(second, b.datapath);
  assert.ok(report.failures.length > 0);
  assert.equal(second.endpointData.get(1)?.flags, INGRESS_ISOLATED | POLICY_INCOMPLETE, 'the endpoint upsert does not clear it');
  assert.ok((second.endpointData.get(1)?.policyRevision ?? 0) > revision);
});

test('POLICY_INCOMPLETE cannot be written: the endpoint entry goes instead (no entry drops everything), both reported', () => {
  const a = compileAll(xyzCluster([]));
  const b = threePorts();
  const maps = new SimMaps(a.datapath, { capacity: { policy: 1 }, failWrite: (map, op) => map === 'endpoints' && op === 'update' });
  const report = applyState(maps, b.datapath);
  assert.deepEqual(report.failClosed.endpointsClosed, [1, 3]);
  assert.ok(report.failures.some((f) => f.step === 'endpoint-incomplete' && f.key === 'endpoint 1'), JSON.stringify(report.failures));
  assert.equal(maps.endpointData.has(1), false);
  assert.equal(maps.endpointData.has(3), false);
  assert.equal(maps.endpointData.has(2), true);
});

test('batches: a failure part-way is recorded once and the rest still goes in', () => {
  const b = compileAll(xyzCluster([netpol('x', 'p', { podSelector: ALL, ingress: [{ from: [{ namespaceSelector: {} }] }] })]));
  let n = 0;
  const maps = new SimMaps(EMPTY_DATAPATH_STATE, { batch: true, failWrite: (map, op) => map === 'policy' && op === 'update' && ++n === 3 });
  const report = applyState(maps, b.datapath);
  assert.equal(report.failures.length, 1);
  assert.equal(report.written.policy, countEntries(b.datapath) - 1);
});

function countEntries(s: DatapathState): number {
  let n = 0;
  for (const m of s.policy.values()) n += m.size;
  return n;
}

test('a failed ipcache write closes the endpoints whose wanted allows name the identity the address should carry: their drops read POLICY_INCOMPLETE', () => {
  const b = compileAll(xyzCluster([netpol('x', 'a-from-b', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('b') }] }] })]));
  // Nothing in the maps yet; the ipcache has room for none of the pods' addresses.
  const maps = new SimMaps(EMPTY_DATAPATH_STATE, { capacity: { ipcache: 0 } });
  const report = applyState(maps, b.datapath);
  assert.ok(report.failures.length > 0 && report.failures.every((f) => f.map === 'iphost' || f.map === 'ipcache'), JSON.stringify(report.failures));
  assert.deepEqual(report.failClosed.taintedIdentities, [], 'no address had an identity before: none can claim facts it lacks');
  const xa = 1; // x/a: the only endpoint with an allow for a specific peer
  assert.deepEqual(report.failClosed.endpointsClosed, [xa]);
  const entry = maps.endpointData.get(xa);
  assert.ok(entry !== undefined && (entry.flags & POLICY_INCOMPLETE) !== 0, 'x/a is marked, so its drops say why');
  for (const [id, e] of maps.endpointData) if (id !== xa) assert.equal(e.flags & POLICY_INCOMPLETE, 0, `endpoint ${id} is not closed`);
});
