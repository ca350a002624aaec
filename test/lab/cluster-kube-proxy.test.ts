/**
 * The real kube-proxy (v1.34.4) as the lab's Service proxy, in iptables and
 * then nftables mode on the same two-node lab: a (client) and c (web) on
 * node 1, b (web) and d (client) on node 2; each node runs kube-proxy in its
 * own namespace against the real API server, and EndpointSlices come from
 * the real controller manager (from the Pod status the lab writes). The
 * ClusterIP checks are the shared ones (test/lb/helpers/clusterip-checks.ts)
 * that Sluice's datapath is to pass too. Also: kube-proxy's rules exist only
 * in the node namespaces, switching modes cleans the old mode's rules up,
 * and a one-node lab refuses kube-proxy.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ClusterLab } from '../../src/lab/cluster/cluster-lab.js';
import { execRunner } from '../../src/lab/command.js';
import { isProcessAlive } from '../../src/lab/controlplane/process.js';
import { LabError } from '../../src/lab/errors.js';
import { checkClusterIpSpreads, checkNoEndpointsRefused, serveBackends, webPod, type ServiceLab } from '../lb/helpers/clusterip-checks.js';
import { spread, type NameServer } from '../lb/helpers/traffic.js';
import { until } from '../agent/helpers/wait.js';
import { clusterLabName, startCluster, type TestCluster } from './cluster-helpers.js';
import { inNetns, labLeftovers, sh } from './helpers.js';

const manifests = [
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } },
  webPod('b'),
  webPod('c'),
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'd', labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } },
];

let c: TestCluster;
let lab: ServiceLab;
let servers: NameServer[] = [];

before(async () => {
  c = await startCluster(['a', 'b', 'c', 'd'], manifests, { family: 'kp', cluster: { nodes: 2, proxy: 'kube-proxy-iptables' } });
  lab = { kubectl: (args, input) => c.lab.kubectl(args, input), pod: (name) => c.lab.pod(name) };
  servers = await serveBackends(lab, ['b', 'c']);
});

after(async () => {
  for (const s of servers) s.kill();
  await c?.close();
});

/** kube-proxy's rules in a namespace (undefined: the root one): iptables chains and nftables tables. */
async function proxyRules(netns?: string): Promise<{ iptables: number; nft: string[] }> {
  const run = (cmd: string[]): Promise<{ stdout: string }> => (netns === undefined ? sh(cmd[0] ?? '', cmd.slice(1)) : inNetns(netns, cmd));
  const saved = (await run(['iptables-save'])).stdout;
  const tables = (await run(['nft', 'list', 'tables'])).stdout;
  return {
    iptables: saved.split('\n').filter((l) => /KUBE-(SERVICES|SVC-|SEP-|NODEPORTS|POSTROUTING)/.test(l)).length,
    nft: tables.split('\n').filter((l) => /\bkube-proxy\b/.test(l)),
  };
}

test('iptables mode: a ClusterIP with backends on both nodes answers clients on both nodes; no endpoints is refused at once', async () => {
  assert.equal(c.lab.proxy, 'kube-proxy-iptables');
  for (const n of c.lab.nodes) assert.ok(c.lab.kubeProxy(n.plan.name)?.running, `kube-proxy runs on ${n.plan.name}`);
  await checkClusterIpSpreads(lab, 'ipt', ['a', 'd'], ['b', 'c']);
  const times = await checkNoEndpointsRefused(lab, 'ipt', 'a');
  process.stderr.write(`# iptables: no-endpoints refusals in ${times.join(', ')} ms\n`);
  for (const n of c.lab.nodes) assert.ok((await proxyRules(n.plan.netns)).iptables > 0, `iptables rules in ${n.plan.netns}`);
  assert.deepEqual(await proxyRules(), { iptables: 0, nft: [] }, 'nothing of kube-proxy in the root namespace');
});

test('nftables mode on the same lab: the iptables rules are cleaned up, the same checks pass', async () => {
  await c.lab.useProxy('kube-proxy-nftables');
  for (const n of c.lab.nodes) {
    const rules = await proxyRules(n.plan.netns);
    assert.equal(rules.iptables, 0, `no iptables rules of kube-proxy left in ${n.plan.netns}`);
    // Ready means IPv4 synced; the ip6 table may follow a moment later.
    assert.ok(rules.nft.includes('table ip kube-proxy'), `kube-proxy's nftables table in ${n.plan.netns}: ${rules.nft.join(', ')}`);
  }
  await checkClusterIpSpreads(lab, 'nft', ['a', 'd'], ['b', 'c']);
  const times = await checkNoEndpointsRefused(lab, 'nft', 'd');
  process.stderr.write(`# nftables: no-endpoints refusals in ${times.join(', ')} ms\n`);
  assert.deepEqual(await proxyRules(), { iptables: 0, nft: [] }, 'nothing of kube-proxy in the root namespace');
});

test('a not-ready backend leaves the ClusterIP and comes back when ready (kube-proxy follows the EndpointSlice)', async () => {
  const vip = (await c.lab.kubectl(['get', 'service', 'web-nft', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  const answering = async (): Promise<string[]> => [...(await spread(c.lab.pod('a').netns, vip, 80, 16)).keys()].sort();
  await c.lab.setPodReady('c', false);
  await until('only b answers', async () => JSON.stringify(await answering()) === '["b"]', 30_000);
  await c.lab.setPodReady('c', true);
  await until('b and c answer again', async () => JSON.stringify(await answering()) === '["b","c"]', 30_000);
});

test('handing Services back to sluice stops every kube-proxy and leaves none of its rules', async () => {
  const pids = c.lab.nodes.map((n) => c.lab.kubeProxy(n.plan.name)?.pid);
  await c.lab.useProxy('sluice');
  assert.equal(c.lab.proxy, 'sluice');
  for (const [i, n] of c.lab.nodes.entries()) {
    assert.equal(c.lab.kubeProxy(n.plan.name), undefined);
    assert.equal(isProcessAlive(pids[i] ?? 0), false, `kube-proxy ${String(pids[i])} on ${n.plan.name} is gone`);
    assert.deepEqual(await proxyRules(n.plan.netns), { iptables: 0, nft: [] }, `no kube-proxy rules left in ${n.plan.netns}`);
  }
});

test('a one-node lab refuses kube-proxy before it creates anything', async () => {
  const name = clusterLabName('kp');
  await assert.rejects(
    ClusterLab.up({ runner: execRunner, paths: c.paths }, { name, pods: ['a'] }, [], { proxy: 'kube-proxy-nftables' }),
    (e: unknown) => e instanceof LabError && e.code === 'invalid-spec' && /--nodes 2 or more/.test(e.message),
  );
  assert.deepEqual(await labLeftovers(name), []);
});
