/**
 * The three-node cluster lab of cluster-nodes.test.ts, routed over VXLAN:
 * each agent creates sluice_vxlan (VNI 2, UDP 8472, on fab0, MTU fab0's
 * minus 50) and writes, per other node, the FDB entry (VTEP MAC → InternalIP),
 * the neighbour of its next hop and the route to its podCIDR. The same
 * reachability and policy checks, real packets, real API server; the pods'
 * packets cross the fabric encapsulated.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { vtepMac } from '../../src/reconcile/node-routes.js';
import { inNetns } from './helpers.js';
import { udpServe } from './helpers.js';
import { startCluster, type TestCluster } from './cluster-helpers.js';
import { crossNodeSuite } from './cluster-nodes-suite.js';

let c: TestCluster;
const servers: { kill(): void }[] = [];

before(async () => {
  c = await startCluster(['a', 'b', 'c', 'd'], crossNodeSuite.manifests, { family: 'hv', cluster: { nodes: 3, routing: 'vxlan' } });
  for (const p of ['a', 'b', 'c', 'd']) servers.push(await udpServe(c.lab.pod(p).netns, c.lab.pod(p).ipv4, 5301));
});

after(async () => {
  for (const s of servers) s.kill();
  await c?.close();
});

test('each node: sluice_vxlan at the fabric MTU minus 50, one FDB entry and one route per other node', async () => {
  for (const n of c.lab.nodes) {
    const links = JSON.parse((await inNetns(n.plan.netns, ['ip', '-j', '-d', 'link', 'show'])).stdout) as {
      ifname: string; mtu: number; address: string; linkinfo?: { info_kind: string; info_data?: { id: number; port: number; local: string } };
    }[];
    const fab = links.find((l) => l.ifname === 'fab0');
    const vx = links.find((l) => l.ifname === 'sluice_vxlan');
    assert.ok(fab && vx, n.plan.name);
    assert.equal(vx.mtu, fab.mtu - 50);
    assert.equal(vx.address, vtepMac(n.plan.internalIp ?? ''));
    assert.deepEqual([vx.linkinfo?.info_kind, vx.linkinfo?.info_data?.id, vx.linkinfo?.info_data?.port, vx.linkinfo?.info_data?.local], ['vxlan', 2, 8472, n.plan.internalIp]);
    const others = c.lab.nodes.filter((o) => o !== n);
    const fdb = JSON.parse((await inNetns(n.plan.netns, ['bridge', '-j', 'fdb', 'show', 'dev', 'sluice_vxlan'])).stdout) as { mac: string; dst?: string }[];
    assert.deepEqual(fdb.filter((f) => f.dst !== undefined).map((f) => `${f.mac}>${f.dst ?? ''}`).sort(), others.map((o) => `${vtepMac(o.plan.internalIp ?? '')}>${o.plan.internalIp ?? ''}`).sort());
    const routes = JSON.parse((await inNetns(n.plan.netns, ['ip', '-j', 'route', 'show', 'proto', '211'])).stdout) as { dst: string; dev: string }[];
    assert.deepEqual(routes.map((r) => `${r.dst} ${r.dev}`).sort(), others.map((o) => `${o.plan.podCidr} sluice_vxlan`).sort());
  }
});

/** Packets the node's vxlan device sent and received. */
async function vxlanPackets(netns: string): Promise<number> {
  const [l] = JSON.parse((await inNetns(netns, ['ip', '-s', '-j', 'link', 'show', 'sluice_vxlan'])).stdout) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[];
  return (l?.stats64.rx.packets ?? 0) + (l?.stats64.tx.packets ?? 0);
}

test('pod to pod across nodes over VXLAN: TCP, UDP, ICMP (and on one node); the packets went through every vxlan device', async () => {
  const before = await Promise.all(c.lab.nodes.map((n) => vxlanPackets(n.plan.netns)));
  await crossNodeSuite.reachability(c);
  const after = await Promise.all(c.lab.nodes.map((n) => vxlanPackets(n.plan.netns)));
  after.forEach((n, i) => assert.ok(n > (before[i] ?? 0) + 10, `${c.lab.nodes[i]?.plan.name}: ${before[i]} → ${n} packets`));
});

test('policy admitting one namespace only, over VXLAN; label changes on a remote node reach every node', async () => {
  await crossNodeSuite.policy(c);
});

test('the fabric program on fab0 and sluice_vxlan of every node; a spoofed frame on the fabric drops', async () => {
  await crossNodeSuite.fabricSpoof(c, ['fab0', 'sluice_vxlan']);
});

test('kill -9 of one node\'s agent during a cross-node TCP stream over VXLAN: the stream survives, the agent catches up', async () => {
  await crossNodeSuite.killDuringStream(c);
});
