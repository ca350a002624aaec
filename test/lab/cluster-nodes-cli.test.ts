/**
 * `sluice lab up --cluster --nodes 3` as a user runs it (detached lab
 * process): the printed node lines, `lab status` with its NODE table and
 * every agent ready, `lab node add` of a fourth node with a pod that the
 * others reach, `lab exec` across nodes, `lab metrics --node`; then kill -9 of the lab process and
 * `lab down`: no namespace (nodes, pods, fabric), pin directory (every
 * node's), file or process is left. Pins and state in directories of this
 * test ($SLUICE_LAB_BPFFS, $SLUICE_LAB_STATE_DIR).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import { until } from '../agent/helpers/wait.js';
import { DetachedLab } from './detached-lab.js';

const lab = new DetachedLab('hn', 240000);
const { name } = lab;
const sluice = lab.sluice.bind(lab);
const state = lab.state.bind(lab);
const leftovers = lab.leftovers.bind(lab);

after(() => lab.remove());

test('lab up --cluster --nodes 3, status, node add, exec across nodes; down after kill -9 leaves nothing', async () => {
  const up = await sluice('up', '--cluster', '--name', name, '--nodes', '3', '--zones', 'east,west', '--routing', 'vxlan', '--pods', 'a,b,c');
  assert.equal(up.code, 0, up.stderr);
  for (const [node, ip, zone] of [[`sluice-${name}`, '172.30.0.11', 'east'], [`sluice-${name}-2`, '172.30.0.12', 'west'], [`sluice-${name}-3`, '172.30.0.13', 'zone3']] as const) {
    assert.match(up.stdout, new RegExp(`^node: +${node} ${ip.replace(/\./g, '\\.')} podCIDR \\S+ zone ${zone} `, 'm'));
  }
  assert.match(up.stdout, new RegExp(`a=\\S+@sluice-${name} b=\\S+@sluice-${name}-2 c=\\S+@sluice-${name}-3`));

  const status = await sluice('status', '--name', name);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  assert.match(status.stdout, /ready, healthy/);
  assert.equal(status.stdout.split('\n').filter((l) => new RegExp(`^sluice-${name}(-\\d)? .* ready +1$`).test(l)).length, 3, status.stdout);

  const add = await sluice('node', 'add', '--name', name, '--zone', 'south', '--pods', 'd');
  assert.equal(add.code, 0, add.stderr);
  assert.match(add.stdout, new RegExp(`^node sluice-${name}-4 up: 172\\.30\\.0\\.14 podCIDR \\S+ zone south; pods d=\\S+`));
  const ipOf = (pod: string): string => state().plan.pods.find((p) => p.name === pod)?.ipv4 ?? '';
  for (const [from, to] of [['a', 'd'], ['d', 'c'], ['b', 'a']] as const) {
    const ping = await sluice('exec', '--name', name, from, '--', 'ping', '-c1', '-W2', ipOf(to));
    assert.equal(ping.code, 0, `${from} -> ${to}: ${ping.stdout}${ping.stderr}`);
  }
  // Each node's counters: b's node forwarded the pings to b.
  const metrics = await sluice('metrics', '--name', name, '--node', `sluice-${name}-2`);
  assert.equal(metrics.code, 0, metrics.stderr);
  assert.match(metrics.stdout, /^INGRESS +FORWARDED +[1-9]/m);
  const nope = await sluice('metrics', '--name', name, '--node', 'nope');
  assert.equal(nope.code, 1);
  assert.match(nope.stderr, new RegExp(`--node nope: not a node of lab "${name}" \\(sluice-${name}, sluice-${name}-2`));
  const after = await sluice('status', '--name', name);
  assert.equal(after.code, 0, after.stdout);
  assert.match(after.stdout, new RegExp(`^sluice-${name}-4 .* south +ready +1$`, 'm'));

  const { cluster } = state();
  assert.ok(cluster !== undefined);
  assert.equal(cluster.nodes?.length, 4);
  process.kill(cluster.ownerPid, 'SIGKILL');
  await until('the lab process is gone', () => !isProcessAlive(cluster.ownerPid), 10_000);
  const down = await sluice('down', '--name', name);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`netns sluice-${name}-fabric`));
  assert.deepEqual(leftovers(cluster.controlPlaneDir, cluster.pids), []);
});
