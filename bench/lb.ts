/**
 * bench/lb: Sluice's load balancer beside the real kube-proxy v1.34.4 in
 * iptables and in nftables mode, taking turns on one two-node cluster lab
 * (issue 12, "The peer, side by side"). Figures, not assertions: the
 * machine is shared and noisy, so proxies alternate within every round and
 * the table shows medians over rounds.
 *
 *  1. Connect latency: pod a (node 1) → one ClusterIP (lbb-s0) → pod b
 *     (node 2): a new TCP connection, a 5-byte request, the answer, close
 *     (bench/lb-tool.c, C), --connects times per round; p50/p99, while
 *     --sizes Services exist (hand-made selector-less Services with
 *     hand-made EndpointSlices, all to b). Before each measurement every
 *     proxy must have programmed them all: the last Service answers.
 *  2. A change programmed: the EndpointSlice of lbb-s1 switches its one
 *     backend between b and c; the time from the API write until a new
 *     connection from a is answered by the new backend (the tool asks every
 *     --probe-gap-us, default 1 ms: the figure is at most that much late), at
 *     the largest size, --changes per proxy.
 *  3. BPF_PROG_TEST_RUN cost of an established packet to a VIP at the
 *     smallest and largest size, beside the empty program (bench/lb-prog.ts).
 *  4. The agent's RSS (node 1) at each size, and each proxy's process RSS.
 *
 * Under kube-proxy the agents run with hostRouting 'kernel' (the lab's
 * choice), and are stopped and their load-balancer frontends, backends and
 * tables and conntrack entries cleared: the agent programs Services whatever proxy the
 * lab runs, and its pod programs would otherwise translate ClusterIPs
 * before kube-proxy's rules see them. The pod programs stay attached (CNI).
 *
 *   node dist/bench/lb.js [--sizes 10,1000,10000] [--rounds N] [--connects N] [--changes N] [--probe-gap-us N]
 *                         [--proxies sluice,kube-proxy-iptables,kube-proxy-nftables]
 *                         [--repeat N] [--prog-rounds N] [--no-lab] [--no-prog]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../src/datapath/bpffs.js';
import { openPinnedDatapathMaps } from '../src/datapath/pinned-maps.js';
import { ClusterLab, downCluster } from '../src/lab/cluster/cluster-lab.js';
import { parseServiceProxy, type ServiceProxy } from '../src/lab/cluster/kube-proxy.js';
import { clusterNodeName } from '../src/lab/cluster/nodes.js';
import { execRunner } from '../src/lab/command.js';
import type { LabPaths } from '../src/lab/names.js';
import { inNetns } from '../test/lab/helpers.js';
import { BenchApi, benchService, benchSlice, type JsonObject } from './lb-api.js';
import { progCost, type ProgRow } from './lb-prog.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,1000,10000' },
    rounds: { type: 'string', default: '2' },
    connects: { type: 'string', default: '2000' },
    changes: { type: 'string', default: '20' },
    'probe-gap-us': { type: 'string', default: '1000' },
    proxies: { type: 'string', default: 'sluice,kube-proxy-iptables,kube-proxy-nftables' },
    repeat: { type: 'string', default: '200000' },
    'prog-rounds': { type: 'string', default: '9' },
    'no-lab': { type: 'boolean', default: false },
    'no-prog': { type: 'boolean', default: false },
  },
});
const SIZES = args.sizes.split(',').map(Number).sort((x, y) => x - y);
const ROUNDS = Number(args.rounds);
const CONNECTS = Number(args.connects);
const CHANGES = Number(args.changes);
/** Between a change's probes (new connections until the new backend answers): its resolution, and its CPU (0.2 ms took a core of two). */
const PROBE_GAP_US = Number(args['probe-gap-us']);
const PROXIES = args.proxies.split(',').map(parseServiceProxy);
const NAMESPACE = 'default';
const PORT = 8080;
const SMALL = SIZES[0] ?? 10;
const LARGE = SIZES[SIZES.length - 1] ?? 10;
if (SIZES.some((s) => !Number.isInteger(s) || s < 2) || ![ROUNDS, CONNECTS, CHANGES, PROBE_GAP_US].every((n) => Number.isInteger(n) && n > 0)) {
  throw new Error('--sizes: integers ≥ 2; --rounds, --connects, --changes, --probe-gap-us: positive integers');
}

