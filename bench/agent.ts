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
 *  1. start → /readyz 200, and its RSS when ready and at peak (VmHWM);
 *  2. endpoint ADD through the endpoint socket for local pods (answers once
 *     the endpoint's policy is in the maps), so per-endpoint policy is compiled;
 *  3. apply → enforced: one NetworkPolicy change selecting a local endpoint,
 *     sent as the merge PATCH kubectl would send, until the endpoint's
 *     policy revision in the pinned sl_endpoints map moves (p50/p99 over
 *     --changes); a few through the kubectl binary too, to show its own cost;
 *  4. a restart against the same maps and state dir: start → ready again,
 *     and the size of the first plan (0 = every id was kept).
 *
 * Goals (issue 4): ready < 10 s, RSS < 200 MB, apply → enforced p99 < 100 ms.
 * Cilium's published scale figure: ≈ 10.5 KiB agent memory per cluster pod.
 *
 *   node dist/bench/agent.js [--pods N] [--nodes N] [--policies N] [--services N]
 *                            [--endpoints N] [--changes N] [--kubectl N]
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
  },
});
const num = (k: keyof typeof args): number => Number(args[k]);

const ms = (t: number): string => `${t.toFixed(t < 10 ? 1 : 0)} ms`;
const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;


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

/** Selected figures from the agent's /metrics: heap and the mean time per sync phase. */
async function agentFigures(port: number): Promise<string> {
  const text = (await httpGet({ url: `http://127.0.0.1:${port}/metrics` })).body;
  const value = (name: string): number => Number(new RegExp(`^sluice_agent_${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN);
  const phases = ['snapshot', 'compile', 'plan', 'apply', 'total'].map((phase) => {
    const sum = value(`sync_duration_seconds_sum{phase="${phase}"}`);
    const count = value(`sync_duration_seconds_count{phase="${phase}"}`);
    return `${phase} ${ms((sum / count) * 1000)}`;
  });
  const heap = `heap used ${mib(value('nodejs_heap_size_used_bytes') / 1024)} of ${mib(value('nodejs_heap_size_total_bytes') / 1024)}, external ${mib(value('nodejs_external_memory_bytes') / 1024)}`;
  return `${heap}; mean sync (n=${value('sync_duration_seconds_count{phase="total"}')}): ${phases.join(', ')}`;
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
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-agent-'));
  let cp: ControlPlane | undefined;
  let agent: AgentProcess | undefined;
  let api: ApiClient | undefined;
  try {
    const size = { nodes: num('nodes'), pods: num('pods'), policies: num('policies'), services: num('services') };
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
    const argv = [
      '--datapath', 'bpf', '--pin-dir', pinDir, '--kubeconfig', cp.kubeconfigPath, '--node-name', nodeName(0),
      '--state-dir', join(dir, 'state'), '--endpoint-socket', socket, '--http-listen', '127.0.0.1:0',
    ];

    // 1. Cold start.
    agent = new AgentProcess(argv);
    const cold = await agent.ready();
    const memReady = memory(agent.pid);
    const figuresReady = await agentFigures(cold.port);

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
    const figuresAfter = await agentFigures(cold.port);
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
    console.log('');
    console.log(`start → ready (cold)       ${ms(cold.ms).padStart(9)}   goal < 10 s      ${cold.ms < 10_000 ? 'met' : 'MISSED'}`);
    console.log(`RSS when ready             ${mib(memReady.rss).padStart(9)}   goal < 200 MB    ${memReady.rss * 1024 < 200e6 ? 'met' : 'MISSED'}`);
    console.log(`RSS after the changes      ${mib(memAfter.rss).padStart(9)}   peak (VmHWM) ${mib(memAfter.peak)}${memAfter.peak * 1024 < 200e6 ? '' : ' — over 200 MB'}`);
    console.log(`memory per cluster pod     ${`${kib.toFixed(1)} KiB`.padStart(9)}   Cilium ≈ ${CILIUM_KIB_PER_POD} KiB/pod (${(kib / CILIUM_KIB_PER_POD).toFixed(2)}×)`);
    console.log(`apply → enforced (PATCH)   ${spread(applyMs)}   goal p99 < 100 ms ${p99 < 100 ? 'met' : 'MISSED'}`);
    if (kubectlMs.length > 0) {
      console.log(`kubectl apply → enforced   ${spread(kubectlMs.map((k) => k.enforced))}`);
      console.log(`  the kubectl process      ${spread(kubectlMs.map((k) => k.process))}`);
    }
    console.log(`endpoint ADD (at scale)    ${spread(addMs)}`);
    console.log(`agent when ready           ${figuresReady}`);
    console.log(`agent after the changes    ${figuresAfter}`);
    console.log(`SIGTERM exit code          ${String(exitCode)}`);
    console.log(`start → ready (restart)    ${ms(warm.ms).padStart(9)}   first plan: ${String(firstSync['operations'])} operations (0 = every id kept); RSS ${mib(memWarm.rss)}, peak ${mib(memWarm.peak)}`);
  } finally {
    agent?.kill();
    api?.close();
    await cp?.stop();
    removePinDir(pinDir);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
