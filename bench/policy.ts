/**
 * bench/policy: the NetworkPolicy compiler and its datapath, in figures (no
 * assertions; the machine is noisy).
 *
 *  1. compile: time, entries produced and heap, for 100 / 1,000 / 10,000
 *     policies over 1,000 / 10,000 pods in 100 namespaces
 *     (bench/policy-workload.ts), every pod a local endpoint;
 *  2. one policy change at the largest size: recompile (with the previous
 *     result), diff and plan, and the writes to real pinned maps, with the
 *     diff's size;
 *  3. per-packet cost through BPF_PROG_TEST_RUN at the smallest and the
 *     largest size, both loaded at once, runs interleaved with the empty tc
 *     program's (build/bpf/empty.o): a new connection allowed by a
 *     peer-identity entry, and one denied (every class of the endpoint's
 *     mask misses, for the peer's identity and for any peer, then the drop
 *     path).
 *
 * Goals (issue 3): 1,000 policies over 10,000 pods compile in < 2 s with
 * < 300 MB heap; a single change applies in < 50 ms.
 *
 *   node dist/bench/policy.js [--repeat N] [--rounds N]
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ProgramInfo } from '../src/datapath/api.js';
import { openObject } from '../src/datapath/bpf-object.js';
import { ensureBpffsMounted, removePinDir } from '../src/datapath/bpffs.js';
import { loadLxc, type LxcDatapath } from '../src/datapath/lxc.js';
import { setTestRunEndpoint } from '../src/datapath/lxc-test-run.js';
import { formatPolicyClasses } from '../src/datapath/maps/policy-v3.js';
import { testRun } from '../src/datapath/test-run.js';
import { applyDatapathState, policyGroup, type PolicyGroup } from '../src/reconcile/policy-group.js';
import { openingFrame } from '../src/policy-engine/packets.js';
import { assembleCluster, buildCluster, type Cluster } from '../src/policy/cluster.js';
import { compilePolicy, type CompiledPolicy } from '../src/policy/compile.js';
import { endpointDirection, unpackPolicyKey } from '../src/policy/datapath-state.js';
import { diffDatapath, diffSize } from '../src/policy/diff.js';
import { validateNetworkPolicy } from '../src/policy/validate.js';
import { policySpec, workload } from './policy-workload.js';

const EMPTY_OBJECT = fileURLToPath(new URL('../../build/bpf/empty.o', import.meta.url));
const POLICIES = [100, 1_000, 10_000] as const;
const PODS = [1_000, 10_000] as const;

const { values: args } = parseArgs({
  options: { repeat: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '7' } },
});
const repeat = Number(args.repeat);
const rounds = Number(args.rounds);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const ms = (t: number): string => `${t.toFixed(t < 10 ? 2 : 0)} ms`;

function heap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function cluster(policies: number, pods: number): Cluster {
  const w = workload(policies, pods);
  const built = buildCluster({ namespaces: w.namespaces, pods: w.pods, networkPolicies: w.policies });
  if (!built.ok) throw new Error(`workload ${policies}/${pods} is invalid: ${JSON.stringify(built.errors.slice(0, 3))}`);
  return built.value;
}

function allEndpoints(c: Cluster): Map<string, number> {
  return new Map(c.pods.map((p, i) => [p.id, i + 1]));
}

interface Measured {
  readonly compiled: CompiledPolicy;
  readonly ms: number;
  readonly retained: number;
  readonly peakish: number;
}

function measureCompile(c: Cluster): Measured {
  const before = heap();
  const t0 = performance.now();
  const compiled = compilePolicy({ cluster: c, endpoints: allEndpoints(c) });
  const took = performance.now() - t0;
  const peakish = process.memoryUsage().heapUsed - before; // garbage included: an upper bound of the working set
  const retained = heap() - before;
  return { compiled, ms: took, retained, peakish };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Median ns/packet of each program, runs interleaved so drift hits all alike. */
function perPacket(progs: ReadonlyArray<readonly [string, ProgramInfo, Buffer, number]>): Map<string, number> {
  const samples = progs.map(() => [] as number[]);
  for (let r = -1; r < rounds; r++) {
    progs.forEach(([name, prog, data, want], i) => {
      const res = testRun(prog, { data, repeat });
      if (res.retval !== want) throw new Error(`${name}: retval ${res.retval}, expected ${want}`);
      if (r >= 0) samples[i]?.push(res.durationNs);
    });
  }
  return new Map(progs.map(([name], i) => [name, median(samples[i] ?? [])]));
}

