/**
 * A three-node cluster lab, routed natively: one control plane, three node
 * namespaces on the lab fabric, one sluice-agent each. Pods a (client) on
 * node 1, b (web) on node 2, c (client, namespace other) on node 3, d (web)
 * on node 1. Each agent learns the other nodes' podCIDRs and InternalIPs
 * from the Node objects and routes to them; policy on b holds for clients on
 * other nodes (the ipcache holds every pod of the cluster). Real packets,
 * real API server.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ZONE_LABEL } from '../../src/lab/cluster/nodes.js';
import { Lab } from '../../src/lab/lab.js';
import { LxcEndpoints } from '../../src/lab/lxc-endpoints.js';
import { formatStatus } from '../../src/lab/status-format.js';
import { execRunner } from '../../src/lab/command.js';
import { inNetns, ping, udpServe } from './helpers.js';
import { eventually, expectNow, startCluster, type TestCluster } from './cluster-helpers.js';
import { crossNodeSuite } from './cluster-nodes-suite.js';

let c: TestCluster;
const servers: { kill(): void }[] = [];

before(async () => {
  c = await startCluster(['a', 'b', 'c', 'd'], crossNodeSuite.manifests, { family: 'hn', cluster: { nodes: 3, zones: ['east', 'west'], routing: 'native' } });
  for (const p of ['a', 'b', 'c', 'd']) servers.push(await udpServe(c.lab.pod(p).netns, c.lab.pod(p).ipv4, 5301));
});

after(async () => {
  for (const s of servers) s.kill();
  await c?.close();
});

test('three Node objects: InternalIP on the fabric, the lab\'s podCIDRs, zones as given (zone3 by default)', async () => {
  const nodes = JSON.parse(await c.lab.kubectl(['get', 'nodes', '-o', 'json'])) as {
    items: { metadata: { name: string; labels: Record<string, string> }; spec: { podCIDR: string }; status: { addresses: { type: string; address: string }[] } }[];
  };
  assert.equal(nodes.items.length, 3);
  const byName = new Map(nodes.items.map((n) => [n.metadata.name, n]));
  for (const n of c.lab.nodes) {
    const o = byName.get(n.plan.name);
    assert.ok(o, n.plan.name);
    assert.equal(o.spec.podCIDR, n.plan.podCidr);
    assert.equal(o.status.addresses.find((a) => a.type === 'InternalIP')?.address, n.plan.internalIp);
  }
  assert.deepEqual(c.lab.nodes.map((n) => byName.get(n.plan.name)?.metadata.labels[ZONE_LABEL]), ['east', 'west', 'zone3']);
  assert.equal(new Set(c.lab.nodes.map((n) => n.plan.podCidr)).size, 3, 'one podCIDR each');
  // Pods round-robin (a, d on node 1), each address from its node's podCIDR.
  assert.deepEqual(['a', 'b', 'c', 'd'].map((p) => c.lab.pod(p).node), c.lab.nodes.map((n) => n.plan.name).concat(c.lab.nodes[0]!.plan.name));
});

test('each agent routes the other podCIDRs via their InternalIPs (rtnetlink, protocol 211); the root namespace has none of it', async () => {
  for (const n of c.lab.nodes) {
    const routes = (await inNetns(n.plan.netns, ['ip', '-j', 'route', 'show', 'proto', '211'])).stdout;
    const got = (JSON.parse(routes) as { dst: string; gateway: string; dev: string }[]).map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort();
    const want = c.lab.nodes.filter((o) => o !== n).map((o) => `${o.plan.podCidr} via ${o.plan.internalIp ?? ''} dev fab0`).sort();
    assert.deepEqual(got, want, n.plan.name);
  }
  const root = (await execRunner('ip', ['-j', 'route', 'show', 'proto', '211'])).stdout;
  assert.deepEqual(JSON.parse(root || '[]'), []);
});

test('pod to pod across nodes: TCP, UDP, ICMP (and on one node)', async () => {
  await crossNodeSuite.reachability(c);
  const r = await ping(c.lab.pod('a').netns, c.lab.pod('c').ipv4, 2);
  assert.equal(r.received, 2);
});

test('lab status shows the nodes, their agents and which pod is where', async () => {
  const status = await new Lab({ runner: execRunner, paths: c.paths, datapath: new LxcEndpoints() }).status(c.name);
  assert.deepEqual(status.nodes?.map((n) => [n.name, n.agent, n.zone, n.internalIp]), c.lab.nodes.map((n) => [n.plan.name, 'ready', n.plan.zone, n.plan.internalIp]));
  assert.deepEqual(status.pods.map((p) => [p.pod.name, p.pod.node, p.hostLinkUp, p.programs?.fromContainer !== undefined]), ['a', 'b', 'c', 'd'].map((p) => [p, c.lab.pod(p).node, true, true]));
  assert.equal(status.healthy, true, formatStatus(status));
  const text = formatStatus(status);
  for (const n of c.lab.nodes) assert.match(text, new RegExp(`^${n.plan.name} .* ready +\\d`, 'm'));
});

test('policy admitting one namespace only holds for clients on other nodes; label changes on a remote node reach every node', async () => {
  await crossNodeSuite.policy(c);
});

test('the fabric program on every fab0: a frame for a local pod from a local pod\'s address drops with NODE_SPOOFED_SOURCE', async () => {
  await crossNodeSuite.fabricSpoof(c, ['fab0']);
});

test('kill -9 of one node\'s agent during a cross-node TCP stream: the stream survives, the agent catches up', async () => {
  await crossNodeSuite.killDuringStream(c);
});

test('a node added to the running lab: its pods reach and are reached, the other agents keep running', async () => {
  const pids = c.lab.nodes.map((n) => n.agent.pid);
  const added = await c.lab.addNode({ pods: ['e'] });
  assert.equal(added.plan.index, 4);
  servers.push(await udpServe(c.lab.pod('e').netns, c.lab.pod('e').ipv4, 5301));
  await eventually(c, 'e', 'a', 'udp', 5301, 'open');
  await expectNow(c, [['a', 'e', 'udp', 5301, 'open'], ['c', 'e', 'tcp', 80, 'open'], ['e', 'c', 'udp', 5301, 'open']]);
  assert.deepEqual(c.lab.nodes.slice(0, 3).map((n) => n.agent.pid), pids, 'no agent restarted');
});
