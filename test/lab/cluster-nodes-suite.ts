/**
 * The cross-node checks both routing modes run (cluster-nodes.test.ts for
 * native, cluster-vxlan.test.ts for vxlan), on a lab of pods a (default,
 * app=client), b (default, app=web), c (namespace other, app=client), d
 * (default, app=web), placed round-robin on three nodes: a and d on node 1,
 * b on node 2, c on node 3. Every pod runs a UDP echo on 5301 (the test
 * starts it); TCP probes count a refused connect as through.
 */
import assert from 'node:assert/strict';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { dumpIpcache } from '../../src/datapath/maps/ipcache.js';
import { until } from '../agent/helpers/wait.js';
import { SluiceDirection, SluiceDropReason } from '../../src/datapath/generated/abi.js';
import { readCounter } from '../../src/datapath/maps/metrics.js';
import { hostAttached } from '../../src/datapath/host.js';
import { fabricNetnsName } from '../../src/lab/names.js';
import { netnsPath } from '../../src/lab/netns.js';
import { ipv4Frame } from '../helpers/packet.js';
import { inNetns, ping, sh, tcpServe, tcpStream } from './helpers.js';
import { eventually, expectNow, type TestCluster } from './cluster-helpers.js';

const manifests = [
  { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b', labels: { app: 'web' } }, spec: { containers: [{ name: 'srv' }] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'c', namespace: 'other', labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'd', labels: { app: 'web' } }, spec: { containers: [{ name: 'srv' }] } },
];

/** web pods admit clients from namespaces labelled team=blue only. */
const ALLOW_TEAM_BLUE = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-team-blue, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
`;

/** ...and, within default, pods labelled role=trusted. */
const ALLOW_TRUSTED = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-trusted, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {role: trusted}}}]
`;

async function reachability(c: TestCluster): Promise<void> {
  // Across nodes, both ways, every protocol; then within node 1.
  await expectNow(c, [
    ['a', 'b', 'tcp', 5201, 'open'],
    ['b', 'a', 'tcp', 5201, 'open'],
    ['a', 'b', 'udp', 5301, 'open'],
    ['b', 'c', 'udp', 5301, 'open'],
    ['c', 'a', 'udp', 5301, 'open'],
    ['c', 'b', 'tcp', 80, 'open'],
    ['a', 'd', 'tcp', 80, 'open'],
    ['d', 'a', 'udp', 5301, 'open'],
  ]);
  for (const [from, to] of [['a', 'b'], ['b', 'c'], ['c', 'a'], ['a', 'd']] as const) {
    const r = await ping(c.lab.pod(from).netns, c.lab.pod(to).ipv4, 2);
    assert.equal(r.received, 2, `ping ${from} -> ${to}`);
  }
}

/** The identity each node's ipcache gives `ip` (undefined: none). */
function identities(c: TestCluster, ip: string): (number | undefined)[] {
  return c.lab.nodes.map((n) => {
    const maps = openPinnedDatapathMaps(n.plan.pinRoot);
    try {
      return dumpIpcache(maps.ipcache).find((r) => r.prefix === `${ip}/32`)?.identity;
    } finally {
      maps.close();
    }
  });
}

async function policy(c: TestCluster): Promise<void> {
  const kubectl = (args: string[], input?: string): Promise<string> => c.lab.kubectl(args, input);
  await kubectl(['label', 'namespace', 'other', 'team=blue']);
  await kubectl(['apply', '-f', '-'], ALLOW_TEAM_BLUE);
  // b on node 2: a (node 1, default) is not admitted, c (node 3, other: team=blue) is.
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed');
  await expectNow(c, [
    ['c', 'b', 'tcp', 5201, 'open'],
    ['c', 'b', 'udp', 5301, 'open'],
    ['a', 'b', 'udp', 5301, 'closed'],
    ['a', 'd', 'tcp', 80, 'closed'], // same node as a: the same verdict
    ['c', 'd', 'udp', 5301, 'open'],
    ['b', 'a', 'tcp', 80, 'open'], // a is not selected
  ]);
  const ping0 = await ping(c.lab.pod('a').netns, c.lab.pod('b').ipv4, 1);
  assert.equal(ping0.received, 0, 'ICMP from a to b dropped');

  // A namespace label change: default joins team blue, a (node 1) gets into b (node 2).
  await kubectl(['label', 'namespace', 'default', 'team=blue']);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
  await kubectl(['label', 'namespace', 'default', 'team-']);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed');

  // A pod label change on node 1: every node's ipcache gives a the new identity.
  await kubectl(['apply', '-f', '-'], ALLOW_TRUSTED);
  const before = identities(c, c.lab.pod('a').ipv4);
  assert.equal(new Set(before).size, 1, `one identity for a on every node: ${before.join(', ')}`);
  assert.notEqual(before[0], undefined);
  await kubectl(['label', 'pod', 'a', 'role=trusted']);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
  const after = await until('every node has a\'s new identity', () => {
    const ids = identities(c, c.lab.pod('a').ipv4);
    return new Set(ids).size === 1 && ids[0] !== before[0] ? ids : undefined;
  });
  assert.notEqual(after[0], undefined);
  await expectNow(c, [['a', 'b', 'udp', 5301, 'open'], ['d', 'b', 'tcp', 5201, 'closed']]);
  await kubectl(['label', 'pod', 'a', 'role-']);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed');
  await kubectl(['delete', 'networkpolicy', 'web-team-blue', 'web-trusted']);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
}

/**
 * kill -9 of node 2's agent (b's) during an 8 s TCP stream a (node 1) → b:
 * every byte arrives in order with no pause ≥ 1 s; a label change made while
 * the agent is dead (c's identity, on node 3) reaches node 2's ipcache once
 * it is back.
 */
async function killDuringStream(c: TestCluster): Promise<void> {
  const b = c.lab.pod('b');
  const node2 = c.lab.node(b.node ?? '');
  const server = await tcpServe(b.netns, b.ipv4, 5202);
  try {
    const stream = tcpStream(c.lab.pod('a').netns, b.ipv4, 5202, 8000);
    await new Promise((r) => setTimeout(r, 1500));
    await node2.agent.kill();
    const before = identities(c, c.lab.pod('c').ipv4);
    await c.lab.kubectl(['label', 'pod', 'c', '-n', 'other', 'stage=while-dead']);
    await until('the live nodes have c\'s new identity', () => {
      const ids = identities(c, c.lab.pod('c').ipv4);
      return ids.filter((id, i) => c.lab.nodes[i] !== node2 && id !== before[i]).length === c.lab.nodes.length - 1 ? ids : undefined;
    });
    const readyMs = await node2.agent.start();
    const summary = await stream;
    assert.equal(summary.error, undefined, JSON.stringify(summary));
    assert.equal(summary.server?.bytes, summary.written, 'every byte arrived, in order');
    assert.ok(summary.written > 1 << 20, `the stream moved data (${summary.written} bytes)`);
    assert.ok((summary.server?.maxGapMs ?? Infinity) < 1000, `no stall: longest pause ${summary.server?.maxGapMs} ms (agent ready after ${Math.round(readyMs)} ms)`);
    const after = await until('node 2 caught up', () => {
      const ids = identities(c, c.lab.pod('c').ipv4);
      return new Set(ids).size === 1 && ids[0] !== before[0] ? ids : undefined;
    });
    assert.notEqual(after[0], undefined);
  } finally {
    server.kill();
  }
  await expectNow(c, [['a', 'b', 'tcp', 5201, 'open'], ['c', 'b', 'udp', 5301, 'open']]);
}

/** Node `index`'s counter of a drop reason (or NONE: forwarded) at ingress, from its pinned metrics map. */
function ingressCount(c: TestCluster, index: number, reason: number): bigint {
  const maps = openPinnedDatapathMaps(c.lab.nodes[index]!.plan.pinRoot);
  try {
    return readCounter(maps.metrics, SluiceDirection.INGRESS, reason).packets;
  } finally {
    maps.close();
  }
}

/**
 * The fabric program: attached on every node's fab0 (and sluice_vxlan); a
 * frame put on the wire towards node 2 (from the fabric's bridge port) for b
 * with a source in node 2's podCIDR drops with NODE_SPOOFED_SOURCE; the
 * same frame from a's address (another node's pod) is not counted as a spoof.
 */
async function fabricSpoof(c: TestCluster, devices: readonly string[]): Promise<void> {
  for (const n of c.lab.nodes) {
    for (const d of devices) {
      assert.notEqual(hostAttached(d, netnsPath(n.plan.netns)), undefined, `${n.plan.name} ${d}: from_fabric`);
      assert.notEqual(hostAttached(d, netnsPath(n.plan.netns), 'egress'), undefined, `${n.plan.name} ${d}: to_fabric`);
    }
  }
  const b = c.lab.pod('b');
  const i = c.lab.nodes.findIndex((n) => n.plan.name === b.node);
  const node = c.lab.nodes[i]!;
  const [fab] = JSON.parse((await inNetns(node.plan.netns, ['ip', '-j', 'link', 'show', 'fab0'])).stdout) as { address: string }[];
  const spoofSrc = node.plan.podCidr.replace(/\.0\/\d+$/, '.200');
  const send = async (src: string): Promise<void> => {
    const frame = ipv4Frame({ src, dst: b.ipv4 }, { proto: 'udp', sport: 4444, dport: 5301, payload: Buffer.from('spoof') }, { dst: fab?.address ?? '' });
    const py = 'import socket,sys; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0)); s.send(bytes.fromhex(sys.argv[2]))';
    const r = await sh('ip', ['netns', 'exec', fabricNetnsName(c.name), 'python3', '-c', py, `n${node.plan.index}`, frame.toString('hex')]);
    assert.equal(r.code, 0, r.stderr);
  };
  const spoofed = ingressCount(c, i, SluiceDropReason.NODE_SPOOFED_SOURCE);
  await send(c.lab.pod('a').ipv4);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ingressCount(c, i, SluiceDropReason.NODE_SPOOFED_SOURCE), spoofed, 'another node\'s pod is no spoof');
  await send(spoofSrc);
  await until('the spoof is counted', () => ingressCount(c, i, SluiceDropReason.NODE_SPOOFED_SOURCE) === spoofed + 1n);
}

export const crossNodeSuite = { manifests, reachability, policy, killDuringStream, fabricSpoof };
