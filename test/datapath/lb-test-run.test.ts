/**
 * bpf/lib/lb.h and nat.h under BPF_PROG_TEST_RUN, as the client pod's
 * programs (from_container / to_container) with the load-balancer maps
 * written through their modules: the frontend lookup by address, port and
 * protocol; DNAT with correct checksums and policy judging the backend;
 * reverse NAT on replies; pinning across backend-set changes; Maglev
 * agreeing with the TypeScript flow hash; ClientIP affinity; rejects built
 * in the program; hairpin through 169.254.42.1.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceCtFlags, SluiceDirection, SluiceDropReason, SluiceEventFlags, SluiceLbBackendFlags, SluiceLbConst,
} from '../../src/datapath/generated/abi.js';
import { formatIpv4, parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { lbFlowHash } from '../../src/datapath/maps/lb-tables.js';
import { monotonicNowNs } from '../../src/datapath/maps/conntrack.js';
import { LxcHarness, TC_ACT_OK, TC_ACT_SHOT, oneCounter } from '../helpers/lxc-harness.js';
import { clearLb, decodeFrame, maglevIds, writeService, type BackendSpec, type ServiceSpec } from '../helpers/lb.js';
import { LB_PINS } from '../helpers/lb-pins.js';
import { IPPROTO, TCP_FLAGS, icmpQuote, ipv4Fragments, ipv4Frame } from '../helpers/packet.js';
import { allowPorts, isolated } from '../helpers/policy.js';

const TC_ACT_REDIRECT = 7;
const EP = 1;
const POD = '10.0.1.5';
const POD_MAC = '02:00:00:00:00:01';
const HOST_MAC = '02:00:00:00:00:02';
const VIP = '10.96.0.10';
const HAIRPIN = formatIpv4(SluiceLbConst.HAIRPIN_ADDR);
const { EGRESS, INGRESS } = SluiceDirection;
const { SYN, ACK, PSH, RST } = TCP_FLAGS;

const B1: BackendSpec = { id: 1, ip: '10.0.2.7', port: 8080 };
const B2: BackendSpec = { id: 2, ip: '10.0.2.8', port: 8080 };
const B3: BackendSpec = { id: 3, ip: '10.0.2.9', port: 8080 };
const WEB: ServiceSpec = { vip: VIP, port: 80, protocol: IPPROTO.TCP, serviceId: 10, backends: [B1, B2, B3] };
const DNS: ServiceSpec = { vip: VIP, port: 53, protocol: IPPROTO.UDP, serviceId: 11, backends: [{ id: 4, ip: '10.0.2.7', port: 5353 }, { id: 5, ip: '10.0.2.8', port: 5353 }] };

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) }, LB_PINS);
});
after(() => h.close());
beforeEach(() => {
  h.reset();
  clearLb(h.dp.maps.lb);
});

const eth = { src: POD_MAC, dst: HOST_MAC };
const tcpOut = (sport: number, flags: number, dst = VIP, dport = 80, seq = 1000): Buffer =>
  ipv4Frame({ src: POD, dst }, { proto: 'tcp', sport, dport, flags, seq }, eth);
const tcpIn = (src: string, sport: number, dport: number, flags: number): Buffer =>
  ipv4Frame({ src, dst: POD }, { proto: 'tcp', sport, dport, flags, seq: 5000, ack: 1001 }, { src: HOST_MAC, dst: POD_MAC });
const udpOut = (sport: number, dport = 53, dst = VIP): Buffer =>
  ipv4Frame({ src: POD, dst }, { proto: 'udp', sport, dport, payload: Buffer.from('query') }, eth);

/** The backend a frame from the pod was sent to. */
async function sendOut(frame: Buffer): Promise<string> {
  const r = await h.run('from_container', frame);
  assert.equal(r.retval, TC_ACT_OK);
  const d = decodeFrame(r.data);
  return `${d.dst}:${d.dport}`;
}

