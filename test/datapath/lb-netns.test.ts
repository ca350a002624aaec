/**
 * The load balancer with real packets: a client pod and two backend pods in
 * network namespaces of their own on one node namespace, lxc.o on their
 * veths, the load-balancer maps written through their modules (as the agent
 * would). Sockets in the pods (test/fixtures/lb-pod.py) connect to a VIP:
 *
 *   client 10.0.1.5 ─┐
 *   backend b1 10.0.1.6 ─ node (forwarding) ─ programs on each host veth
 *   backend b2 10.0.1.7 ─┘
 *
 * VIP 10.96.0.10: TCP 80 → 8080, UDP 53 → 5353 on b1 and b2. Backends answer
 * "<name> <the peer address they saw>".
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceDirection, SluiceDropReason, SluiceLbBackendFlags, SluiceLbConst } from '../../src/datapath/generated/abi.js';
import { readCounter } from '../../src/datapath/maps/metrics.js';
import { loadLxc } from '../../src/datapath/lxc.js';
import { formatIpv4, parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { LxcHarness } from '../helpers/lxc-harness.js';
import { clearLb, maglevIds, writeService, type BackendSpec, type ServiceSpec } from '../helpers/lb.js';
import { LbNode, type Pod } from '../helpers/lb-netns.js';
import { LB_PINS } from '../helpers/lb-pins.js';
import { IPPROTO } from '../helpers/packet.js';

const VIP = '10.96.0.10';
const HAIRPIN = formatIpv4(SluiceLbConst.HAIRPIN_ADDR);
const B1: BackendSpec = { id: 1, ip: '10.0.1.6', port: 8080 };
const B2: BackendSpec = { id: 2, ip: '10.0.1.7', port: 8080 };
const U1: BackendSpec = { id: 3, ip: '10.0.1.6', port: 5353 };
const U2: BackendSpec = { id: 4, ip: '10.0.1.7', port: 5353 };
const WEB: ServiceSpec = { vip: VIP, port: 80, protocol: IPPROTO.TCP, serviceId: 1, backends: [B1, B2] };
const DNS: ServiceSpec = { vip: VIP, port: 53, protocol: IPPROTO.UDP, serviceId: 2, backends: [U1, U2] };

let h: LxcHarness | undefined;
let node: LbNode | undefined;
let client: Pod;
let b1: Pod;

function harness(): LxcHarness {
  assert.ok(h);
  return h;
}

before(async () => {
  try {
    h = LxcHarness.open({ endpointId: 31, ipv4: parseIpv4('10.0.1.5') }, LB_PINS);
    node = new LbNode(h);
    node.create();
    client = node.addPod('c', '10.0.1.5', 31);
    b1 = node.addPod('b1', '10.0.1.6', 32);
    const b2 = node.addPod('b2', '10.0.1.7', 33);
    for (const [pod, name] of [[b1, 'b1'], [b2, 'b2'], [client, 'c']] as const) {
      assert.deepEqual((await pod.cmd({ op: 'serve', name, tcp: 8080, udp: 5353 })).ok, true);
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
  h?.close();
  h = undefined;
}

test('TCP: connections to the VIP reach both backends, which see the client\'s own address', async () => {
  writeService(harness().dp.maps.lb, WEB);
  const replies = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const a = await client.cmd({ op: 'tcp', addr: VIP, port: 80 });
    assert.equal(a.error, undefined, JSON.stringify(a));
    replies.add(a.reply ?? '');
  }
  assert.deepEqual([...replies].sort(), ['b1 10.0.1.5', 'b2 10.0.1.5']);
});

test('UDP: a connected socket to the VIP gets its answer from the VIP (else the kernel would not deliver it)', async () => {
  writeService(harness().dp.maps.lb, DNS);
  const replies = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const a = await client.cmd({ op: 'udp', addr: VIP, port: 53 });
    assert.equal(a.error, undefined, JSON.stringify(a));
    replies.add(a.reply ?? '');
  }
  assert.deepEqual([...replies].sort(), ['b1 10.0.1.5', 'b2 10.0.1.5']);
  // A larger datagram: the translated checksum covers its whole payload.
  assert.match((await client.cmd({ op: 'udp', addr: VIP, port: 53, size: 1400 })).reply ?? '', /^b[12] 10\.0\.1\.5$/);
});

test('no endpoint: TCP connect and UDP recv fail with ECONNREFUSED at once', async () => {
  writeService(harness().dp.maps.lb, { ...WEB, backends: [], table: [] });
  writeService(harness().dp.maps.lb, { ...DNS, backends: [], table: [] });
  const t = await client.cmd({ op: 'tcp', addr: VIP, port: 80 });
  assert.equal(t.error, 'ECONNREFUSED');
  assert.ok(t.ms < 200, `TCP refused after ${t.ms} ms`);
  const u = await client.cmd({ op: 'udp', addr: VIP, port: 53 });
  assert.equal(u.error, 'ECONNREFUSED');
  assert.ok(u.ms < 200, `UDP refused after ${u.ms} ms`);
});

test('hairpin: a backend reaches itself through the VIP and sees 169.254.42.1', async () => {
  writeService(harness().dp.maps.lb, { ...WEB, backends: [B1] });
  writeService(harness().dp.maps.lb, { ...DNS, backends: [U1] });
  for (let i = 0; i < 3; i++) assert.deepEqual((await b1.cmd({ op: 'tcp', addr: VIP, port: 80 })).reply, `b1 ${HAIRPIN}`);
  assert.deepEqual((await b1.cmd({ op: 'udp', addr: VIP, port: 53 })).reply, `b1 ${HAIRPIN}`);
  // The client still reaches b1 with its own address.
  assert.deepEqual((await client.cmd({ op: 'tcp', addr: VIP, port: 80 })).reply, 'b1 10.0.1.5');
});

test('a TCP connection survives its backend\'s removal from the service; new connections go to the other', async () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, WEB);
  assert.equal((await client.cmd({ op: 'open', id: 'long', addr: VIP, port: 80 })).ok, true);
  const first = (await client.cmd({ op: 'talk', id: 'long' })).reply ?? '';
  const [name] = first.split(' ');
  const [gone, live] = name === 'b1' ? [B1, B2] : [B2, B1];
  writeService(lb, { ...WEB, backends: [live] });
  lb.backends.delete(gone.id);
  for (let i = 0; i < 5; i++) assert.equal((await client.cmd({ op: 'talk', id: 'long' })).reply, first);
  for (let i = 0; i < 5; i++) assert.match((await client.cmd({ op: 'tcp', addr: VIP, port: 80 })).reply ?? '', new RegExp(`^${name === 'b1' ? 'b2' : 'b1'} `));
  await client.cmd({ op: 'close', id: 'long' });
});

test('a UDP flow from a fixed port moves when its backend is deleted', async () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, DNS);
  const first = (await client.cmd({ op: 'udp', addr: VIP, port: 53, sport: 12345 })).reply ?? '';
  for (let i = 0; i < 3; i++) assert.equal((await client.cmd({ op: 'udp', addr: VIP, port: 53, sport: 12345 })).reply, first);
  const [gone, live] = first.startsWith('b1') ? [U1, U2] : [U2, U1];
  writeService(lb, { ...DNS, backends: [live] });
  lb.backends.delete(gone.id);
  const after = await client.cmd({ op: 'udp', addr: VIP, port: 53, sport: 12345 });
  assert.equal(after.reply, `${first.startsWith('b1') ? 'b2' : 'b1'} 10.0.1.5`);
});

test('ClientIP affinity: every connection of the client lands on one backend', async () => {
  writeService(harness().dp.maps.lb, { ...WEB, affinitySeconds: 30 });
  const replies = new Set<string>();
  for (let i = 0; i < 15; i++) replies.add((await client.cmd({ op: 'tcp', addr: VIP, port: 80 })).reply ?? '');
  assert.equal(replies.size, 1, [...replies].join(', '));
});

test('a backend marked not selectable (terminating, others ready) gets no new flows', async () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, { ...DNS, backends: [U1, { ...U2, flags: SluiceLbBackendFlags.NOT_SELECTABLE }], table: [U1.id] });
  for (let i = 0; i < 10; i++) assert.equal((await client.cmd({ op: 'udp', addr: VIP, port: 53 })).reply, 'b1 10.0.1.5');
});

test('UDP to a backend port nobody listens on: the backend\'s port unreachable reaches the client as ECONNREFUSED', async () => {
  writeService(harness().dp.maps.lb, { ...DNS, port: 54, backends: [{ ...U1, port: 5999 }] });
  const a = await client.cmd({ op: 'udp', addr: VIP, port: 54 });
  assert.equal(a.error, 'ECONNREFUSED', JSON.stringify(a));
});

test('Maglev tables replaced while new flows arrive: every flow is answered, no packet meets a missing or partial table', async () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, { ...DNS, maglev: true, maglevSize: 251 });
  const key = { serviceId: DNS.serviceId, backendSet: 0 };
  // Tables of two lengths: a table written in place would, mid-write, name slots its header does not cover.
  const tables = [maglevIds(DNS.backends, 251), maglevIds(DNS.backends, 1021), maglevIds([U2], 509)];
  const dropsBefore = serviceDrops();
  const burst = client.cmd({ op: 'udpburst', addr: VIP, port: 53, count: 20000 });
  let done = false;
  void burst.then(() => { done = true; });
  let swaps = 0;
  while (!done) {
    lb.tables.replace(key, tables[swaps % tables.length]!);
    swaps++;
    await new Promise((resolve) => setImmediate(resolve));
  }
  const answer = await burst;
  assert.deepEqual(Object.keys(answer.counts ?? {}).sort(), ['b1 10.0.1.5', 'b2 10.0.1.5'], JSON.stringify(answer.counts));
  assert.equal(Object.values(answer.counts ?? {}).reduce((a, b) => a + b, 0), 20000);
  assert.ok(swaps > 20, `only ${swaps} replacements during the burst`);
  assert.equal(serviceDrops() - dropsBefore, 0n);
});

/** Egress packets dropped for want of a backend or for an unknown one. */
function serviceDrops(): bigint {
  const m = harness().dp.maps.metrics;
  return [SluiceDropReason.SERVICE_BACKEND_UNKNOWN, SluiceDropReason.SERVICE_NO_BACKEND, SluiceDropReason.SERVICE_REJECTED]
    .reduce((sum, reason) => sum + readCounter(m, SluiceDirection.EGRESS, reason).packets, 0n);
}

