/**
 * `sluice lab up --cluster` as a user runs it: a detached lab process owns
 * the control plane and the agent; `kubectl apply -f examples/lab` with the
 * printed kubeconfig enforces the example policies on the lab's pods;
 * `lab down` takes everything away — also after the lab process was killed
 * with SIGKILL. Pins and state go to directories of this test
 * ($SLUICE_LAB_BPFFS, $SLUICE_LAB_STATE_DIR).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EndpointClient } from '../../src/endpoint/client.js';
import { httpGet } from '../../src/lab/controlplane/readiness.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import { until } from '../agent/helpers/wait.js';
import { DetachedLab } from './detached-lab.js';
import { sh, tcpProbe } from './helpers.js';

const lab = new DetachedLab('ld', 180000);
const { name } = lab;
const sluice = lab.sluice.bind(lab);
const state = lab.state.bind(lab);
const leftovers = lab.leftovers.bind(lab);
const examples = fileURLToPath(new URL('../../../examples/lab', import.meta.url));

after(() => lab.remove());

test('lab up --cluster, kubectl apply -f examples/lab, lab down', async () => {
  const up = await sluice('up', '--cluster', '--name', name, '--pods', 'a,b,c', '-f', join(examples, 'pods.yaml'));
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, new RegExp(`^lab "${name}" up \\(cluster, [\\d.]+ s\\): a=10\\.\\d+\\.0\\.1 b=10\\.\\d+\\.0\\.2 c=10\\.\\d+\\.0\\.3\\n`));
  const kubeconfig = /^kubeconfig: (\S+)$/m.exec(up.stdout)?.[1];
  const alias = /^kubectl: +alias kubectl='(\S+) --kubeconfig (\S+)'$/m.exec(up.stdout);
  assert.equal(kubeconfig, join(lab.stateDir, `${name}.d`, 'kubeconfig'));
  assert.equal(alias?.[2], kubeconfig);
  const s = state();
  const { cluster } = s;
  assert.ok(cluster !== undefined && cluster.pids.length === 5, 'etcd, apiserver, controller manager, API forwarder and agent are recorded');

  // The agent runs in the node netns, as the CNI does: every ADD ran in the agent, none fell back to the Node plugin.
  const cni = await new EndpointClient(join(cluster.dir, 'agent.sock')).inProcessStats();
  assert.deepEqual(cni, { done: 3, fallback: { 'not-here': 0, 'not-mine': 0, 'not-in-process': 0 } }, 'the 3 ADDs ran in the agent');
  // The printed readyz command works (the agent's HTTP is a unix socket: no port reaches into the node netns).
  const curl = /^agent: +curl --unix-socket (\S+) (http:\/\/agent\/readyz) /m.exec(up.stdout);
  assert.ok(curl !== null, up.stdout);
  assert.equal((await httpGet({ url: curl[2] ?? '', socketPath: curl[1] ?? '' })).status, 200);

  const status = await sluice('status', '--name', name);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  assert.match(status.stdout, /ready, healthy/);

  const kubectl = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    sh(alias?.[1] ?? 'kubectl', ['--kubeconfig', kubeconfig ?? '', ...args]);
  const pods = await kubectl('get', 'pods', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.podIP},{.spec.nodeName},{.status.containerStatuses[0].ready} {end}');
  assert.equal(pods.stdout.trim().split(' ').map((p) => p.replace(/=.*?,/, '=,')).join(' '), `a=,sluice-${name},true b=,sluice-${name},true c=,sluice-${name},true`);
  const applied = await kubectl('apply', '-f', examples);
  assert.equal(applied.code, 0, applied.stderr);
  assert.doesNotMatch(applied.stderr, /missing the kubectl\.kubernetes\.io\/last-applied-configuration/);
  assert.match(applied.stdout, /pod\/b (unchanged|configured)/);
  assert.match(applied.stdout, /networkpolicy.networking.k8s.io\/web-allow-clients created/);

  const ip = (pod: string): string => s.plan.pods.find((p) => p.name === pod)?.ipv4 ?? '';
  let port = 41000;
  const probe = async (from: string, to: string, dport: number): Promise<string> => tcpProbe(`sluice-${name}-${from}`, ip(to), dport, port++, 700);
  await until('c -> b:5201 closed by examples/lab', async () => (await probe('c', 'b', 5201)) === 'timeout', 20_000);
  assert.match(await probe('a', 'b', 5201), /connected|refused/i, 'a (app=client) reaches b on http');
  assert.equal(await probe('a', 'b', 5202), 'timeout', 'and on no other port');

  const policy = await sluice('policy', 'apply', '--name', name, '-f', examples);
  assert.equal(policy.code, 1);
  assert.match(policy.stderr, /is a cluster lab: its policies come from the API server/);
  assert.match((await sluice('reload', '--name', name, 'a')).stderr, /cluster lab: its programs are the CNI's/);

  const down = await sluice('down', '--name', name);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`lab "${name}" down: removed lab process ${cluster.ownerPid}`));
  assert.deepEqual(leftovers(cluster.controlPlaneDir, [cluster.ownerPid, ...cluster.pids]), []);
});

test('lab down after the lab process was killed with SIGKILL', async () => {
  await sluice('down', '--name', name); // in case the test before failed half-way
  const up = await sluice('up', '--cluster', '--name', name, '--pods', 'a,b');
  assert.equal(up.code, 0, up.stderr);
  const { cluster } = state();
  assert.ok(cluster !== undefined);
  process.kill(cluster.ownerPid, 'SIGKILL');
  await until('the lab process is gone', () => !isProcessAlive(cluster.ownerPid), 10_000);
  const status = await sluice('status', '--name', name);
  assert.equal(status.code, 1, 'status reports the lab unhealthy');
  assert.match(status.stdout, new RegExp(`UNHEALTHY[^]*lab process ${cluster.ownerPid} \\(GONE: control plane and agent with it\\)`));
  const down = await sluice('down', '--name', name);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stdout, new RegExp(`netns sluice-${name}-node`));
  assert.deepEqual(leftovers(cluster.controlPlaneDir, cluster.pids), []);
});
