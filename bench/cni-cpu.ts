/**
 * bench/cni-cpu: sluice-cni builds side by side, interleaved (ADD+DEL of each
 * in turn, so machine load hits all alike), with the CPU time each
 * invocation costs — user + system of the plugin and of the ip/nsenter
 * children it waits for, from /usr/bin/time. On a VM shared with other work,
 * wall time mostly measures the neighbours; CPU time says what an ADD costs,
 * and on N cores, k concurrent ADDs cannot finish before k × cpu / N.
 *
 * Each plugin runs on a node of its own (namespaces, agent, pin root), as
 * bench/cni does; the first two ADD+DEL of each are warm-up (the first loads
 * or pins). A plugin is any file node runs as sluice-cni: dist/src/cni/main.js,
 * dist/bundle/cni/sluice-cni.cjs, or one of an older build's copy.
 *
 *   node dist/bench/cni-cpu.js [--ops N] --plugin LABEL=FILE [--plugin LABEL=FILE ...]
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CniNode, podArgs } from '../test/cni/helpers/harness.js';
import { quantile } from './stats.js';

const { values: args } = parseArgs({
  options: {
    ops: { type: 'string', default: '40' },
    plugin: { type: 'string', multiple: true, default: [] },
  },
});
const OPS = Number(args.ops);
const WARM_UP = 2;

interface Variant {
  readonly label: string;
  readonly file: string;
  readonly node: CniNode;
  readonly netns: string;
  readonly cpuFile: string;
  readonly add: number[];
  readonly del: number[];
  readonly addCpu: number[];
  readonly delCpu: number[];
  phases: string;
}


/** user + system ms of the last invocation (/usr/bin/time -f "%U %S", 10 ms resolution). */
function takeCpu(v: Variant): number {
  const last = readFileSync(v.cpuFile, 'utf8').trim().split('\n').pop() ?? '';
  rmSync(v.cpuFile);
  const [user, sys] = last.split(' ').map(Number);
  if (user === undefined || sys === undefined || Number.isNaN(user + sys)) throw new Error(`/usr/bin/time wrote "${last}"`);
  return (user + sys) * 1000;
}

async function setUpVariant(spec: string, index: number): Promise<Variant> {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--plugin ${spec}: LABEL=FILE`);
  const node = new CniNode(`10.244.${80 + index}.0/24`);
  await node.setUp();
  const cpuFile = join(node.dir, 'cpu');
  // Replaces the installed wrapper: the same clean environment, timed.
  writeFileSync(join(node.binDir, 'sluice-cni'),
    `#!/bin/sh\nunset NODE_OPTIONS NODE_EXTRA_CA_CERTS\nexec /usr/bin/time -o '${cpuFile}' -f '%U %S' '${process.execPath}' '${spec.slice(eq + 1)}' "$@"\n`);
  chmodSync(join(node.binDir, 'sluice-cni'), 0o755);
  return { label: spec.slice(0, eq), file: spec.slice(eq + 1), node, netns: node.addPodNetns('cpu'), cpuFile, add: [], del: [], addCpu: [], delCpu: [], phases: '' };
}

async function round(v: Variant, i: number): Promise<void> {
  const id = `cpu-${i}`;
  const call = { containerId: id, netns: v.netns, ifname: 'eth0', args: podArgs(id), env: { SLUICE_CNI_TIMING: '1' } };
  const add = await v.node.call({ ...call, command: 'ADD' }, v.node.conf());
  if (add.exitCode !== 0) throw new Error(`${v.label} ADD: ${add.stdout}${add.stderr}`);
  const addCpu = takeCpu(v);
  const del = await v.node.call({ ...call, command: 'DEL' }, v.node.conf());
  if (del.exitCode !== 0) throw new Error(`${v.label} DEL: ${del.stdout}${del.stderr}`);
  const delCpu = takeCpu(v);
  if (i < WARM_UP) return;
  v.add.push(add.ms);
  v.del.push(del.ms);
  v.addCpu.push(addCpu);
  v.delCpu.push(delCpu);
  if (i === WARM_UP + Math.floor(OPS / 2)) v.phases = add.stderr.trim().split('\n').pop() ?? '';
}

async function main(): Promise<void> {
  const specs = args.plugin;
  if (specs.length === 0) throw new Error('give at least one --plugin LABEL=FILE');
  const variants: Variant[] = [];
  try {
    for (const [i, spec] of specs.entries()) variants.push(await setUpVariant(spec, i));
    for (let i = 0; i < OPS + WARM_UP; i++) for (const v of variants) await round(v, i);
    const col = (x: number): string => x.toFixed(1).padStart(8);
    process.stdout.write(`bench/cni-cpu: ${OPS} sequential ADD+DEL per plugin, interleaved; ms (cpu: user+sys incl. children, 10 ms resolution)\n\n`);
    process.stdout.write(`${'plugin'.padEnd(28)} ${'ADD p50'.padStart(8)} ${'p99'.padStart(8)} ${'cpu p50'.padStart(8)} ${'DEL p50'.padStart(8)} ${'p99'.padStart(8)} ${'cpu p50'.padStart(8)}\n`);
    for (const v of variants) {
      process.stdout.write(`${v.label.padEnd(28)} ${col(quantile(v.add, 0.5))} ${col(quantile(v.add, 0.99))} ${col(quantile(v.addCpu, 0.5))} ${col(quantile(v.del, 0.5))} ${col(quantile(v.del, 0.99))} ${col(quantile(v.delCpu, 0.5))}\n`);
    }
    process.stdout.write('\none ADD\'s phases (SLUICE_CNI_TIMING=1):\n');
    for (const v of variants) process.stdout.write(`  ${v.label}: ${v.phases}\n`);
  } finally {
    for (const v of variants) await v.node.tearDown();
  }
}

await main();