test('a reload of the programs on the pinned maps (an agent restart) keeps connections on their backends', async () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, WEB);
  writeService(lb, DNS);
  assert.equal((await client.cmd({ op: 'open', id: 'kept', addr: VIP, port: 80 })).ok, true);
  const tcp = (await client.cmd({ op: 'talk', id: 'kept' })).reply;
  const udp = (await client.cmd({ op: 'udp', addr: VIP, port: 53, sport: 23456 })).reply;
  const reloaded = loadLxc({ pinRoot: harness().pinRoot });
  try {
    node?.reattach(reloaded.fromContainer.fd, reloaded.toContainer.fd);
  } finally {
    reloaded.close(); // the tc filters hold the programs
  }
  for (let i = 0; i < 3; i++) {
    assert.equal((await client.cmd({ op: 'talk', id: 'kept' })).reply, tcp);
    assert.equal((await client.cmd({ op: 'udp', addr: VIP, port: 53, sport: 23456 })).reply, udp);
  }
  assert.match((await client.cmd({ op: 'tcp', addr: VIP, port: 80 })).reply ?? '', /^b[12] 10\.0\.1\.5$/);
  await client.cmd({ op: 'close', id: 'kept' });
});

test('Local policy without a local endpoint: dropped, the client times out (as under kube-proxy)', async () => {
  writeService(harness().dp.maps.lb, { ...DNS, backends: [], table: [], emptyDrop: true });
  const a = await client.cmd({ op: 'udp', addr: VIP, port: 53, timeout: 0.3 });
  assert.equal(a.error, 'TIMEOUT');
});

test('a TCP connection outlives its Service\'s deletion; the VIP then answers nothing new', async () => {
  const lb = harness().dp.maps.lb;
  writeService(lb, WEB);
  assert.equal((await client.cmd({ op: 'open', id: 'orphan', addr: VIP, port: 80 })).ok, true);
  const first = (await client.cmd({ op: 'talk', id: 'orphan' })).reply;
  clearLb(lb);
  assert.equal((await client.cmd({ op: 'talk', id: 'orphan' })).reply, first);
  assert.notEqual((await client.cmd({ op: 'tcp', addr: VIP, port: 80 })).error, undefined);
  await client.cmd({ op: 'close', id: 'orphan' });
});