/**
 * A local pod E whose ingress allows some peer S by S's own identity on a
 * full port, S, and that port: the packet whose allow is a hit in the first
 * class tried. With `classes`, an E whose ingress uses exactly those port
 * classes if there is one: a denied packet then makes as many lookups at
 * every size, and only the map's size differs.
 */
function allowedPair(compiled: CompiledPolicy, classes?: number): { e: number; s: number; port: number } {
  const byIdentity = new Map<number, number>();
  for (const [podId, id] of compiled.identities.podIdentity) {
    const ep = [...compiled.endpoints.values()].find((x) => x.pod.id === podId);
    if (ep !== undefined && !byIdentity.has(id)) byIdentity.set(id, ep.endpointId);
  }
  let first: { e: number; s: number; port: number } | undefined;
  for (const ep of compiled.endpoints.values()) {
    if (first !== undefined && ep.entry.ingressPolicyClasses !== classes) continue;
    const entries = compiled.datapath.policy.get(endpointDirection(ep.endpointId, 'ingress'));
    for (const packed of entries?.keys() ?? []) {
      const { remoteIdentity, match } = unpackPolicyKey(packed);
      const s = byIdentity.get(remoteIdentity);
      if (s !== undefined && s !== ep.endpointId && match.kind === 'port' && match.protocol === 'TCP' && match.prefix.bits === 16) {
        const pair = { e: ep.endpointId, s, port: match.prefix.port };
        if (classes === undefined || ep.entry.ingressPolicyClasses === classes) return pair;
        first ??= pair;
        break;
      }
    }
  }
  if (first !== undefined) return first;
  throw new Error('no peer-identity allow on a full TCP port in this workload');
}

/** Loads the programs, run as E, on a fresh pin root holding the whole compiled state; returns the write time. */
function loadAll(compiled: CompiledPolicy, e: number): { lxc: LxcDatapath; pinRoot: string; writeMs: number; group: PolicyGroup } {
  const pinRoot = `/sys/fs/bpf/sluice-pb-${randomBytes(4).toString('hex')}`;
  const ep = compiled.endpoints.get(e);
  if (ep === undefined) throw new Error(`no endpoint ${e}`);
  const lxc = loadLxc({ pinRoot });
  // Every run on this pin root is E's (src/datapath/lxc-test-run.ts).
  setTestRunEndpoint(lxc.maps.interfaces, { endpointId: e, ipv4: Number(ep.pod.ip?.value ?? 0) });
  const group = policyGroup(lxc.maps);
  const t0 = performance.now();
  const report = applyDatapathState(group, compiled.datapath);
  if (!report.ok) throw new Error(`initial apply failed: ${report.failures[0]?.message ?? '?'}`);
  return { lxc, pinRoot, writeMs: performance.now() - t0, group };
}

/**
 * Per-packet cost at every size given, with all sizes loaded at once and
 * their runs interleaved with the floor's, so that load drift on a shared
 * machine hits every size alike (measured one after the other, minutes
 * apart, the sizes differed by more than the effect).
 */