const TOOL_SOURCE = fileURLToPath(new URL('../../bench/lb-tool.c', import.meta.url));

interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly failures: number;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
/**
 * What a latency column measured: a proxy, or Sluice's datapath alone (the
 * same maps and programs with the agents stopped, as the kube-proxy columns
 * run: the agent's share of the CPU, e.g. reading flow events, left out).
 */
type Column = ServiceProxy | 'sluice-datapath';
const COLUMNS: readonly Column[] = PROXIES.flatMap((p): Column[] => (p === 'sluice' ? ['sluice', 'sluice-datapath'] : [p]));
const short = (p: Column): string => (p === 'sluice' ? 'sluice' : p === 'sluice-datapath' ? 'sluice-dp' : p.replace('kube-proxy-', ''));
const wallUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

/**
 * Sum and count per phase of the agent's sluice_agent_sync_duration_seconds (and _latency_), and per owner and
 * stage of sluice_agent_owner_duration_seconds ("lb plan"), from /metrics text.
 */
function syncTotals(metrics: string): Map<string, { sum: number; count: number }> {
  const out = new Map<string, { sum: number; count: number }>();
  const add = (key: string, what: string | undefined, value: string | undefined): void => {
    const t = out.get(key) ?? { sum: 0, count: 0 };
    if (what === 'sum') t.sum = Number(value);
    else t.count = Number(value);
    out.set(key, t);
  };
  for (const m of metrics.matchAll(/^sluice_agent_sync_(duration|latency)_seconds_(sum|count)(?:\{phase="([a-z]+)"\})? ([0-9.e+-]+)$/gm)) {
    add(m[1] === 'latency' ? 'latency' : (m[3] ?? ''), m[2], m[4]);
  }
  for (const m of metrics.matchAll(/^sluice_agent_owner_duration_seconds_(sum|count)\{owner="([a-z-]+)",stage="([a-z]+)"\} ([0-9.e+-]+)$/gm)) {
    add(`${m[2] ?? ''} ${m[3] ?? ''}`, m[1], m[4]);
  }
  return out;
}

/** User + system CPU time of a process so far, ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssMb(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
}

/** Runs the tool in a pod's namespace; resolves with its last output line. */
async function tool(bin: string, ns: string, argv: readonly string[], timeoutMs: number): Promise<string> {
  const r = await inNetns(ns, [bin, ...argv], timeoutMs);
  return r.stdout.trim().split('\n').pop() ?? '';
}

async function connectLatency(bin: string, ns: string, ip: string, port: number, count: number): Promise<Latency> {
  const line = await tool(bin, ns, ['connect', ip, String(port), String(count), '1000'], 10 * 60_000);
  const m = /^ok (\d+) (\d+) p50 ([\d.]+) p90 [\d.]+ p99 ([\d.]+)/.exec(line);
  if (m === null) throw new Error(`lb-tool connect ${ip}:${port}: ${line}`);
  return { p50: Number(m[3]), p99: Number(m[4]), failures: Number(m[2]) };
}

/**
 * Starts `lb-tool wait` (answered by `name`); resolves once it asks, with the
 * promise of its answer time (wall µs), wrapped: a promise resolved with a
 * promise would wait for it.
 */
function startWait(bin: string, ns: string, vip: string, name: string, timeoutMs: number): Promise<{ readonly answered: Promise<number> }> {
  const child = spawn('ip', ['netns', 'exec', ns, bin, 'wait', vip, '80', name, String(timeoutMs), String(PROBE_GAP_US)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveReady, rejectReady) => {
    let out = '';
    let ready = false;
    const done = new Promise<number>((resolve, reject) => {
      child.once('exit', () => {
        const m = /answered (\d+)/.exec(out);
        if (m === null) reject(new Error(`${vip}:80 not answered by ${name} within ${timeoutMs} ms (${out.trim().split('\n').pop() ?? ''})`));
        else resolve(Number(m[1]));
      });
    });
    done.catch(() => undefined);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (!ready && out.includes('ready')) {
        ready = true;
        resolveReady({ answered: done });
      }
    });
    child.once('error', rejectReady);
    child.once('exit', (code) => {
      if (!ready) rejectReady(new Error(`lb-tool wait exited (${String(code)}) before asking`));
    });
  });
}

