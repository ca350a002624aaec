/**
 * bench/cni-check: CHECK and GC latency of sluice-cni as a runtime sees it
 * (exec of the installed binary, env + stdin, answer on stdout), sequential,
 * through the C front end with the agent in-process and through the Node
 * plugin (sluice-cni-node).
 *
 * A node namespace with PODS attached pods (datapath "bpf"), all of them on
 * GC's valid list: every GC lists the node's links and sweeps sl_lxc_v1 but
 * removes nothing. The agent runs in the node namespace (the shim's fast
 * path). Everything happens inside sluice-cni-<id>-* namespaces.
 *
 *   node dist/bench/cni-check.js [--ops N] [--pods N] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CniNode, must, podArgs } from '../test/cni/helpers/harness.js';
import { latencyRow } from './stats.js';

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '50' },
    pods: { type: 'string', default: '20' },
    json: { type: 'string' },
  },
});
const OPS = Number(args.ops);
const PODS = Number(args.pods);




interface Pod {
  readonly id: string;
  readonly netns: string;
  readonly result: Record<string, unknown> | undefined;
}

async function main(): Promise<void> {
  const node = new CniNode('10.244.42.0/24');
  const results: Record<string, number[]> = {};
  try {
    await node.setUp({ agent: true, agentIn: 'node', stateOnTmpfs: true });
    const pods: Pod[] = [];
    for (let i = 0; i < PODS; i++) {
      const id = `chk-${i}`;
      const netns = node.addPodNetns(`chk${i}`);
      const add = must(await node.call({ command: 'ADD', containerId: id, netns, ifname: 'eth0', args: podArgs(id) }, node.conf()), `ADD ${id}`);
      pods.push({ id, netns, result: add.json });
    }
    const gcConf = { ...node.conf(), 'cni.dev/valid-attachments': pods.map((p) => ({ containerID: p.id, ifname: 'eth0' })) };

    for (const plugin of ['sluice-cni', 'sluice-cni-node']) {
      const check: number[] = [];
      const gc: number[] = [];
      for (let i = 0; i < OPS + 1; i++) {
        const p = pods[i % pods.length] as Pod;
        const c = must(await node.call({ command: 'CHECK', containerId: p.id, netns: p.netns, ifname: 'eth0', args: podArgs(p.id) },
          { ...node.conf(), prevResult: p.result }, plugin), `${plugin} CHECK ${p.id}`);
        const g = must(await node.call({ command: 'GC' }, gcConf, plugin), `${plugin} GC`);
        if (i > 0) { // the first of each is a warm-up
          check.push(c.ms);
          gc.push(g.ms);
        }
      }
      results[`${plugin} CHECK`] = check;
      results[`${plugin} GC`] = gc;
    }
    if (node.allocations().size !== PODS) throw new Error(`GC removed attachments: ${node.allocations().size} of ${PODS} left`);

    process.stdout.write(`bench/cni-check: ${OPS} CHECK and ${OPS} GC sequential, ${PODS} pods attached, ms (exec → exit)\n`);
    process.stdout.write('sluice-cni: the C front end, agent in-process; sluice-cni-node: the Node plugin\n\n');
    process.stdout.write(`${'case'.padEnd(40)} ${'p50'.padStart(8)} ${'p99'.padStart(8)} ${'max'.padStart(8)}\n`);
    for (const [name, xs] of Object.entries(results)) process.stdout.write(`${latencyRow(name, xs, 40)}\n`);
    if (args.json !== undefined) writeFileSync(args.json, JSON.stringify({ ops: OPS, pods: PODS, results }, null, 2));
  } finally {
    await node.tearDown();
  }
}

await main();
