/**
 * bench/agent: sluice-agent at cluster scale, in figures (no assertions; the
 * machine is noisy and shared).
 *
 * A real etcd + kube-apiserver + kube-controller-manager
 * (src/lab/controlplane) is loaded with 5 Node objects, 100 namespaces,
 * 5,000 bound pods with IP and Ready, 1,000 NetworkPolicies (the mix of
 * bench/policy-workload.ts: pod/namespace selectors, ipBlock with except,
 * named ports, endPort) and 2,000 Services with an EndpointSlice each
 * (bench/agent-cluster.ts). Then the real binary (dist/src/agent/main.js,
 * --datapath bpf, a private pin dir) is measured:
 *
 *  0. memory per added pod: the cluster is first loaded with only
 *     --marginal-from pods (1,000) and an agent started on it (its own pins
 *     and state) until ready; after the other pods are added (and the
 *     slices filled), the RSS of the agent of step 1 when ready, minus that
 *     one's, over the pods added, is the marginal cost of a cluster pod;
 *  1. start → /readyz 200, and its RSS when ready and at peak (VmHWM);
 *  2. endpoint ADD through the endpoint socket for local pods (answers once
 *     the endpoint's policy is in the maps), so per-endpoint policy is compiled;
 *  3. apply → enforced: one NetworkPolicy change selecting a local endpoint,
 *     sent as the merge PATCH kubectl would send, until the endpoint's
 *     policy revision in the pinned sl_endpoints map moves (p50/p99 over
 *     --changes); a few through the kubectl binary too, to show its own cost;
 *     and the agent's own time per sync over the changes (from its metrics);
 *  4. a restart against the same maps and state dir: start → ready again,
 *     and the size of the first plan (0 = every id was kept).
 *
 * Goals (issue 4): ready < 10 s, RSS < 200 MB, apply → enforced p99 < 100 ms.
 * Goals (issue 10): ≤ 10 KiB per added pod, RSS when ready ≤ 120 MiB, a sync
 * per policy change ≤ 15 ms. Cilium's published scale figure: ≈ 10.5 KiB
 * agent memory per cluster pod.
 *
 *   node dist/bench/agent.js [--pods N] [--nodes N] [--policies N] [--services N]
 *                            [--endpoints N] [--changes N] [--kubectl N] [--marginal-from N (0: skip)]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { EndpointClient } from '../src/endpoint/client.js';
import { BPFFS_MOUNT, ensureBpffsMounted, removePinDir } from '../src/datapath/bpffs.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../src/datapath/pinned-maps.js';
import { ControlPlane } from '../src/lab/controlplane/controlplane.js';
import { httpGet } from '../src/lab/controlplane/readiness.js';
import { AgentProcess } from '../test/agent/helpers/agent-process.js';
import { ApiClient, benchCluster, inParallel, nodeName, type BenchPod } from './agent-cluster.js';
import { quantile } from './stats.js';

const CILIUM_KIB_PER_POD = 10.5;

const { values: args } = parseArgs({
  options: {
    pods: { type: 'string', default: '5000' },
    nodes: { type: 'string', default: '5' },
    policies: { type: 'string', default: '1000' },
    services: { type: 'string', default: '2000' },
    endpoints: { type: 'string', default: '10' },
    changes: { type: 'string', default: '100' },
    kubectl: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '48' },
    'marginal-from': { type: 'string', default: '1000' },
  },
});
const num = (k: keyof typeof args): number => Number(args[k]);

const ms = (t: number): string => `${t.toFixed(t < 10 ? 1 : 0)} ms`;
const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
const GOAL_KIB_PER_POD = 10;
const GOAL_READY_MIB = 120;
const GOAL_SYNC_MS = 15;


const spread = (xs: readonly number[]): string => `p50 ${ms(quantile(xs, 0.5))}  p99 ${ms(quantile(xs, 0.99))}  max ${ms(Math.max(...xs))}  (n=${xs.length})`;

/** VmRSS and VmHWM (peak) of a process, KiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** Polls the pinned endpoint entry until its policy revision moves; ms since `t0`. */
async function untilRevisionMoves(maps: PinnedDatapathMaps, endpointId: number, before: number | undefined, t0: number, timeoutMs = 10_000): Promise<number> {
  for (;;) {
    const now = performance.now();
    const rev = maps.endpoints.lookup(endpointId)?.policyRevision;
    if (rev !== undefined && rev !== before) return now - t0;
    if (now - t0 > timeoutMs) throw new Error(`endpoint ${endpointId}: policy revision still ${String(before)} after ${timeoutMs} ms`);
    await sleep(1);
  }
}