function packetCosts(sizes: ReadonlyArray<readonly [string, CompiledPolicy]>, empty: ProgramInfo): void {
  const loaded: { label: string; compiled: CompiledPolicy; e: number; s: number; port: number; lxc: LxcDatapath; pinRoot: string; writeMs: number }[] = [];
  try {
    for (const [label, compiled] of sizes) {
      const like = loaded[0] === undefined ? undefined : loaded[0].compiled.datapath.endpoints.get(loaded[0].e)?.ingressPolicyClasses;
      const pair = allowedPair(compiled, like);
      loaded.push({ label, compiled, ...pair, ...loadAll(compiled, pair.e) });
    }
    const progs: [string, ProgramInfo, Buffer, number][] = [];
    for (const { label, compiled, e, s, port, lxc } of loaded) {
      const ip = (id: number): number => Number(compiled.endpoints.get(id)?.pod.ip?.value ?? 0);
      const allowed = openingFrame({ protocol: 'TCP', src: ip(s), dst: ip(e), sport: 40000, dport: port });
      const denied = openingFrame({ protocol: 'TCP', src: ip(s), dst: ip(e), sport: 40001, dport: 12345 });
      if (progs.length === 0) progs.push(['floor', empty, allowed, 0]);
      progs.push([`${label} allowed`, lxc.toContainer, allowed, 0], [`${label} denied`, lxc.toContainer, denied, 2]);
    }
    const r = perPacket(progs);
    const floor = r.get('floor') ?? NaN;
    const row = (k: string): string => `${(r.get(k) ?? NaN).toFixed(0)} ns (${((r.get(k) ?? NaN) / floor).toFixed(1)}× floor)`;
    for (const { label, compiled, e, writeMs } of loaded) {
      console.log(
        `  ${label}: ${compiled.stats.policyEntries.toLocaleString('en')} policy entries (written in ${ms(writeMs)}); ` +
          `endpoint ${e} ingress classes ${formatPolicyClasses(compiled.datapath.endpoints.get(e)?.ingressPolicyClasses ?? 0)}; ` +
          `empty ${floor.toFixed(0)} ns | to_container new connection allowed ${row(`${label} allowed`)} | denied ${row(`${label} denied`)}`,
      );
    }
    sameLookups(loaded, progs);
  } finally {
    for (const { lxc, pinRoot } of loaded) {
      lxc.close();
      removePinDir(pinRoot);
    }
  }
}

/**
 * The cost per lookup is what stays flat, the number of lookups is the
 * endpoint's: when the sizes' endpoints use different port classes, the
 * first one's mask is widened to the last one's (a superset is always
 * correct: only more misses) and the runs repeated, so that both make the
 * same lookups and only the map's size differs.
 */
function sameLookups(loaded: ReadonlyArray<{ label: string; compiled: CompiledPolicy; e: number; lxc: LxcDatapath }>,
  progs: ReadonlyArray<readonly [string, ProgramInfo, Buffer, number]>): void {
  const [first, last] = [loaded[0], loaded[loaded.length - 1]];
  const entry = first?.compiled.datapath.endpoints.get(first.e);
  const want = last?.compiled.datapath.endpoints.get(last.e)?.ingressPolicyClasses;
  if (first === undefined || last === undefined || entry === undefined || want === undefined || entry.ingressPolicyClasses === want) return;
  first.lxc.maps.endpoints.update(first.e, { ...entry, ingressPolicyClasses: (entry.ingressPolicyClasses | want) >>> 0 });
  const r = perPacket(progs);
  const floor = r.get('floor') ?? NaN;
  const row = (k: string): string => `${(r.get(k) ?? NaN).toFixed(0)} ns (${((r.get(k) ?? NaN) / floor).toFixed(1)}× floor)`;
  const line = (l: string, note: string): string => `  ${l}${note}: allowed ${row(`${l} allowed`)} | denied ${row(`${l} denied`)}`;
  console.log(`  the same lookups (${first.label.split(' ')[0]}'s endpoint given ${formatPolicyClasses(want)}), empty ${floor.toFixed(0)} ns:`);
  for (const { label } of loaded) console.log(line(label, label === first.label ? ', widened' : ''));
}