async function waitAnswer(bin: string, ns: string, vip: string, name: string, timeoutMs: number): Promise<void> {
  await (await startWait(bin, ns, vip, name, timeoutMs)).answered;
}

/**
 * Number of entries in the node's load-balancer frontends; with `clear`, the
 * load balancer's frontends, backends and tables and conntrack emptied (as on
 * a node Sluice never served: the agent's next start programs everything).
 */
function sluiceLb(pinRoot: string, clear: boolean): number {
  const maps = openPinnedDatapathMaps(pinRoot);
  try {
    const frontends = [...maps.lb.services.entries()].map(([k]) => k);
    if (clear) {
      maps.lb.services.deleteBatch(frontends);
      maps.lb.backends.deleteBatch([...maps.lb.backends.entries()].map(([k]) => k));
      // One batch: each single delete of a map-of-maps entry waits for an RCU grace period (~16 ms).
      maps.lb.tables.raw.deleteBatch([...maps.lb.tables.raw.keys()]);
      maps.conntrack.deleteBatch([...maps.conntrack.entries()].map(([k]) => k));
    }
    return frontends.length;
  } finally {
    maps.close();
  }
}

interface LabRun {
  /** size → proxy → samples, through the ClusterIP */
  readonly latency: Map<number, Map<Column, Latency[]>>;
  /** the same, straight to b's pod address (no Service): the path's own cost under each proxy's node setup */
  readonly direct: Map<number, Map<Column, Latency[]>>;
  readonly changes: Map<ServiceProxy, number[]>;
  readonly programmedMs: Map<number, Map<ServiceProxy, number[]>>;
  readonly agentRss: Map<number, number>;
  /** Node 1's agent during the sluice changes: sync time by phase (s) and syncs (sluice_agent_sync_duration_seconds). */
  readonly syncPhases: Map<string, { sum: number; count: number }>;
  /** Both agents' CPU time per connection (µs) during the sluice connect loops. */
  readonly agentCpuUs: number[];
  readonly proxyRss: Map<ServiceProxy, number>;
  readonly notes: string[];
}

