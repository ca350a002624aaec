/**
 * bench/cni: ADD and DEL latency of sluice-cni as a runtime sees it (exec of
 * the installed binary, env + stdin, result on stdout), 200 sequential and
 * 20-way concurrent, beside Debian's bridge + host-local measured in the
 * same run, on the same node namespace, the same way (nsenter + exec).
 *
 * Everything happens inside sluice-cni-<id>-* namespaces: the bridge, its
 * gateway address and every veth live in the node namespace; nothing touches
 * the root namespace. The agent (--datapath none, a real sluice-agent) runs in
 * the node namespace, as on a real node, so the installed sluice-cni (the C
 * front end) takes its fast path: the agent runs the plugin in-process. The
 * Node plugin (sluice-cni-node, the shim's fallback) is measured beside it
 * against the same agent. Both attach the node-shared lxc programs per pod
 * (datapath "bpf"). A last table prices a bare start with VERSION: the
 * shim answers it itself (no node, no agent; its bytes are checked equal to
 * the Node plugin's), sluice-cni-node's row is node's start-up, bridge's Go's.
 *
 * Goals (issue 5): ADD p99 < 50 ms sequential, < 200 ms at 20-way, never
 * more than 2× the bridge chain (ADD and DEL, sequential and 20-way, p50
 * and p99: each printed as a goal line).
 *
 *   node dist/bench/cni.js [--ops N] [--concurrency N] [--json FILE] [--entry auto|bundle|esm] [--agent-state tmpfs|disk]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CniNode, must, podArgs, runProcess, type PluginRun } from '../test/cni/helpers/harness.js';
import { latencyRow, quantile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '20' },
    json: { type: 'string' },
    // What the installed wrapper runs: the single-file bundle, tsc's main.js, or auto (the bundle if current).
    entry: { type: 'string', default: 'auto' },
    // Where the agent keeps endpoints.json (fsync'd per registration): tmpfs as /var/run/sluice on a node, or disk.
    'agent-state': { type: 'string', default: 'tmpfs' },
  },
});
const OPS = Number(args.ops);
const CONCURRENCY = Number(args.concurrency);

interface Sample {
  readonly add: number[];
  readonly del: number[];
}

interface Flavour {
  readonly name: string;
  readonly plugin: string;
  conf(): Record<string, unknown>;
}



async function addDel(node: CniNode, f: Flavour, id: string, netns: string, s: Sample): Promise<void> {
  const call = { containerId: id, netns, ifname: 'eth0', args: podArgs(id) };
  const add = must(await node.call({ ...call, command: 'ADD' }, f.conf(), f.plugin), `${f.name} ADD ${id}`);
  s.add.push(add.ms);
  const del = must(await node.call({ ...call, command: 'DEL' }, { ...f.conf(), prevResult: add.json }, f.plugin), `${f.name} DEL ${id}`);
  s.del.push(del.ms);
}

async function sequential(node: CniNode, f: Flavour, netns: string): Promise<Sample> {
  const s: Sample = { add: [], del: [] };
  for (let i = 0; i < OPS; i++) await addDel(node, f, `seq-${i}`, netns, s);
  return s;
}

/** Rounds of CONCURRENCY ADDs at once, then their DELs at once. */
async function concurrent(node: CniNode, f: Flavour, netnses: readonly string[]): Promise<Sample> {
  const s: Sample = { add: [], del: [] };
  for (let round = 0; round * CONCURRENCY < OPS; round++) {
    const ids = netnses.map((_, i) => `par-${round}-${i}`);
    const adds = await Promise.all(netnses.map((ns, i) =>
      node.call({ command: 'ADD', containerId: ids[i] ?? '', netns: ns, ifname: 'eth0', args: podArgs(ids[i] ?? '') }, f.conf(), f.plugin)));
    adds.forEach((r, i) => s.add.push(must(r, `${f.name} ADD ${ids[i] ?? ''}`).ms));
    const dels = await Promise.all(netnses.map((ns, i) =>
      node.call({ command: 'DEL', containerId: ids[i] ?? '', netns: ns, ifname: 'eth0' }, { ...f.conf(), prevResult: adds[i]?.json }, f.plugin)));
    dels.forEach((r, i) => s.del.push(must(r, `${f.name} DEL ${ids[i] ?? ''}`).ms));
  }
  return s;
}