test('a SYN to a frontend goes to a backend: DNAT with valid checksums; policy, event and conntrack see the backend', async () => {
  writeService(h.dp.maps.lb, WEB);
  const r = await h.run('from_container', tcpOut(40000, SYN));
  assert.equal(r.retval, TC_ACT_OK);
  const out = decodeFrame(r.data);
  const backend = WEB.backends.find((b) => b.ip === out.dst);
  assert.ok(backend, `sent to ${out.dst}`);
  assert.deepEqual([out.src, out.sport, out.dport, out.ipChecksumOk, out.l4ChecksumOk, out.tcpFlags], [POD, 40000, 8080, true, true, SYN]);
  assert.equal(r.events.length, 0, 'no event without tracing');
  assert.deepEqual(r.counters, { CT_CREATED: 1n, LB_SELECTED: 1n });
  const entries = [...h.dp.maps.conntrack.entries()];
  const service = entries.find(([, e]) => (e.flags & SluiceCtFlags.SERVICE) !== 0);
  const conn = entries.find(([, e]) => (e.flags & SluiceCtFlags.SERVICE) === 0);
  assert.deepEqual(service?.[0], { endpointId: EP, localAddr: parseIpv4(POD), remoteAddr: parseIpv4(VIP), localPort: 40000, remotePort: 80,
    protocol: IPPROTO.TCP });
  assert.deepEqual([service?.[1].natAddr, service?.[1].natPort, service?.[1].backendId], [parseIpv4(backend.ip), 8080, backend.id]);
  assert.deepEqual([conn?.[0].remoteAddr, conn?.[0].remotePort], [parseIpv4(backend.ip), 8080]);
  assert.deepEqual([conn?.[1].flags, conn?.[1].natAddr, conn?.[1].natPort, conn?.[1].backendId],
    [SluiceCtFlags.DNAT, parseIpv4(VIP), 80, backend.id]);
});

test('the reply comes back from the frontend; the connection stays on its backend', async () => {
  writeService(h.dp.maps.lb, WEB);
  const backend = await sendOut(tcpOut(40001, SYN));
  const [ip, port] = backend.split(':');
  const reply = await h.run('to_container', tcpIn(ip!, Number(port), 40001, SYN | ACK));
  assert.equal(reply.retval, TC_ACT_OK);
  const d = decodeFrame(reply.data);
  assert.deepEqual([d.src, d.sport, d.dst, d.dport, d.ipChecksumOk, d.l4ChecksumOk], [VIP, 80, POD, 40001, true, true]);
  for (let i = 0; i < 5; i++) assert.equal(await sendOut(tcpOut(40001, ACK | PSH, VIP, 80, 1001 + i)), backend);
});

test('traced: the event shows the backend and the SERVICE flag; the reply\'s event the translated one', async () => {
  writeService(h.dp.maps.lb, WEB);
  h.dp.maps.config.update(0, { flags: 1 });
  const r = await h.run('from_container', tcpOut(40002, SYN));
  const out = decodeFrame(r.data);
  assert.equal(r.events.length, 1);
  const ev = r.events[0]!;
  assert.deepEqual([formatIpv4(ev.daddr), ev.dport, ev.flags & (SluiceEventFlags.SERVICE | SluiceEventFlags.CT_NEW)],
    [out.dst, 8080, SluiceEventFlags.SERVICE | SluiceEventFlags.CT_NEW]);
  const reply = await h.run('to_container', tcpIn(out.dst, 8080, 40002, SYN | ACK));
  assert.equal(reply.events.length, 1);
  assert.deepEqual([formatIpv4(reply.events[0]?.saddr ?? 0), reply.events[0]?.sport], [out.dst, 8080], 'the event shows the packet as conntrack judged it');
  assert.equal((reply.events[0]?.flags ?? 0) & (SluiceEventFlags.SERVICE | SluiceEventFlags.CT_REPLY), SluiceEventFlags.SERVICE | SluiceEventFlags.CT_REPLY);
});

test('policy judges the backend: an egress rule for the backend port allows, one for the frontend port does not', async () => {
  writeService(h.dp.maps.lb, { ...WEB, backends: [B1] });
  h.dp.maps.ipcache.update({ prefixlen: 32, addr: parseIpv4(B1.ip) }, { identity: 300, flags: 0 });
  h.dp.maps.endpoints.update(EP, isolated('egress'));
  h.dp.maps.policy.updateBatch(allowPorts(EP, 300, EGRESS, IPPROTO.TCP, 7, 80));
  const denied = await h.run('from_container', tcpOut(40003, SYN));
  assert.equal(denied.retval, TC_ACT_SHOT);
  assert.equal(denied.events[0]?.dropReason, SluiceDropReason.POLICY_DENIED);
  assert.deepEqual([formatIpv4(denied.events[0]?.daddr ?? 0), denied.events[0]?.dport, denied.events[0]?.dstIdentity], [B1.ip, 8080, 300]);
  h.dp.maps.policy.updateBatch(allowPorts(EP, 300, EGRESS, IPPROTO.TCP, 8, 8080));
  assert.equal(await sendOut(tcpOut(40004, SYN)), `${B1.ip}:8080`);
});