async function labBench(): Promise<LabRun> {
  const name = `lbb${process.pid % 1_000_000}`;
  const bpffs = `${BPFFS_MOUNT}/sluice-lbb-${process.pid}`;
  ensurePinDir(bpffs);
  const stateDir = mkdtempSync(join(tmpdir(), 'sluice-lbb-'));
  const paths: LabPaths = { bpffs, stateDir };
  const deps = { runner: execRunner, paths, agentLogLevel: 'warn' };
  const bin = join(stateDir, 'lb-tool');
  execFileSync('cc', ['-O2', '-Wall', '-o', bin, TOOL_SOURCE]);
  const run: LabRun = { latency: new Map(), direct: new Map(), changes: new Map(), programmedMs: new Map(), agentRss: new Map(), agentCpuUs: [], syncPhases: new Map(), proxyRss: new Map(), notes: [] };
  const servers: { kill(): void }[] = [];
  const pod = (p: string, node: number): unknown => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: p, labels: { app: p } }, spec: { nodeName: clusterNodeName(name, node), containers: [{ name: 'main' }] },
  });
  try {
    const lab = await ClusterLab.up(deps, { name, pods: ['a', 'b', 'c'] }, [pod('a', 1), pod('b', 2), pod('c', 2)], { nodes: 2, proxy: PROXIES[0] ?? 'sluice' });
    const api = new BenchApi({ server: lab.controlPlane.server, caPem: lab.controlPlane.caPem, token: lab.controlPlane.token });
    try {
      const a = lab.pod('a');
      const backends = { b: { ip: lab.pod('b').ipv4, node: clusterNodeName(name, 2) }, c: { ip: lab.pod('c').ipv4, node: clusterNodeName(name, 2) } };
      for (const p of ['b', 'c'] as const) {
        const child = spawn('ip', ['netns', 'exec', lab.pod(p).netns, bin, 'serve', lab.pod(p).ipv4, String(PORT), p], { stdio: ['ignore', 'pipe', 'inherit'] });
        servers.push({ kill: () => child.kill('SIGKILL') });
        await new Promise<void>((resolve, reject) => {
          child.stdout.once('data', () => resolve());
          child.once('exit', (code) => reject(new Error(`lb-tool serve on ${p} exited (${String(code)})`)));
        });
      }
      const vips: string[] = [];
      let current: 'b' | 'c' = 'b';

      const use = async (proxy: ServiceProxy): Promise<void> => {
        if (lab.proxy !== proxy) await lab.useProxy(proxy);
        if (proxy === 'sluice') {
          for (const n of lab.nodes) if (!n.agent.running) await n.agent.start();
          return;
        }
        for (const n of lab.nodes) {
          await n.agent.stop();
          const left = sluiceLb(n.plan.pinRoot, true);
          if (left > 0) run.notes.push(`${short(proxy)}: cleared ${left} Sluice frontends on ${n.plan.name} (the agent programs Services under kube-proxy too)`);
        }
      };

      /** `count` changes of lbb-s1's slice (its one backend b ↔ c), each timed until the new backend answers. */
      const changeSlice = async (proxy: ServiceProxy, count: number): Promise<void> => {
        const path = `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices/lbb-s1-1`;
        const agent = lab.nodes[0]?.agent;
        const before = proxy === 'sluice' && agent !== undefined ? syncTotals((await agent.get('/metrics')).body) : undefined;
        for (let c = 0; c < count; c++) {
          const next: 'b' | 'c' = current === 'b' ? 'c' : 'b';
          const slice = await api.send('GET', path);
          const changed = { ...benchSlice('lbb-s1', NAMESPACE, [backends[next]]), metadata: slice['metadata'] };
          const { answered } = await startWait(bin, a.netns, vips[1] ?? '', next, 60_000);
          const w0 = wallUs();
          await api.send('PUT', path, changed);
          const ms = ((await answered) - w0) / 1000;
          current = next;
          run.changes.set(proxy, [...(run.changes.get(proxy) ?? []), ms]);
        }
        if (before !== undefined && agent !== undefined) {
          for (const [phase, t] of syncTotals((await agent.get('/metrics')).body)) {
            const b = before.get(phase) ?? { sum: 0, count: 0 };
            const x = run.syncPhases.get(phase) ?? { sum: 0, count: 0 };
            run.syncPhases.set(phase, { sum: x.sum + t.sum - b.sum, count: x.count + t.count - b.count });
          }
        }
        console.error(`# ${short(proxy)}: changes so far ${(run.changes.get(proxy) ?? []).map((x) => x.toFixed(0)).join(' ')} ms`);
      };

      try {
        for (const size of SIZES) {
          const t0 = performance.now();
          const first = vips.length;
          const made = await api.all(Array.from({ length: size - first }, (_, k) => () => api.send('POST', `/api/v1/namespaces/${NAMESPACE}/services`, benchService(`lbb-s${first + k}`, NAMESPACE))));
          for (const s of made) vips.push(String(((s['spec'] ?? {}) as JsonObject)['clusterIP']));
          await api.all(Array.from({ length: size - first }, (_, k) => () => api.send('POST', `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`,
            benchSlice(`lbb-s${first + k}`, NAMESPACE, [first + k === 1 ? backends[current] : backends.b]))));
          console.error(`# ${size} Services (and slices) in the API server; ${((performance.now() - t0) / 1000).toFixed(1)} s to create ${size - first}`);
          const last = vips[vips.length - 1] ?? '';
          const target = vips[0] ?? '';
          for (let r = 0; r < ROUNDS; r++) {
            for (const proxy of PROXIES) {
              const ts = performance.now();
              await use(proxy);
              await waitAnswer(bin, a.netns, last, 'b', 300_000);
              await waitAnswer(bin, a.netns, target, 'b', 60_000);
              const programmed = performance.now() - ts;
              const pm = run.programmedMs.get(size) ?? new Map<ServiceProxy, number[]>();
              pm.set(proxy, [...(pm.get(proxy) ?? []), programmed]);
              run.programmedMs.set(size, pm);
              const measure = async (col: Column): Promise<void> => {
                await connectLatency(bin, a.netns, target, 80, 50);
                const agentCpu = (): number => lab.nodes.reduce((sum, n) => sum + cpuMs(n.agent.pid), 0);
                const cpu0 = agentCpu();
                const l = await connectLatency(bin, a.netns, target, 80, CONNECTS);
                const d = await connectLatency(bin, a.netns, backends.b.ip, PORT, CONNECTS);
                if (col === 'sluice') run.agentCpuUs.push(((agentCpu() - cpu0) * 1000) / (2 * CONNECTS));
                for (const [into, x] of [[run.latency, l], [run.direct, d]] as const) {
                  const per = into.get(size) ?? new Map<Column, Latency[]>();
                  per.set(col, [...(per.get(col) ?? []), x]);
                  into.set(size, per);
                }
                console.error(`# ${size} Services, round ${r + 1}, ${short(col)}: all programmed ${(programmed / 1000).toFixed(1)} s after the switch; connect p50 ${l.p50} µs p99 ${l.p99} µs (${l.failures} failed); to b's address p50 ${d.p50} µs p99 ${d.p99} µs`);
              };
              await measure(proxy);
              if (proxy === 'sluice' && r === 0) run.agentRss.set(size, rssMb(lab.nodes[0]?.agent.pid));
              if (size === LARGE && r === 0) run.proxyRss.set(proxy, rssMb(proxy === 'sluice' ? lab.nodes[0]?.agent.pid : lab.kubeProxy(lab.nodes[0]?.plan.name ?? '')?.pid));
              if (size === LARGE) await changeSlice(proxy, Math.ceil(CHANGES / ROUNDS));
              if (proxy === 'sluice') {
                for (const n of lab.nodes) await n.agent.stop();
                await measure('sluice-datapath');
              }
            }
          }
        }
      } catch (e) {
        // What was measured so far is still printed.
        run.notes.push(`stopped early: ${e instanceof Error ? e.message : String(e)}`);
        process.exitCode = 1;
      }
    } finally {
      for (const s of servers) s.kill();
      api.close();
      await lab.stop();
    }
  } finally {
    await downCluster(deps, name).catch(() => undefined);
    removePinDir(bpffs);
    rmSync(stateDir, { recursive: true, force: true });
  }
  return run;
}