function main(): void {
  ensureBpffsMounted();
  console.log(`bench/policy: ${PODS.length * POLICIES.length} sizes, 100 namespaces, every pod a local endpoint (node ${process.version})`);
  console.log('\n1. compile (cluster snapshot → identities, ipcache, endpoint and policy entries)');
  console.log('   policies   pods    compile   identities  ipcache policy entries   heap retained  heap after (no GC)');
  const results = new Map<string, Measured>();
  for (const pods of PODS) {
    for (const policies of POLICIES) {
      const c = cluster(policies, pods);
      const m = measureCompile(c);
      results.set(`${policies}/${pods}`, m);
      const s = m.compiled.stats;
      console.log(
        `   ${String(policies).padStart(8)} ${String(pods).padStart(6)} ${ms(m.ms).padStart(10)} ${String(s.identities).padStart(12)} ` +
          `${String(s.ipcacheEntries).padStart(8)} ${s.policyEntries.toLocaleString('en').padStart(14)} ${mb(m.retained).padStart(14)} ${mb(m.peakish).padStart(19)}`,
      );
      // Only the smallest and the largest are kept for the datapath parts.
      if (!(policies === POLICIES[0] && pods === PODS[0]) && !(policies === POLICIES[POLICIES.length - 1] && pods === PODS[PODS.length - 1])) {
        results.delete(`${policies}/${pods}`);
      }
    }
  }
  const largestKey = `${POLICIES[POLICIES.length - 1]}/${PODS[PODS.length - 1]}`;
  const largest = results.get(largestKey);
  const smallest = results.get(`${POLICIES[0]}/${PODS[0]}`);
  if (largest === undefined || smallest === undefined) throw new Error('sizes missing');

  console.log(`\n2. one policy change at ${largestKey.replace('/', ' policies / ')} pods, applied to real pinned maps (a warm-up, then 5 changes of different shapes, one after the other)`);
  const { e } = allowedPair(largest.compiled);
  const { lxc, pinRoot, writeMs, group } = loadAll(largest.compiled, e);
  try {
    console.log(`   initial full write: ${largest.compiled.stats.policyEntries.toLocaleString('en')} policy entries + ${largest.compiled.stats.ipcacheEntries} ipcache + ${largest.compiled.stats.endpoints} endpoints in ${ms(writeMs)}`);
    let current = largest.compiled;
    // The agent keeps its endpoint registry across policy changes: the same map.
    const endpoints = allEndpoints(current.cluster);
    const totals: number[] = [];
    // The first change is a warm-up (the agent is a long-running process: its incremental
    // path is compiled by the JIT long before); then policies of different shapes:
    // endPort range (egress), ipBlock, cross-namespace named port, port, baseline.
    const changes = [[91, 5], [42, 3], [46, 4], [17, 2], [63, 1], [5, 0]] as const;
    for (const [i, [ns, round]] of changes.entries()) {
      const changed = validateNetworkPolicy({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: `ns-${ns}`, name: `pol-${round}` }, spec: policySpec(ns, round, 1) });
      if (!changed.ok) throw new Error('changed policy invalid');
      const policies = current.cluster.policies.map((p) => (p.namespace === `ns-${ns}` && p.name === `pol-${round}` ? changed.value : p));
      const snapshot = assembleCluster([...current.cluster.namespaces.values()], current.cluster.pods, policies);
      if (!snapshot.ok) throw new Error('snapshot invalid');
      heap(); // start from a collected heap: the figure is the change's, not earlier garbage's
      const t0 = performance.now();
      const next = compilePolicy({ cluster: snapshot.value, endpoints }, current);
      const t1 = performance.now();
      const diff = diffDatapath(current.datapath, next.datapath);
      const t2 = performance.now();
      const report = applyDatapathState(group, next.datapath);
      const t3 = performance.now();
      if (!report.ok) throw new Error(`change failed: ${report.failures[0]?.message ?? '?'}`);
      if (i > 0) totals.push(t3 - t0);
      console.log(
        `   ${i === 0 ? '(warm-up) ' : ''}ns-${ns}/pol-${round}: ${ms(t3 - t0)} = recompile ${ms(t1 - t0)} (${next.stats.recomputed} endpoint-directions recomputed, ${next.stats.reused} reused) ` +
          `+ diff ${ms(t2 - t1)} + owners' plan and writes ${ms(t3 - t2)}; diff ${diffSize(diff)} entries ` +
          `(policy +${diff.policy.added.length} ~${diff.policy.changed.length} -${diff.policy.removed.length}, endpoints ~${diff.endpoints.changed.length}, ipcache ${diff.ipcache.added.length + diff.ipcache.changed.length + diff.ipcache.removed.length})`,
      );
      current = next;
    }
    console.log(`   measured changes: median ${ms(median(totals))}, max ${ms(Math.max(...totals))} (goal < 50 ms)`);
  } finally {
    lxc.close();
    removePinDir(pinRoot);
  }

  console.log(`\n3. per packet, BPF_PROG_TEST_RUN, repeat ${repeat} × ${rounds} rounds (medians), TCP SYN through to_container`);
  const empty = openObject(EMPTY_OBJECT);
  try {
    const floorProg = empty.programs()[0];
    if (floorProg === undefined) throw new Error(`${EMPTY_OBJECT} has no program`);
    packetCosts([
      [`smallest (${POLICIES[0]} policies / ${PODS[0]} pods)`, smallest.compiled],
      [`largest (${largestKey.replace('/', ' policies / ')} pods)`, largest.compiled],
    ], floorProg);
  } finally {
    empty.close();
  }
}

main();
