/**
 * bench/crossnode: pod-to-pod TCP throughput (iperf3) and request/response
 * latency (sockperf ping-pong, 64-byte TCP messages, full round trips,
 * p50/p99) on a two-node cluster lab — same node
 * (a → b, node 1) and across nodes (a → c, node 1 → node 2) — routed natively
 * and over VXLAN, each beside the same path with no programs attached, in
 * one run. "No programs": the lxc programs are detached from the pods' host
 * veths and the fabric program from fab0 (and sluice_vxlan); routes, vxlan
 * device and MTUs stay. Rounds alternate programs / none so that drift hits
 * both alike; medians over rounds.
 *
 *   node dist/bench/crossnode.js [--rounds N] [--seconds S]   (S: each iperf3 and each sockperf run)
 *
 * MTU: native 1500 (the pods'); vxlan: the vxlan device is the fabric's 1550
 * minus 50, so pods keep 1500 (docs/lab.md "Several nodes").
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { addon } from '../src/datapath/addon.js';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../src/datapath/bpffs.js';
import { openSharedLxc } from '../src/datapath/lxc-shared.js';
import { HOST_PIN } from '../src/datapath/routes.js';
import { attachTc, detachTc } from '../src/datapath/tc.js';
import { ClusterLab, downCluster } from '../src/lab/cluster/cluster-lab.js';
import { clusterNodeName } from '../src/lab/cluster/nodes.js';
import { execRunner } from '../src/lab/command.js';
import type { LabPaths } from '../src/lab/names.js';
import { netnsPath } from '../src/lab/netns.js';
import { VXLAN_IFNAME, type RoutingMode } from '../src/reconcile/node-routes.js';
import { inNetns, iperf } from '../test/lab/helpers.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
  },
});
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
// sockperf counts no observation in a 1 s run (its warm-up takes 400 ms of it).
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds: want an integer ≥ 1, got ${args.rounds}`);
if (!(SECONDS >= 2)) throw new Error(`--seconds: want a number ≥ 2 (sockperf needs the time after its warm-up), got ${args.seconds}`);

type Path = 'same node' | 'across nodes';
const PATHS: readonly (readonly [Path, string, string])[] = [['same node', 'a', 'b'], ['across nodes', 'a', 'c']];

interface Sample {
  readonly gbps: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function pods(lab: string): unknown[] {
  const pod = (name: string, node: number): unknown => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: name } }, spec: { nodeName: clusterNodeName(lab, node), containers: [{ name: 'main' }] },
  });
  return [pod('a', 1), pod('b', 1), pod('c', 2)];
}

/** Detaches (on = false) or re-attaches every program of the lab: the pods' lxc pair, the fabric program. */
function setPrograms(lab: ClusterLab, mode: RoutingMode, on: boolean): void {
  for (const n of lab.nodes) {
    const netns = netnsPath(n.plan.netns);
    const veths = lab.livePlan.pods.filter((p) => (p.node ?? lab.nodes[0]?.plan.name) === n.plan.name).map((p) => p.hostIfname);
    const fabric = ['fab0', ...(mode === 'vxlan' ? [VXLAN_IFNAME] : [])];
    if (!on) {
      for (const v of veths) {
        detachTc({ ifname: v, netns }, 'ingress');
        detachTc({ ifname: v, netns }, 'egress');
      }
      for (const d of fabric) detachTc({ ifname: d, netns }, 'ingress');
      continue;
    }
    const lxc = openSharedLxc({ pinRoot: n.plan.pinRoot });
    const hostFd = addon().objGet(join(n.plan.pinRoot, HOST_PIN));
    try {
      for (const v of veths) {
        attachTc({ ifname: v, netns }, 'ingress', lxc.fromContainerFd, { replace: true });
        attachTc({ ifname: v, netns }, 'egress', lxc.toContainerFd, { replace: true });
      }
      for (const d of fabric) attachTc({ ifname: d, netns }, 'ingress', hostFd, { replace: true });
    } finally {
      lxc.close();
      closeSync(hostFd);
    }
  }
}

/** sockperf's "percentile 99.000 =  41.230" lines (µs). */
function percentile(out: string, q: string): number {
  const m = new RegExp(`percentile ${q.replace('.', '\\.')} =\\s+([0-9.]+)`).exec(out);
  if (m === null) throw new Error(`sockperf printed no percentile ${q}: ${out}`);
  return Number(m[1]);
}

/**
 * Request/response latency with sockperf (Debian's; C, busy-polling the
 * socket: no event loop or collector adds its own jitter to the tail).
 */