const pad = (s: string, n: number): string => s.padStart(n);
const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');

function printLab(run: LabRun): void {
  console.log(`\n1. Connect latency, µs: pod a (node 1) → ClusterIP lbb-s0 → pod b (node 2); new TCP connection + 5-byte request + answer + close; ${CONNECTS} per round, medians of ${ROUNDS} rounds' p50/p99`);
  console.log(`Services | to        | ${COLUMNS.map((p) => `${pad(short(p), 8)} p50 | ${pad(short(p), 8)} p99`).join(' | ')} | failed`);
  for (const size of SIZES) {
    for (const [to, from] of [['ClusterIP', run.latency], ['pod b    ', run.direct]] as const) {
      const per = from.get(size);
      const cols = COLUMNS.map((p) => {
        const s = per?.get(p) ?? [];
        return `${pad(f0(median(s.map((x) => x.p50))), 12)} | ${pad(f0(median(s.map((x) => x.p99))), 12)}`;
      });
      const failed = COLUMNS.reduce((n, p) => n + (per?.get(p) ?? []).reduce((m, x) => m + x.failures, 0), 0);
      console.log(`${pad(String(size), 8)} | ${to} | ${cols.join(' | ')} | ${failed}`);
    }
  }
  console.log(`\nAll Services programmed after a switch of proxy (s, median): ${SIZES.map((size) => `${size}: ${PROXIES.map((p) => `${short(p)} ${f2(median((run.programmedMs.get(size)?.get(p) ?? []).map((x) => x / 1000)))}`).join(', ')}`).join('; ')}`);
  console.log(`\n2. One EndpointSlice change → the new backend answers, ms, at ${LARGE} Services`);
  console.log('proxy    | changes | p50    | p99    | max');
  for (const p of PROXIES) {
    const xs = run.changes.get(p) ?? [];
    console.log(`${short(p).padEnd(8)} | ${pad(String(xs.length), 7)} | ${pad(f0(quantile(xs, 0.5)), 6)} | ${pad(f0(quantile(xs, 0.99)), 6)} | ${pad(f0(Math.max(...xs)), 6)}`);
  }
  if (run.syncPhases.size > 0) {
    console.log(`   node 1's sluice-agent during those changes, mean ms per sync: ${[...run.syncPhases].map(([phase, t]) => `${phase} ${f0((t.sum / t.count) * 1000)} (${t.count})`).join(', ')}`);
  }
  console.log(`\n4. RSS, MB: sluice-agent (node 1) ${SIZES.map((s) => `${s} Services: ${f0(run.agentRss.get(s) ?? NaN)}`).join(', ')}; at ${LARGE} Services: ${PROXIES.map((p) => `${p === 'sluice' ? 'sluice-agent' : p} ${f0(run.proxyRss.get(p) ?? NaN)}`).join(', ')}`);
  console.log(`   CPU of both sluice-agents while the sluice columns ran: ${f0(median(run.agentCpuUs))} µs per connection (median over turns)`);
  for (const n of [...new Set(run.notes)]) console.log(`note: ${n}`);
}

