/**
 * `sluice lab up --cluster --nodes 2 --proxy kube-proxy-iptables` as a user
 * runs it (detached lab process): the node lines name each node's
 * kube-proxy, its pids are in the state file; `lab pod not-ready|ready|
 * delete --grace-period|finish` change what the real controller manager puts
 * in a Service's EndpointSlice; `lab proxy kube-proxy-nftables` replaces
 * every kube-proxy; after kill -9 of the lab process, `lab down` leaves no
 * kube-proxy (nor anything else) behind.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { runKubectl } from '../../src/lab/controlplane/kubectl.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import { until } from '../agent/helpers/wait.js';
import { clusterIpService, waitEndpoints, type Kubectl } from '../lb/helpers/services.js';
import { DetachedLab } from './detached-lab.js';
import { inNetns } from './helpers.js';

const lab = new DetachedLab('kp', 240000);
const { name } = lab;
const sluice = lab.sluice.bind(lab);
const state = lab.state.bind(lab);

after(() => lab.remove());

const kubeProxyPids = (): number[] => (state().cluster?.pids ?? []).filter((p) => isProcessAlive(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('kube-proxy'));

test('lab up --proxy kube-proxy-iptables, lab pod …, lab proxy kube-proxy-nftables; down after kill -9 leaves no kube-proxy', async () => {
  const up = await sluice('up', '--cluster', '--name', name, '--nodes', '2', '--proxy', 'kube-proxy-iptables', '--pods', 'a,b,c');
  assert.equal(up.code, 0, up.stderr);
  for (const node of [`sluice-${name}`, `sluice-${name}-2`]) {
    assert.match(up.stdout, new RegExp(`^node: +${node} .* kube-proxy iptables pid \\d+ \\(log \\S+kube-proxy\\.log\\)$`, 'm'));
  }
  const first = state();
  assert.equal(first.cluster?.proxy, 'kube-proxy-iptables');
  const status = await sluice('status', '--name', name);
  assert.equal(status.code, 0, status.stdout + status.stderr);
  assert.match(status.stdout, /^services: kube-proxy-iptables on every node$/m);
  const iptPids = kubeProxyPids();
  assert.equal(iptPids.length, 2, 'one kube-proxy per node, recorded');

  const c = first.cluster;
  assert.ok(c !== undefined);
  const kubectl: Kubectl = (args, input) => runKubectl(c.kubectl, c.kubeconfig, args, input === undefined ? {} : { input });
  await kubectl(['apply', '-f', '-'], JSON.stringify(clusterIpService('web', { app: 'b' }, [{ port: 80, targetPort: 8080 }])));
  const b = first.plan.pods.find((p) => p.name === 'b')?.ipv4 ?? '';
  await waitEndpoints(kubectl, 'web', 'b ready', (eps) => eps.length === 1 && eps[0]?.address === b && eps[0].ready);

  const notReady = await sluice('pod', 'not-ready', '--name', name, 'b');
  assert.equal(notReady.code, 0, notReady.stderr);
  assert.equal(notReady.stdout, 'pod b: not ready\n');
  await waitEndpoints(kubectl, 'web', 'b not ready', (eps) => eps[0]?.ready === false && !eps[0].serving);
  assert.equal((await sluice('pod', 'ready', '--name', name, 'b')).code, 0);
  await waitEndpoints(kubectl, 'web', 'b ready again', (eps) => eps[0]?.ready === true);

  const del = await sluice('pod', 'delete', '--name', name, 'b', '--grace-period', '60');
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stdout, /^pod b: terminating until \d{4}-\d\d-\d\dT\S+Z, then deleted$/m);
  await waitEndpoints(kubectl, 'web', 'b terminating, serving', (eps) => eps[0]?.terminating === true && eps[0].serving && !eps[0].ready);
  const again = await sluice('pod', 'delete', '--name', name, 'b', '--grace-period', '60');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /pod b is being deleted already/);
  assert.equal((await sluice('pod', 'finish', '--name', name, 'b')).stdout, 'pod b: deleted\n');
  await waitEndpoints(kubectl, 'web', 'no endpoint', (eps) => eps.length === 0);
  assert.deepEqual(state().plan.pods.map((p) => p.name), ['a', 'c']);
  const unknown = await sluice('pod', 'not-ready', '--name', name, 'b');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown pod "b"/);

  const sw = await sluice('proxy', '--name', name, 'kube-proxy-nftables');
  assert.equal(sw.code, 0, sw.stderr);
  assert.equal(state().cluster?.proxy, 'kube-proxy-nftables');
  for (const p of iptPids) assert.equal(isProcessAlive(p), false, `iptables kube-proxy ${p} stopped`);
  const nftPids = kubeProxyPids();
  assert.equal(nftPids.length, 2);
  for (const ns of [`sluice-${name}-node`, `sluice-${name}-node2`]) {
    assert.match((await inNetns(ns, ['nft', 'list', 'tables'])).stdout, /^table ip kube-proxy$/m, ns);
  }

  const { cluster } = state();
  assert.ok(cluster !== undefined);
  process.kill(cluster.ownerPid, 'SIGKILL');
  await until('the lab process is gone', () => !isProcessAlive(cluster.ownerPid), 10_000);
  const down = await sluice('down', '--name', name);
  assert.equal(down.code, 0, down.stderr);
  for (const p of nftPids) assert.equal(isProcessAlive(p), false, `kube-proxy ${p} gone`);
  assert.deepEqual(lab.leftovers(cluster.controlPlaneDir, cluster.pids), []);
});