function version(node: CniNode, plugin: string): Promise<PluginRun> {
  return runProcess(join(node.binDir, plugin), [], { PATH: process.env['PATH'] ?? '', CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
}

async function versionStarts(node: CniNode, plugin: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(must(await version(node, plugin), `${plugin} VERSION`).ms);
  return out;
}


async function main(): Promise<void> {
  const node = new CniNode('10.244.40.0/24');
  const results: Record<string, { seq: Sample; par: Sample }> = {};
  try {
    const entry = args.entry;
    if (entry !== 'auto' && entry !== 'bundle' && entry !== 'esm') throw new Error(`--entry ${entry}: auto, bundle or esm`);
    if (args['agent-state'] !== 'tmpfs' && args['agent-state'] !== 'disk') throw new Error(`--agent-state ${args['agent-state']}: tmpfs or disk`);
    await node.setUp({ agent: true, entry, agentIn: 'node', stateOnTmpfs: args['agent-state'] === 'tmpfs' });
    const bridgeIpam = join(node.dir, 'host-local');
    const flavours: Flavour[] = [
      { name: 'sluice-cni', plugin: 'sluice-cni', conf: () => node.conf() },
      { name: 'sluice-cni-node', plugin: 'sluice-cni-node', conf: () => node.conf() },
      {
        name: 'bridge + host-local',
        plugin: 'bridge',
        conf: () => ({
          cniVersion: '1.0.0', name: `br${node.id}`, type: 'bridge', bridge: `slbr${node.id}`, isGateway: true, ipMasq: false,
          ipam: { type: 'host-local', subnet: '10.244.41.0/24', dataDir: bridgeIpam },
        }),
      },
    ];
    const seqNs = node.addPodNetns('bench-seq');
    const parNs = Array.from({ length: CONCURRENCY }, (_, i) => node.addPodNetns(`bench-p${i}`));
    // Warm the page cache and the pinned maps once per flavour.
    for (const f of flavours) await addDel(node, f, `warm-${f.plugin}`, seqNs, { add: [], del: [] });
    // Interleave flavours per phase so that machine noise hits all of them alike.
    for (const f of flavours) results[f.name] = { seq: await sequential(node, f, seqNs), par: { add: [], del: [] } };
    for (const f of flavours) {
      const r = results[f.name];
      if (r !== undefined) r.par = await concurrent(node, f, parNs);
    }
    // The shim's VERSION row prices its own answer only if that answer is the Node plugin's.
    const [shimVersion, nodeVersion] = [await version(node, 'sluice-cni'), await version(node, 'sluice-cni-node')];
    if (shimVersion.stdout !== nodeVersion.stdout) throw new Error(`the shim's VERSION differs from the Node plugin's: ${shimVersion.stdout} vs ${nodeVersion.stdout}`);
    const starts = {
      'sluice-cni': await versionStarts(node, 'sluice-cni', 40),
      'sluice-cni-node': await versionStarts(node, 'sluice-cni-node', 40),
      bridge: await versionStarts(node, 'bridge', 40),
    };
    // Every shim invocation must have run in the agent (warm-up + 2 × OPS ADD/DEL pairs), or the shim rows measure the fallback.
    const stats = await node.inProcessStats();
    if (stats.done !== 2 * (1 + 2 * OPS)) throw new Error(`the shim's fast path was not taken for every invocation: ${JSON.stringify(stats)}`);

    process.stdout.write(`bench/cni: ${OPS} ADD+DEL sequential and ${OPS} at ${CONCURRENCY}-way, ms (exec → exit, as a runtime sees it)\n`);
    process.stdout.write(`agent state (endpoints.json) on ${args['agent-state']}\n`);
    process.stdout.write(`sluice-cni: the C front end, agent in-process (${stats.done} invocations, fallbacks ${JSON.stringify(stats.fallback)}); sluice-cni-node runs ${node.entry}\n\n`);
    process.stdout.write(`${'case'.padEnd(34)} ${'p50'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)}\n`);
    for (const [name, r] of Object.entries(results)) {
      for (const [mode, s] of [['seq', r.seq], [`${CONCURRENCY}-way`, r.par]] as const) {
        process.stdout.write(`${latencyRow(`${name} ADD ${mode}`, s.add)}\n${latencyRow(`${name} DEL ${mode}`, s.del)}\n`);
      }
    }
    process.stdout.write(`${latencyRow('sluice-cni VERSION (shim, no node)', starts['sluice-cni'])}\n`);
    process.stdout.write(`${latencyRow('sluice-cni-node VERSION (start-up)', starts['sluice-cni-node'])}\n${latencyRow('bridge VERSION (start-up)', starts.bridge)}\n\n`);

    const ours = results['sluice-cni'];
    const bridge = results['bridge + host-local'];
    if (ours !== undefined && bridge !== undefined) {
      const goals: [string, number, number][] = [
        ['ADD p99 sequential < 50 ms', quantile(ours.seq.add, 0.99), 50],
        [`ADD p99 ${CONCURRENCY}-way < 200 ms`, quantile(ours.par.add, 0.99), 200],
      ];
      // "Never slower than the bridge chain by more than 2×": every operation, mode and quantile.
      for (const op of ['add', 'del'] as const) {
        for (const [mode, pick] of [['seq', (r: { seq: Sample }) => r.seq], [`${CONCURRENCY}-way`, (r: { par: Sample }) => r.par]] as const) {
          for (const q of [0.5, 0.99]) {
            goals.push([`${op.toUpperCase()} p${q * 100} ${mode} ≤ 2× bridge`, quantile(pick(ours)[op], q), 2 * quantile(pick(bridge)[op], q)]);
          }
        }
      }
      for (const [what, got, limit] of goals) {
        process.stdout.write(`goal ${what.padEnd(32)} ${got.toFixed(1).padStart(8)} vs ${limit.toFixed(1).padStart(8)}  ${got <= limit ? 'met' : 'MISSED'}\n`);
      }
    }
    if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ ops: OPS, concurrency: CONCURRENCY, entry: node.entry, results, starts }, null, 2));
  } finally {
    await node.tearDown();
  }
}

await main();