function printProg(rows: readonly ProgRow[]): void {
  console.log(`\n3. BPF_PROG_TEST_RUN, ns/packet (medians of ${args['prog-rounds']} rounds x ${args.repeat}), established TCP ACK; two backends per Service, random tables`);
  console.log('Services | empty | pod→VIP (from_container) | its reply (to_container) | pod→pod, no Service | its reply | VIP/empty | reply/empty');
  for (const r of rows) {
    console.log(`${pad(String(r.services), 8)} | ${pad(f0(r.floorNs), 5)} | ${pad(f0(r.toVipNs), 24)} | ${pad(f0(r.replyNs), 24)} | ${pad(f0(r.podNs), 19)} | ${pad(f0(r.podReplyNs), 9)} | ${pad(f2(r.toVipNs / r.floorNs), 9)} | ${pad(f2(r.replyNs / r.floorNs), 11)}`);
  }
}

function printGoals(run: LabRun | undefined, prog: readonly ProgRow[]): void {
  const lat = (size: number, p: Column, q: 'p50' | 'p99'): number => median((run?.latency.get(size)?.get(p) ?? []).map((x) => x[q]));
  const lines: [string, string, string][] = [];
  if (run !== undefined) {
    lines.push([`connect p50, ${LARGE} vs ${SMALL} Services (sluice)`, f2(lat(LARGE, 'sluice', 'p50') / lat(SMALL, 'sluice', 'p50')), '≤ 1.05']);
    lines.push([`connect p99, ${LARGE} vs ${SMALL} Services (sluice)`, f2(lat(LARGE, 'sluice', 'p99') / lat(SMALL, 'sluice', 'p99')), '≤ 1.05']);
    lines.push([`connect p99 at ${LARGE}: sluice / nftables`, f2(lat(LARGE, 'sluice', 'p99') / lat(LARGE, 'kube-proxy-nftables', 'p99')), '≤ 1.00']);
    lines.push([`connect p99 at ${LARGE}: iptables / sluice`, f2(lat(LARGE, 'kube-proxy-iptables', 'p99') / lat(LARGE, 'sluice', 'p99')), '≥ 2.00']);
    lines.push([`one change programmed, p99 (sluice), ms`, f0(quantile(run.changes.get('sluice') ?? [], 0.99)), '< 50']);
  }
  const first = prog[0];
  const lastRow = prog[prog.length - 1];
  if (first !== undefined && lastRow !== undefined) {
    lines.push([`established pod→VIP / empty at ${lastRow.services} Services`, f2(lastRow.toVipNs / lastRow.floorNs), '≤ 6']);
    lines.push([`established pod→VIP, ${lastRow.services} vs ${first.services} Services (ratio to empty)`, f2((lastRow.toVipNs / lastRow.floorNs) / (first.toVipNs / first.floorNs)), '≤ 1.05']);
  }
  console.log('\nGoals (issue 12)');
  console.log(`${'figure'.padEnd(58)} | measured | goal`);
  for (const [what, got, goal] of lines) console.log(`${what.padEnd(58)} | ${pad(got, 8)} | ${goal}`);
}

async function main(): Promise<void> {
  ensureBpffsMounted();
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`bench/lb: ${new Date().toISOString()}, load average ${load}; sizes ${SIZES.join(', ')}; proxies ${PROXIES.join(', ')}; ${ROUNDS} rounds`);
  let prog: ProgRow[] = [];
  if (!args['no-prog']) {
    const pinRoot = `${BPFFS_MOUNT}/sluice-lbb-prog-${process.pid}`;
    prog = progCost(pinRoot, [...new Set([SMALL, LARGE])], Number(args.repeat), Number(args['prog-rounds']));
  }
  const run = args['no-lab'] ? undefined : await labBench();
  if (run !== undefined) printLab(run);
  if (prog.length > 0) printProg(prog);
  printGoals(run, prog);
  console.log(`load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