async function rr(serverNs: string, serverIp: string, clientNs: string, port: number): Promise<{ p50Us: number; p99Us: number }> {
  const server = spawn('ip', ['netns', 'exec', serverNs, 'sockperf', 'server', '--tcp', '-i', serverIp, '-p', String(port)], { stdio: 'ignore' });
  try {
    // Listening once ss shows the port (sockperf's own output is block-buffered into a pipe).
    const deadline = Date.now() + 10_000;
    while ((await inNetns(serverNs, ['ss', '-Hltn', `sport = :${port}`])).stdout.trim() === '') {
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`sockperf server on ${serverIp}:${port} did not listen`);
      await sleep(50);
    }
    const r = await inNetns(clientNs, ['sockperf', 'ping-pong', '--tcp', '-i', serverIp, '-p', String(port), '-t', String(SECONDS), '-m', '64', '--full-rtt', '--no-rdtsc'], 60_000);
    return { p50Us: percentile(r.stdout, '50.000'), p99Us: percentile(r.stdout, '99.000') };
  } finally {
    server.kill('SIGKILL');
  }
}

let nextPort = 21000;

async function measure(lab: ClusterLab, from: string, to: string): Promise<Sample> {
  const a = lab.pod(from);
  const b = lab.pod(to);
  const t = await iperf(b.netns, b.ipv4, a.netns, { seconds: SECONDS, port: nextPort++ });
  if (!t.ok) throw new Error(`iperf3 ${from} -> ${to}: ${t.error ?? ''}`);
  const l = await rr(b.netns, b.ipv4, a.netns, nextPort++);
  return { gbps: (t.bytesReceived * 8) / SECONDS / 1e9, ...l };
}

async function benchMode(mode: RoutingMode): Promise<string[]> {
  const name = `hnb${mode === 'native' ? 'n' : 'v'}${process.pid}`;
  const bpffs = `${BPFFS_MOUNT}/sluice-hn-bench-${process.pid}`;
  ensurePinDir(bpffs);
  const paths: LabPaths = { bpffs, stateDir: mkdtempSync(join(tmpdir(), 'sluice-hn-bench-')) };
  const deps = { runner: execRunner, paths, agentLogLevel: 'warn' };
  const lines: string[] = [];
  try {
    const lab = await ClusterLab.up(deps, { name, pods: ['a', 'b', 'c'] }, pods(name), { nodes: 2, routing: mode });
    try {
      const samples = new Map<string, Sample[]>();
      for (let r = 0; r < ROUNDS; r++) {
        for (const on of [true, false]) {
          setPrograms(lab, mode, on);
          for (const [path, from, to] of PATHS) {
            const key = `${path}/${on ? 'programs' : 'none'}`;
            samples.set(key, [...(samples.get(key) ?? []), await measure(lab, from, to)]);
          }
        }
      }
      setPrograms(lab, mode, true);
      for (const [path] of PATHS) {
        const med = (on: string, f: (s: Sample) => number): number => median((samples.get(`${path}/${on}`) ?? []).map(f));
        const [gOn, gOff] = [med('programs', (s) => s.gbps), med('none', (s) => s.gbps)];
        const [p50On, p50Off] = [med('programs', (s) => s.p50Us), med('none', (s) => s.p50Us)];
        const [p99On, p99Off] = [med('programs', (s) => s.p99Us), med('none', (s) => s.p99Us)];
        lines.push(
          `${mode.padEnd(6)} | ${path.padEnd(12)} | ${gOn.toFixed(2).padStart(8)} | ${gOff.toFixed(2).padStart(8)} | ${(gOn / gOff).toFixed(2).padStart(6)} | ` +
          `${p50On.toFixed(0).padStart(7)} | ${p50Off.toFixed(0).padStart(7)} | ${p99On.toFixed(0).padStart(7)} | ${p99Off.toFixed(0).padStart(7)} | ${(p99On / p99Off).toFixed(2).padStart(7)}`,
        );
      }
    } finally {
      await lab.stop();
    }
  } finally {
    await downCluster(deps, name).catch(() => undefined);
    removePinDir(bpffs);
    rmSync(paths.stateDir, { recursive: true, force: true });
  }
  return lines;
}

async function main(): Promise<void> {
  ensureBpffsMounted();
  console.log(`bench/crossnode: 2-node cluster lab, iperf3 ${SECONDS} s, sockperf ping-pong ${SECONDS} s (64-byte TCP, full round trips), ${ROUNDS} rounds (medians), programs vs none alternating`);
  console.log('MTU: native 1500; vxlan 1500 on sluice_vxlan (fabric 1550 - 50)');
  const rows: string[] = [];
  for (const mode of ['native', 'vxlan'] as const) rows.push(...(await benchMode(mode)));
  console.log('mode   | path         | Gbit/s   | none     | ratio  | p50 µs  | none    | p99 µs  | none    | p99 ratio');
  for (const r of rows) console.log(r);
}

await main();