test('the protocol is part of the frontend: TCP to a UDP-only port is not translated', async () => {
  writeService(h.dp.maps.lb, DNS);
  const r = await h.run('from_container', ipv4Frame({ src: POD, dst: VIP }, { proto: 'tcp', sport: 40005, dport: 53 }, eth));
  assert.equal(r.retval, TC_ACT_OK);
  assert.equal(decodeFrame(r.data).dst, VIP);
  const u = decodeFrame((await h.run('from_container', udpOut(40005))).data);
  assert.ok(['10.0.2.7', '10.0.2.8'].includes(u.dst));
  assert.deepEqual([u.dport, u.ipChecksumOk, u.l4ChecksumOk], [5353, true, true]);
});

test('random: new connections spread over every backend', async () => {
  writeService(h.dp.maps.lb, WEB);
  const seen = new Map<string, number>();
  for (let port = 41000; port < 41060; port++) {
    const b = await sendOut(tcpOut(port, SYN));
    seen.set(b, (seen.get(b) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), ['10.0.2.7:8080', '10.0.2.8:8080', '10.0.2.9:8080']);
});

test('Maglev: each flow gets the backend of slot lbFlowHash mod M of the service\'s table', async () => {
  writeService(h.dp.maps.lb, { ...WEB, maglev: true, maglevSize: 251 });
  const ids = maglevIds(WEB.backends, 251);
  for (let port = 42000; port < 42040; port++) {
    const slot = lbFlowHash({ clientAddr: parseIpv4(POD), clientPort: port, frontendPort: 80, protocol: IPPROTO.TCP }) % 251;
    const want = WEB.backends.find((b) => b.id === ids[slot]);
    assert.equal(await sendOut(tcpOut(port, SYN)), `${want?.ip}:8080`, `port ${port}`);
  }
});

test('a pinned TCP connection keeps its backend when the backend set changes, even when it is removed', async () => {
  writeService(h.dp.maps.lb, WEB);
  const backend = await sendOut(tcpOut(43000, SYN));
  const pinned = WEB.backends.find((b) => `${b.ip}:${b.port}` === backend)!;
  const others = WEB.backends.filter((b) => b !== pinned);
  writeService(h.dp.maps.lb, { ...WEB, backends: others });
  h.dp.maps.lb.backends.delete(pinned.id);
  assert.equal(await sendOut(tcpOut(43000, ACK)), backend, 'the established connection stays');
  for (let port = 43001; port < 43011; port++) assert.notEqual(await sendOut(tcpOut(port, SYN)), backend, 'new connections avoid it');
  assert.notEqual(await sendOut(tcpOut(43000, SYN)), backend, 'a new SYN on the old tuple picks a live backend');
});

test('a UDP flow whose backend left the service moves to a live one; while it stays, the flow does too', async () => {
  writeService(h.dp.maps.lb, DNS);
  const first = decodeFrame((await h.run('from_container', udpOut(44000))).data).dst;
  for (let i = 0; i < 3; i++) assert.equal(decodeFrame((await h.run('from_container', udpOut(44000))).data).dst, first);
  const [gone, live] = first === '10.0.2.7' ? [DNS.backends[0]!, DNS.backends[1]!] : [DNS.backends[1]!, DNS.backends[0]!];
  writeService(h.dp.maps.lb, { ...DNS, backends: [live] });
  h.dp.maps.lb.backends.update(gone.id, { addr: parseIpv4(gone.ip), port: gone.port, flags: SluiceLbBackendFlags.NOT_SELECTABLE, serviceId: DNS.serviceId });
  assert.equal(decodeFrame((await h.run('from_container', udpOut(44000))).data).dst, gone.ip, 'still serving: the flow stays');
  h.dp.maps.lb.backends.delete(gone.id);
  const moved = await h.run('from_container', udpOut(44000));
  assert.equal(decodeFrame(moved.data).dst, live.ip);
  assert.equal(moved.counters.LB_UDP_MOVED, 1n);
});

test('ClientIP affinity: every new connection of the client goes to one backend and restarts its timeout', async () => {
  writeService(h.dp.maps.lb, { ...WEB, affinitySeconds: 10 });
  const first = await sendOut(tcpOut(45000, SYN));
  const key = { serviceId: WEB.serviceId, clientAddr: parseIpv4(POD) };
  const t0 = h.dp.maps.lb.affinity.lookup(key)?.lastUsedNs ?? 0n;
  for (let port = 45001; port < 45030; port++) assert.equal(await sendOut(tcpOut(port, SYN)), first);
  assert.ok((h.dp.maps.lb.affinity.lookup(key)?.lastUsedNs ?? 0n) > t0, 'refreshed by the new connections');
  // Expired (last used 11 s ago): the table decides again, over all backends.
  const seen = new Set<string>();
  for (let port = 45100; port < 45140; port++) {
    const entry = h.dp.maps.lb.affinity.lookup(key)!;
    h.dp.maps.lb.affinity.update(key, { ...entry, lastUsedNs: monotonicNowNs() - 11_000_000_000n });
    seen.add(await sendOut(tcpOut(port, SYN)));
  }
  assert.equal(seen.size, 3, `after the timeout: ${[...seen].join(' ')}`);
});

test('ClientIP affinity: a sticky backend that leaves (or only serves) is replaced, and the new one sticks', async () => {
  writeService(h.dp.maps.lb, { ...WEB, affinitySeconds: 60 });
  const first = await sendOut(tcpOut(46000, SYN));
  const gone = WEB.backends.find((b) => `${b.ip}:${b.port}` === first)!;
  writeService(h.dp.maps.lb, { ...WEB, affinitySeconds: 60, backends: WEB.backends.map((b) => b === gone ? { ...b, flags: SluiceLbBackendFlags.NOT_SELECTABLE } : b),
    table: WEB.backends.filter((b) => b !== gone).map((b) => b.id) });
  const next = await sendOut(tcpOut(46001, SYN));
  assert.notEqual(next, first);
  for (let port = 46002; port < 46012; port++) assert.equal(await sendOut(tcpOut(port, SYN)), next);
});

test('no usable backend, reject: a TCP SYN is answered by a reset from the frontend, sent back into the pod', async () => {
  writeService(h.dp.maps.lb, { ...WEB, backends: [], table: [] });
  const syn = tcpOut(47000, SYN, VIP, 80, 7777);
  const r = await h.run('from_container', syn);
  assert.equal(r.retval, TC_ACT_REDIRECT);
  const d = decodeFrame(r.data);
  assert.deepEqual(
    [d.srcMac, d.dstMac, d.src, d.sport, d.dst, d.dport, d.tcpFlags, d.seq, d.ack, d.totalLength, d.ipChecksumOk, d.l4ChecksumOk],
    [HOST_MAC, POD_MAC, VIP, 80, POD, 47000, RST | ACK, 0, 7778, 40, true, true]);
  assert.equal(r.data.length, 54);
  assert.deepEqual(r.metrics, oneCounter(EGRESS, SluiceDropReason.SERVICE_REJECTED, syn.length));
  assert.equal(r.events[0]?.dropReason, SluiceDropReason.SERVICE_REJECTED);
  // A segment with an ACK gets seq = its ack number; a reset is not answered.
  const ackd = decodeFrame((await h.run('from_container', ipv4Frame({ src: POD, dst: VIP }, { proto: 'tcp', sport: 47001, dport: 80, flags: ACK, ack: 4242 }, eth))).data);
  assert.deepEqual([ackd.tcpFlags, ackd.seq], [RST, 4242]);
  assert.equal((await h.run('from_container', tcpOut(47002, RST))).retval, TC_ACT_SHOT);
});

test('no usable backend, reject: UDP gets an ICMP port unreachable quoting the datagram', async () => {
  writeService(h.dp.maps.lb, { ...DNS, backends: [], table: [] });
  const q = udpOut(48000);
  const r = await h.run('from_container', q);
  assert.equal(r.retval, TC_ACT_REDIRECT);
  const d = decodeFrame(r.data);
  assert.deepEqual([d.src, d.dst, d.protocol, d.icmpType, d.icmpCode, d.totalLength, d.ipChecksumOk, d.l4ChecksumOk, d.dstMac],
    [VIP, POD, IPPROTO.ICMP, 3, 3, 56, true, true, POD_MAC]);
  assert.deepEqual(d.quote, { src: POD, dst: VIP, protocol: IPPROTO.UDP, sport: 48000, dport: 53, ipChecksumOk: true });
  // A tiny datagram (shorter than the reply) grows into it.
  const tiny = ipv4Frame({ src: POD, dst: VIP }, { proto: 'udp', sport: 48001, dport: 53 }, eth);
  const t = await h.run('from_container', tiny);
  assert.deepEqual([t.retval, t.data.length, decodeFrame(t.data).l4ChecksumOk], [TC_ACT_REDIRECT, 70, true]);
});

test('no usable backend under Local policy: dropped with SERVICE_NO_BACKEND; no table at all rejects', async () => {
  writeService(h.dp.maps.lb, { ...WEB, backends: [], table: [], emptyDrop: true });
  const r = await h.run('from_container', tcpOut(49000, SYN));
  assert.equal(r.retval, TC_ACT_SHOT);
  assert.equal(r.events[0]?.dropReason, SluiceDropReason.SERVICE_NO_BACKEND);
  writeService(h.dp.maps.lb, { ...WEB, backends: [] , table: [] });
  h.dp.maps.lb.tables.delete({ serviceId: WEB.serviceId, backendSet: 0 });
  assert.equal((await h.run('from_container', tcpOut(49001, SYN))).retval, TC_ACT_REDIRECT);
});

test('a table naming a backend the service does not have drops with SERVICE_BACKEND_UNKNOWN', async () => {
  writeService(h.dp.maps.lb, { ...WEB, table: [99] });
  const r = await h.run('from_container', tcpOut(50000, SYN));
  assert.equal(r.events[0]?.dropReason, SluiceDropReason.SERVICE_BACKEND_UNKNOWN);
});

test('hairpin: the pod reaches itself through its Service via 169.254.42.1, and its reply returns from the frontend', async () => {
  const self: BackendSpec = { id: 7, ip: POD, port: 8080 };
  writeService(h.dp.maps.lb, { ...WEB, backends: [self] });
  const fwd = await h.run('from_container', tcpOut(51000, SYN));
  assert.equal(fwd.retval, TC_ACT_REDIRECT);
  const f = decodeFrame(fwd.data);
  assert.deepEqual([f.src, f.sport, f.dst, f.dport, f.dstMac, f.ipChecksumOk, f.l4ChecksumOk], [HAIRPIN, 51000, POD, 8080, POD_MAC, true, true]);
  const conn = [...h.dp.maps.conntrack.entries()].find(([, e]) => (e.flags & SluiceCtFlags.DNAT) !== 0);
  assert.equal(conn?.[1].flags, SluiceCtFlags.DNAT | SluiceCtFlags.HAIRPIN);
  // The pod (as the server) answers 169.254.42.1 through its veth.
  const reply = await h.run('from_container', ipv4Frame({ src: POD, dst: HAIRPIN }, { proto: 'tcp', sport: 8080, dport: 51000, flags: SYN | ACK }, eth));
  assert.equal(reply.retval, TC_ACT_REDIRECT);
  const r = decodeFrame(reply.data);
  assert.deepEqual([r.src, r.sport, r.dst, r.dport, r.ipChecksumOk, r.l4ChecksumOk], [VIP, 80, POD, 51000, true, true]);
  assert.deepEqual(reply.metrics, oneCounter(INGRESS, SluiceDropReason.NONE, reply.data.length));
  // Nothing else may use the hairpin address.
  const stray = await h.run('from_container', ipv4Frame({ src: POD, dst: HAIRPIN }, { proto: 'tcp', sport: 8080, dport: 51999, flags: ACK }, eth));
  assert.equal(stray.retval, TC_ACT_SHOT);
  assert.equal(stray.events[0]?.dropReason, SluiceDropReason.NAT_UNKNOWN);
});

test('fragments of a datagram to a frontend all go to its backend', async () => {
  writeService(h.dp.maps.lb, DNS);
  const frags = ipv4Fragments({ src: POD, dst: VIP, id: 0x77 }, { proto: 'udp', sport: 52000, dport: 53, payload: Buffer.alloc(100, 7) }, 48, eth);
  const dsts = new Set<string>();
  for (const fr of frags) {
    const r = await h.run('from_container', fr);
    assert.equal(r.retval, TC_ACT_OK);
    const d = decodeFrame(r.data);
    assert.ok(d.ipChecksumOk);
    dsts.add(d.dst);
  }
  assert.equal(dsts.size, 1);
  assert.notEqual([...dsts][0], VIP);
});

test('an ICMP error about a connection to a Service is turned into one about the frontend', async () => {
  writeService(h.dp.maps.lb, DNS);
  const query = udpOut(53000);
  const sent = decodeFrame((await h.run('from_container', query)).data);
  const unreachable = (src: string): Buffer => {
    const quoted = ipv4Frame({ src: POD, dst: sent.dst }, { proto: 'udp', sport: 53000, dport: 5353, payload: Buffer.from('query') });
    return ipv4Frame({ src, dst: POD }, { proto: 'icmp', type: 3, code: 3, payload: icmpQuote(quoted) }, { src: HOST_MAC, dst: POD_MAC });
  };
  const fromBackend = await h.run('to_container', unreachable(sent.dst));
  assert.equal(fromBackend.retval, TC_ACT_OK);
  const d = decodeFrame(fromBackend.data);
  assert.deepEqual([d.src, d.dst, d.icmpType, d.icmpCode, d.ipChecksumOk, d.l4ChecksumOk], [VIP, POD, 3, 3, true, true]);
  assert.deepEqual(d.quote, { src: POD, dst: VIP, protocol: IPPROTO.UDP, sport: 53000, dport: 53, ipChecksumOk: true });
  // From a router on the way: the error keeps its source, the quote is translated.
  const fromRouter = decodeFrame((await h.run('to_container', unreachable('10.0.0.1'))).data);
  assert.deepEqual([fromRouter.src, fromRouter.quote?.dst, fromRouter.quote?.dport, fromRouter.l4ChecksumOk, fromRouter.ipChecksumOk], ['10.0.0.1', VIP, 53, true, true]);
});

test('an established packet to a VIP costs the same with 10 and with 10,000 frontends (hash lookups only)', async (t) => {
  writeService(h.dp.maps.lb, WEB);
  await sendOut(tcpOut(54000, SYN));
  const ack = tcpOut(54000, ACK | PSH, VIP, 80, 1001);
  const cost = (): number => {
    // The best of several rounds: the machine is shared, interference only adds.
    let best = Infinity;
    for (let round = 0; round < 7; round++) {
      const r = h.testRun(h.dp.fromContainer, { data: ack, repeat: 20000 });
      assert.equal(r.retval, TC_ACT_OK);
      best = Math.min(best, r.durationNs);
    }
    return best;
  };
  const frontends = (n: number, from: number) => Array.from({ length: n }, (_, i) => [
    { addr: parseIpv4('10.100.0.0') + from + i, port: 80, protocol: IPPROTO.TCP, scope: 0 },
    { serviceId: 1000 + from + i, affinityTimeoutS: 0, backendSet: 0, algorithm: 1, flags: 0 },
  ] as const);
  h.dp.maps.lb.services.updateBatch(frontends(9, 0));
  const few = cost();
  h.dp.maps.lb.services.updateBatch(frontends(9990, 9));
  const many = cost();
  t.diagnostic(`established packet to a VIP: ${few} ns with 10 frontends, ${many} ns with 10,000`);
  assert.ok(many < few * 1.3, `${many} ns at 10,000 frontends vs ${few} ns at 10`);
});

test('a connection\'s entry re-created without its translation (after an eviction) gets it back from the next request', async () => {
  writeService(h.dp.maps.lb, { ...WEB, backends: [B1] });
  // As a reply re-creates it after the LRU evicted the connection: opened INGRESS, no translation.
  h.dp.maps.conntrack.update(
    { endpointId: EP, localAddr: parseIpv4(POD), remoteAddr: parseIpv4(B1.ip), localPort: 40100, remotePort: 8080, protocol: IPPROTO.TCP },
    { expiresNs: monotonicNowNs() + 60_000_000_000n, policyRevision: 0, ruleId: 0, origDirection: INGRESS, tcpState: 2, flags: 0, tcpFlagsSeen: 0,
      natAddr: 0, natPort: 0, backendId: 0 });
  assert.equal(await sendOut(tcpOut(40100, ACK)), `${B1.ip}:8080`);
  const reply = decodeFrame((await h.run('to_container', tcpIn(B1.ip, 8080, 40100, ACK))).data);
  assert.deepEqual([reply.src, reply.sport, reply.l4ChecksumOk], [VIP, 80, true]);
});

test('a Service\'s deletion leaves its established TCP connections on their backends; new ones are not translated', async () => {
  writeService(h.dp.maps.lb, WEB);
  const backend = await sendOut(tcpOut(55000, SYN));
  clearLb(h.dp.maps.lb);
  assert.equal(await sendOut(tcpOut(55000, ACK)), backend, 'as under kube-proxy\'s conntrack');
  assert.equal(await sendOut(tcpOut(55001, SYN)), `${VIP}:80`);
});

test('a UDP flow whose backend and frontend are both gone goes untranslated, and its pin is deleted', async () => {
  writeService(h.dp.maps.lb, DNS);
  await h.run('from_container', udpOut(56000));
  clearLb(h.dp.maps.lb);
  const pins = (): number => [...h.dp.maps.conntrack.entries()].filter(([, e]) => (e.flags & SluiceCtFlags.SERVICE) !== 0).length;
  assert.equal(pins(), 1);
  assert.equal(decodeFrame((await h.run('from_container', udpOut(56000))).data).dst, VIP);
  assert.equal(pins(), 0);
});

test('a packet from a frontend entering the pod is not a reply of its pin: policy decides it, and the pin stays', async () => {
  writeService(h.dp.maps.lb, WEB);
  const backend = await sendOut(tcpOut(57000, SYN));
  h.dp.maps.endpoints.update(EP, isolated('ingress'));
  const spoof = await h.run('to_container', tcpIn(VIP, 80, 57000, SYN | ACK));
  assert.equal(spoof.retval, TC_ACT_SHOT);
  assert.equal(spoof.events[0]?.dropReason, SluiceDropReason.POLICY_DENIED);
  h.dp.maps.endpoints.update(EP, { flags: 0, policyRevision: 0, ingressPolicyClasses: 0, egressPolicyClasses: 0 });
  assert.equal((await h.run('to_container', tcpIn(VIP, 80, 57000, ACK))).retval, TC_ACT_OK, 'not isolated: passes, untracked');
  assert.equal(await sendOut(tcpOut(57000, ACK)), backend, 'the pin is intact');
});

test('a UDP flow that was sending to an address before it became a frontend is load-balanced from its next datagram on', async () => {
  // Before the Service: untranslated, and tracked like any flow the pod opens (no answer comes).
  for (let i = 0; i < 2; i++) assert.equal(decodeFrame((await h.run('from_container', udpOut(58000))).data).dst, VIP);
  writeService(h.dp.maps.lb, DNS);
  const r = await h.run('from_container', udpOut(58000));
  const first = decodeFrame(r.data).dst;
  assert.ok(DNS.backends.some((b) => b.ip === first), `sent to a backend: ${first}`);
  assert.equal(r.counters.LB_SELECTED, 1n);
  for (let i = 0; i < 3; i++) assert.equal(decodeFrame((await h.run('from_container', udpOut(58000))).data).dst, first, 'pinned from then on');
  const reply = decodeFrame((await h.run('to_container', ipv4Frame({ src: first, dst: POD }, { proto: 'udp', sport: 5353, dport: 58000, payload: Buffer.from('answer') }, { src: HOST_MAC, dst: POD_MAC }))).data);
  assert.deepEqual([reply.src, reply.sport], [VIP, 53], 'answered from the frontend');
});

test('an answered UDP flow to an address that becomes a frontend stays with the peer that answers it', async () => {
  assert.equal(decodeFrame((await h.run('from_container', udpOut(58100))).data).dst, VIP);
  const answer = await h.run('to_container', ipv4Frame({ src: VIP, dst: POD }, { proto: 'udp', sport: 53, dport: 58100, payload: Buffer.from('answer') }, { src: HOST_MAC, dst: POD_MAC }));
  assert.equal(answer.retval, TC_ACT_OK);
  writeService(h.dp.maps.lb, DNS);
  const r = await h.run('from_container', udpOut(58100));
  assert.equal(decodeFrame(r.data).dst, VIP);
  assert.equal(r.counters.LB_SELECTED, undefined, 'no backend chosen');
});
