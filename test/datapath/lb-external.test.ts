/**
 * bpf/host.c's load balancing of traffic from outside the node, with real
 * packets: a host outside (its own namespace, 10.99.0.2) reaches the node's
 * device (10.99.0.1, from_fabric on its tc ingress) and, through a NodePort
 * frontend on the node's address, backend pods b1 and b2 on the node (lxc.o
 * on their veths, as in lb-netns.test.ts):
 *
 *   outside 10.99.0.2 ── lbd<id>fab 10.99.0.1 (node) ── b1 10.0.1.6, b2 10.0.1.7
 *
 * to_fabric is on the device's tc egress, and a server runs in the node's
 * own namespace too ("node": a host-network endpoint). Backends answer
 * "<name> <the peer address they saw>".
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceLbConst } from '../../src/datapath/generated/abi.js';
import { testRun } from '../../src/datapath/test-run.js';
import { loadHost, type HostProgram } from '../../src/datapath/host.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { dumpLbNat } from '../../src/datapath/maps/lb-nat.js';
import { attachTc } from '../../src/datapath/tc.js';
import { LxcHarness } from '../helpers/lxc-harness.js';
import { clearLb, writeService, type ServiceSpec } from '../helpers/lb.js';
import { LbNode, type Pod } from '../helpers/lb-netns.js';
import { LB_PINS } from '../helpers/lb-pins.js';
import { IPPROTO, ipv4Frame } from '../helpers/packet.js';
import { decodeFrame } from '../helpers/lb.js';

const NODE = '10.99.0.1';
const CLIENT = '10.99.0.2';
const NODE_PORT: ServiceSpec = {
  vip: NODE, port: 30080, protocol: IPPROTO.TCP, serviceId: 1, external: true, masquerade: true,
  backends: [{ id: 1, ip: '10.0.1.6', port: 8080 }, { id: 2, ip: '10.0.1.7', port: 8080 }],
};
const NODE_PORT_UDP: ServiceSpec = {
  vip: NODE, port: 30053, protocol: IPPROTO.UDP, serviceId: 2, external: true, masquerade: true,
  backends: [{ id: 3, ip: '10.0.1.6', port: 5353 }, { id: 4, ip: '10.0.1.7', port: 5353 }],
};

let h: LxcHarness | undefined;
let node: LbNode | undefined;
let host: HostProgram | undefined;
let outside: Pod;

function harness(): LxcHarness {
  assert.ok(h);
  return h;
}

before(async () => {
  try {
    h = LxcHarness.open({ endpointId: 41, ipv4: parseIpv4('10.0.1.6') }, LB_PINS);
    node = new LbNode(h);
    node.create();
    const b1 = node.addPod('b1', '10.0.1.6', 41);
    const b2 = node.addPod('b2', '10.0.1.7', 42);
    const out = node.addOutside('x', NODE, CLIENT);
    outside = out.outside;
    host = loadHost({ pinRoot: h.pinRoot, podCidr: '10.0.1.0/24', nodeAddress: NODE });
    attachTc(out.device, 'ingress', host.fromFabric.fd);
    attachTc(out.device, 'egress', host.toFabric.fd);
    for (const [pod, name] of [[b1, 'b1'], [b2, 'b2'], [node.addNodeProcess('node'), 'node']] as const) {
      assert.equal((await pod.cmd({ op: 'serve', name, tcp: 8080, udp: 5353 })).ok, true);
    }
  } catch (err) {
    cleanup();
    throw err;
  }
});
after(cleanup);
beforeEach(() => clearLb(harness().dp.maps.lb));

function cleanup(): void {
  node?.remove();
  node = undefined;
  host?.close();
  host = undefined;
  h?.close();
  h = undefined;
}

async function replies(cmd: Record<string, unknown>, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const a = await outside.cmd(cmd);
    assert.equal(a.error, undefined, JSON.stringify(a));
    seen.add(a.reply ?? '');
  }
  return seen;
}

test('NodePort, externalTrafficPolicy Cluster, backends on this node: both answer, masqueraded as kube-proxy does (they see the node\'s address)', async () => {
  writeService(harness().dp.maps.lb, NODE_PORT);
  assert.deepEqual([...await replies({ op: 'tcp', addr: NODE, port: 30080 }, 20)].sort(), [`b1 ${NODE}`, `b2 ${NODE}`]);
  const rows = dumpLbNat(harness().dp.maps.lb.nat);
  const forward = rows.filter((r) => r.role === 'FORWARD');
  assert.equal(forward.length, 20);
  for (const r of forward) {
    assert.equal(r.frontend, `${NODE}:30080`);
    assert.ok(r.snatPort !== undefined && r.snatPort >= SluiceLbConst.SNAT_PORT_MIN && r.snatPort <= SluiceLbConst.SNAT_PORT_MAX, `${String(r.snatPort)}`);
    assert.match(r.client, /^10\.99\.0\.2:\d+$/);
  }
});

test('NodePort over UDP: answers come back from the frontend (a connected socket takes nothing else)', async () => {
  writeService(harness().dp.maps.lb, NODE_PORT_UDP);
  assert.deepEqual([...await replies({ op: 'udp', addr: NODE, port: 30053 }, 20)].sort(), [`b1 ${NODE}`, `b2 ${NODE}`]);
});

test('externalTrafficPolicy Local: the backend sees the client\'s own address', async () => {
  writeService(harness().dp.maps.lb, { ...NODE_PORT, masquerade: false });
  const seen = await replies({ op: 'tcp', addr: NODE, port: 30080 }, 10);
  assert.ok([...seen].every((r) => r.endsWith(` ${CLIENT}`)), [...seen].join(', '));
});

test('a backend that is the node itself (a host-network endpoint): not masqueraded even under Cluster, and its replies leave from the frontend, TCP and UDP', async () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, { ...NODE_PORT, backends: [{ id: 20, ip: NODE, port: 8080 }] });
  writeService(lb, { ...NODE_PORT_UDP, backends: [{ id: 21, ip: NODE, port: 5353 }] });
  // The node's own address as its source would be a martian: the node's socket sees the client.
  assert.deepEqual([...await replies({ op: 'tcp', addr: NODE, port: 30080 }, 5)], [`node ${CLIENT}`]);
  // A connected UDP socket takes only datagrams from NODE:30053: the reply's source was translated on its way out.
  assert.deepEqual([...await replies({ op: 'udp', addr: NODE, port: 30053 }, 5)], [`node ${CLIENT}`]);
  const forward = dumpLbNat(lb.nat).filter((r) => r.role === 'FORWARD');
  assert.ok(forward.length >= 10 && forward.every((r) => r.snatPort === undefined), JSON.stringify(forward));
});

test('the node itself as the backend, with nobody on the port: its ICMP port unreachable reaches the client about the frontend, so a connected UDP socket sees ECONNREFUSED', async () => {
  // 5399: no server in the node's namespace. The node's stack answers with an error quoting NODE:5399,
  // which the client's socket (connected to NODE:30053) would not take untranslated.
  writeService(harness().dp.maps.lb, { ...NODE_PORT_UDP, backends: [{ id: 22, ip: NODE, port: 5399 }] });
  const u = await outside.cmd({ op: 'udp', addr: NODE, port: 30053 });
  assert.equal(u.error, 'ECONNREFUSED', JSON.stringify(u));
});

test('to_fabric leaves alone what is not a reply of the node to an external connection, IPv6 included (test run)', () => {
  const p = host;
  assert.ok(p);
  const plain = ipv4Frame({ src: NODE, dst: CLIENT }, { proto: 'tcp', sport: 8080, dport: 45000, flags: 0x12 });
  const out = testRun(p.toFabric, { data: plain });
  assert.deepEqual([out.retval, Buffer.compare(out.data, plain)], [0, 0], 'TC_ACT_OK, unchanged');
  const ipv6 = Buffer.alloc(14 + 40);
  ipv6.writeUInt16BE(0x86dd, 12);
  ipv6[14] = 0x60;
  assert.equal(testRun(p.toFabric, { data: ipv6 }).retval, 0, 'IPv6 leaves (the node\'s traffic is never dropped on its way out)');
});

test('a NodePort without endpoints refuses at once, TCP and UDP', async () => {
  writeService(harness().dp.maps.lb, { ...NODE_PORT, backends: [], table: [] });
  writeService(harness().dp.maps.lb, { ...NODE_PORT_UDP, backends: [], table: [] });
  const t = await outside.cmd({ op: 'tcp', addr: NODE, port: 30080 });
  assert.equal(t.error, 'ECONNREFUSED');
  assert.ok(t.ms < 200, `${t.ms} ms`);
  const u = await outside.cmd({ op: 'udp', addr: NODE, port: 30053 });
  assert.equal(u.error, 'ECONNREFUSED');
});

test('a long external connection stays on its backend while others come and go', async () => {
  writeService(harness().dp.maps.lb, NODE_PORT);
  assert.equal((await outside.cmd({ op: 'open', id: 'ext', addr: NODE, port: 30080 })).ok, true);
  const first = (await outside.cmd({ op: 'talk', id: 'ext' })).reply;
  await replies({ op: 'tcp', addr: NODE, port: 30080 }, 10);
  for (let i = 0; i < 3; i++) assert.equal((await outside.cmd({ op: 'talk', id: 'ext' })).reply, first);
  await outside.cmd({ op: 'close', id: 'ext' });
});

test('Cluster to another node\'s backend (test run): masqueraded to the node\'s address and a port of the range; the reply goes back to the client from the frontend', () => {
  const p = host;
  assert.ok(p);
  writeService(harness().dp.maps.lb, { ...NODE_PORT, backends: [{ id: 9, ip: '10.0.2.9', port: 8080 }] });
  const syn = ipv4Frame({ src: CLIENT, dst: NODE }, { proto: 'tcp', sport: 40000, dport: 30080, flags: 0x02 });
  const out = testRun(p.fromFabric, { data: syn });
  assert.equal(out.retval, 7, 'redirected out of the device');
  const d = decodeFrame(out.data);
  assert.deepEqual([d.src, d.dst, d.dport, d.ipChecksumOk, d.l4ChecksumOk], [NODE, '10.0.2.9', 8080, true, true]);
  assert.ok(d.sport >= SluiceLbConst.SNAT_PORT_MIN && d.sport <= SluiceLbConst.SNAT_PORT_MAX, `${d.sport}`);
  assert.equal(decodeFrame(testRun(p.fromFabric, { data: syn }).data).sport, d.sport, 'the connection keeps its port');
  const back = testRun(p.fromFabric, { data: ipv4Frame({ src: '10.0.2.9', dst: NODE }, { proto: 'tcp', sport: 8080, dport: d.sport, flags: 0x12 }) });
  assert.equal(back.retval, 7);
  const r = decodeFrame(back.data);
  assert.deepEqual([r.src, r.sport, r.dst, r.dport, r.ipChecksumOk, r.l4ChecksumOk], [NODE, 30080, CLIENT, 40000, true, true]);
  const other = decodeFrame(testRun(p.fromFabric, { data: ipv4Frame({ src: CLIENT, dst: NODE }, { proto: 'tcp', sport: 40001, dport: 30080, flags: 0x02 }) }).data);
  assert.notEqual(other.sport, d.sport, 'another client port, another node port');
});

test('a backend that leaves: the UDP flow moves to a live one at its next packet (as kube-proxy clears its conntrack entries), a TCP connection stays', () => {
  const p = host;
  assert.ok(p);
  const lb = harness().dp.maps.lb;
  const far = [{ id: 9, ip: '10.0.2.9', port: 5353 }, { id: 10, ip: '10.0.2.10', port: 5353 }];
  writeService(lb, { ...NODE_PORT_UDP, backends: far });
  const udp = ipv4Frame({ src: CLIENT, dst: NODE }, { proto: 'udp', sport: 12345, dport: 30053 });
  const first = decodeFrame(testRun(p.fromFabric, { data: udp }).data).dst;
  assert.equal(decodeFrame(testRun(p.fromFabric, { data: udp }).data).dst, first, 'while it is a backend, the flow stays');
  const gone = far.find((b) => b.ip === first)!;
  const left = far.filter((b) => b !== gone);
  lb.backends.delete(gone.id);
  writeService(lb, { ...NODE_PORT_UDP, backends: left });
  const moved = testRun(p.fromFabric, { data: udp });
  assert.equal(moved.retval, 7, 'redirected out of the device');
  assert.equal(decodeFrame(moved.data).dst, left[0]?.ip);
  // A target port change is a backend that leaves too: same address, new port.
  lb.backends.delete(left[0]!.id);
  writeService(lb, { ...NODE_PORT_UDP, backends: [{ id: 11, ip: left[0]!.ip, port: 9090 }] });
  const d = decodeFrame(testRun(p.fromFabric, { data: udp }).data);
  assert.deepEqual([d.dst, d.dport, d.l4ChecksumOk], [left[0]!.ip, 9090, true]);
  // The frontend gone too: untranslated, to the stack.
  clearLb(lb);
  writeService(lb, { ...NODE_PORT_UDP, backends: far });
  lb.services.deleteBatch([...lb.services.entries()].map(([k]) => k));
  lb.backends.deleteBatch([...lb.backends.entries()].map(([k]) => k));
  const none = testRun(p.fromFabric, { data: udp });
  assert.equal(decodeFrame(none.data).dst, NODE);

  writeService(lb, { ...NODE_PORT, backends: [{ id: 12, ip: '10.0.2.12', port: 8080 }] });
  const syn = ipv4Frame({ src: CLIENT, dst: NODE }, { proto: 'tcp', sport: 41000, dport: 30080, flags: 0x02 });
  assert.equal(decodeFrame(testRun(p.fromFabric, { data: syn }).data).dst, '10.0.2.12');
  lb.backends.delete(12);
  writeService(lb, { ...NODE_PORT, backends: [{ id: 13, ip: '10.0.2.13', port: 8080 }] });
  const ack = ipv4Frame({ src: CLIENT, dst: NODE }, { proto: 'tcp', sport: 41000, dport: 30080, flags: 0x10 });
  assert.equal(decodeFrame(testRun(p.fromFabric, { data: ack }).data).dst, '10.0.2.12', 'TCP keeps its backend');
});