const PHASES = ['snapshot', 'compile', 'apply', 'total'] as const;

/** What bench/agent reads of the agent's /metrics: heap (bytes) and the sync time per phase (s, summed, and the count). */
interface AgentMetrics {
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly syncs: number;
  readonly syncSeconds: Readonly<Record<(typeof PHASES)[number], number>>;
}

async function agentMetrics(port: number): Promise<AgentMetrics> {
  const text = (await httpGet({ url: `http://127.0.0.1:${port}/metrics` })).body;
  const value = (name: string): number => Number(new RegExp(`^sluice_agent_${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
  const syncSeconds = Object.fromEntries(PHASES.map((phase) => [phase, value(`sync_duration_seconds_sum{phase="${phase}"}`)])) as AgentMetrics['syncSeconds'];
  return {
    heapUsed: value('nodejs_heap_size_used_bytes'),
    heapTotal: value('nodejs_heap_size_total_bytes'),
    external: value('nodejs_external_memory_bytes'),
    syncs: value('sync_duration_seconds_count{phase="total"}'),
    syncSeconds,
  };
}

/** Heap, and the mean time per sync phase of the syncs between `from` (default: none) and `to`. */
function describeMetrics(to: AgentMetrics, from?: AgentMetrics): string {
  const n = to.syncs - (from?.syncs ?? 0);
  const phases = PHASES.map((phase) => `${phase} ${ms(((to.syncSeconds[phase] - (from?.syncSeconds[phase] ?? 0)) / n) * 1000)}`);
  const heap = `heap used ${mib(to.heapUsed / 1024)} of ${mib(to.heapTotal / 1024)}, external ${mib(to.external / 1024)}`;
  return `${heap}; mean sync (n=${n}): ${phases.join(', ')}`;
}

/** Mean ms of a whole sync between two readings. */
function meanSyncMs(from: AgentMetrics, to: AgentMetrics): number {
  return ((to.syncSeconds.total - from.syncSeconds.total) / (to.syncs - from.syncs)) * 1000;
}

function probePolicy(pod: BenchPod, port: number): Record<string, unknown> {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'bench-probe', namespace: pod.namespace },
    spec: {
      podSelector: { matchLabels: { app: pod.app } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: {} }], ports: [{ protocol: 'TCP', port }] }],
    },
  };
}

async function main(): Promise<void> {
  ensureBpffsMounted();
  const pinDir = `${BPFFS_MOUNT}/sluice-t-ag-${randomBytes(6).toString('hex')}`;
  const smallPinDir = `${pinDir}-small`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-agent-'));
  let cp: ControlPlane | undefined;
  let agent: AgentProcess | undefined;
  let api: ApiClient | undefined;
  try {
    const size = { nodes: num('nodes'), pods: num('pods'), policies: num('policies'), services: num('services'), initialPods: num('marginal-from') || num('pods') };
    console.log(`bench/agent: ${size.pods} pods on ${size.nodes} nodes, 100 namespaces, ${size.policies} policies, ${size.services} services (+ slices)`);
    let t = performance.now();
    cp = await ControlPlane.start();
    console.log(`control plane ready in ${ms(performance.now() - t)}`);

    const cluster = benchCluster(size);
    api = new ApiClient({ server: cp.server, token: cp.token, caPem: cp.caPem }, num('concurrency'));
    const client = api;
    t = performance.now();
    await inParallel(cluster.first, num('concurrency'), (o) => client.create(o));
    await inParallel(cluster.then, num('concurrency'), (o) => client.create(o));
    await inParallel(cluster.statuses, num('concurrency'), (o) => client.mergePatch(o));
    const objects = cluster.first.length + cluster.then.length;
    console.log(`loaded ${objects} objects + ${cluster.statuses.length} status patches in ${ms(performance.now() - t)}`);

    const socket = join(dir, 'agent.sock');
    const kubeconfig = cp.kubeconfigPath;
    const argvOf = (pins: string, state: string, endpointSocket: string): string[] => [
      '--datapath', 'bpf', '--pin-dir', pins, '--kubeconfig', kubeconfig, '--node-name', nodeName(0),
      '--state-dir', state, '--endpoint-socket', endpointSocket, '--http-listen', '127.0.0.1:0',
    ];
    const argv = argvOf(pinDir, join(dir, 'state'), socket);

    // 0. The same cluster with fewer pods: an agent of its own, until ready.
    let small: { pods: number; rss: number; heapUsed: number } | undefined;
    if (cluster.growth.then.length > 0) {
      agent = new AgentProcess(argvOf(smallPinDir, join(dir, 'state-small'), join(dir, 'agent-small.sock')));
      const ready = await agent.ready();
      small = { pods: size.initialPods, rss: memory(agent.pid).rss, heapUsed: (await agentMetrics(ready.port)).heapUsed };
      await agent.stop();
      agent = undefined;
      removePinDir(smallPinDir);
      t = performance.now();
      await inParallel(cluster.growth.then, num('concurrency'), (o) => client.create(o));
      await inParallel(cluster.growth.statuses, num('concurrency'), (o) => client.mergePatch(o));
      await inParallel(cluster.growth.slices, num('concurrency'), (o) => client.mergePatch(o));
      console.log(`agent at ${small.pods} pods: RSS when ready ${mib(small.rss)}; added ${cluster.growth.then.length} pods ` +
        `(+ ${cluster.growth.slices.length} slices filled) in ${ms(performance.now() - t)}`);
    }

    // 1. Cold start.
    agent = new AgentProcess(argv);
    const cold = await agent.ready();
    const memReady = memory(agent.pid);
    const metricsReady = await agentMetrics(cold.port);

    // 2. Local endpoints, one per namespace, each ADD answered once its policy is in the maps.
    const local = cluster.pods.filter((p, i, all) => p.node === nodeName(0) && all.findIndex((q) => q.node === p.node && q.namespace === p.namespace) === i).slice(0, num('endpoints'));
    const endpoints = new EndpointClient(socket);
    const addMs: number[] = [];
    const ids: number[] = [];
    for (const [i, p] of local.entries()) {
      const t0 = performance.now();
      const { endpoint } = await endpoints.register({
        containerId: `bench${i}`, ifname: 'eth0', netns: `/var/run/netns/sluice-ag-bench${i}`, podNamespace: p.namespace, podName: p.name,
        ip: p.ip, hostIfname: `sluice-ag-b${i}`, hostIfindex: 100_000 + i,
      });
      addMs.push(performance.now() - t0);
      ids.push(endpoint.endpointId);
    }

    // 3. apply → enforced.
    const metricsBefore = await agentMetrics(cold.port);
    const probe = local[0];
    const probeId = ids[0];
    if (probe === undefined || probeId === undefined) throw new Error('no local endpoint to measure on');
    const maps = openPinnedDatapathMaps(pinDir);
    const applyMs: number[] = [];
    const kubectlMs: { enforced: number; process: number }[] = [];
    try {
      const policyPath = `/apis/networking.k8s.io/v1/namespaces/${probe.namespace}/networkpolicies`;
      let rev = maps.endpoints.lookup(probeId)?.policyRevision;
      let t0 = performance.now();
      await client.create({ path: policyPath, body: probePolicy(probe, 10_000) });
      await untilRevisionMoves(maps, probeId, rev, t0);
      for (let i = 1; i <= num('changes'); i++) {
        rev = maps.endpoints.lookup(probeId)?.policyRevision;
        t0 = performance.now();
        const sent = client.mergePatch({ path: `${policyPath}/bench-probe`, body: { spec: (probePolicy(probe, 10_000 + i) as { spec: unknown }).spec } });
        applyMs.push(await untilRevisionMoves(maps, probeId, rev, t0));
        await sent;
        await sleep(20);
      }
      const plane = cp;
      for (let i = 1; i <= num('kubectl'); i++) {
        rev = maps.endpoints.lookup(probeId)?.policyRevision;
        t0 = performance.now();
        const run = plane.kubectl(['apply', '-f', '-'], { input: JSON.stringify(probePolicy(probe, 20_000 + i)) }).then(() => performance.now() - t0);
        const enforced = await untilRevisionMoves(maps, probeId, rev, t0);
        kubectlMs.push({ enforced, process: await run });
        await sleep(20);
      }
    } finally {
      maps.close();
    }
    const memAfter = memory(agent.pid);
    const metricsAfter = await agentMetrics(cold.port);
    const exitCode = await agent.stop();
    agent = undefined;

    // 4. Restart on the same maps and state.
    agent = new AgentProcess(argv);
    const warm = await agent.ready();
    const firstSync = await agent.line('first full sync is in the maps');
    const memWarm = memory(agent.pid);
    await agent.stop();
    agent = undefined;

    const kib = memReady.rss / size.pods;
    const p99 = quantile(applyMs, 0.99);
    const perChange = meanSyncMs(metricsBefore, metricsAfter);
    const met = (ok: boolean): string => (ok ? 'met' : 'MISSED');
    console.log('');
    console.log(`start → ready (cold)       ${ms(cold.ms).padStart(9)}   goal < 10 s      ${met(cold.ms < 10_000)}`);
    console.log(`RSS when ready             ${mib(memReady.rss).padStart(9)}   goal ≤ ${GOAL_READY_MIB} MiB   ${met(memReady.rss <= GOAL_READY_MIB * 1024)}`);
    console.log(`RSS after the changes      ${mib(memAfter.rss).padStart(9)}   peak (VmHWM) ${mib(memAfter.peak)}${memAfter.peak * 1024 < 200e6 ? '' : ' — over 200 MB'}`);
    if (small !== undefined) {
      const added = size.pods - small.pods;
      const slope = (memReady.rss - small.rss) / added;
      const heapSlope = (metricsReady.heapUsed - small.heapUsed) / 1024 / added;
      console.log(`memory per added pod       ${`${slope.toFixed(1)} KiB`.padStart(9)}   goal ≤ ${GOAL_KIB_PER_POD} KiB   ${met(slope <= GOAL_KIB_PER_POD)}` +
        `   (RSS when ready ${mib(small.rss)} at ${small.pods} pods → ${mib(memReady.rss)} at ${size.pods}; heap used ${heapSlope.toFixed(1)} KiB/pod;` +
        ` Cilium ≈ ${CILIUM_KIB_PER_POD} KiB/pod)`);
    }
    console.log(`RSS per cluster pod        ${`${kib.toFixed(1)} KiB`.padStart(9)}   (RSS when ready / pods, fixed cost included)`);
    console.log(`sync per policy change     ${ms(perChange).padStart(9)}   goal ≤ ${GOAL_SYNC_MS} ms     ${met(perChange <= GOAL_SYNC_MS)}   (mean over the syncs of the changes)`);
    console.log(`apply → enforced (PATCH)   ${spread(applyMs)}   goal p99 < 100 ms ${met(p99 < 100)}`);
    if (kubectlMs.length > 0) {
      console.log(`kubectl apply → enforced   ${spread(kubectlMs.map((k) => k.enforced))}`);
      console.log(`  the kubectl process      ${spread(kubectlMs.map((k) => k.process))}`);
    }
    console.log(`endpoint ADD (at scale)    ${spread(addMs)}`);
    console.log(`agent when ready           ${describeMetrics(metricsReady)}`);
    console.log(`agent after the ADDs       ${describeMetrics(metricsBefore, metricsReady)}`);
    console.log(`agent after the changes    ${describeMetrics(metricsAfter, metricsBefore)}`);
    console.log(`SIGTERM exit code          ${String(exitCode)}`);
    console.log(`start → ready (restart)    ${ms(warm.ms).padStart(9)}   first plan: ${String(firstSync['operations'])} operations (0 = every id kept); RSS ${mib(memWarm.rss)}, peak ${mib(memWarm.peak)}`);
  } finally {
    agent?.kill();
    api?.close();
    await cp?.stop();
    removePinDir(pinDir);
    removePinDir(smallPinDir);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
