/**
 * Conntrack in lxc.o (BPF_PROG_TEST_RUN), as sequences of packets: replies of
 * an allowed connection pass where policy would deny them, a new connection
 * in the reverse direction does not, established flows skip policy, a policy
 * revision change re-checks the original direction (and cuts a connection no
 * longer allowed), TCP's SYN/FIN/RST lifecycle and lifetimes, UDP and ICMP
 * echo timeouts, invalid TCP flags, two endpoints of one node keeping their
 * own entries, ICMP errors related to a connection, and what an LRU eviction
 * does. Every step asserts the verdict,
 * the event (reason, conntrack flags, rule) and, where it matters, the entry.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceCtFlags, SluiceCtTcpState, SluiceDirection, SluiceDropReason, SluiceEventFlags,
  type CtKey, type EndpointConfig,
} from '../../src/datapath/generated/abi.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { dumpConntrack, monotonicNowNs, type ConntrackRow } from '../../src/datapath/maps/conntrack.js';
import { writeCtConfig } from '../../src/datapath/maps/ct-config.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { LxcHarness, TC_ACT_OK, TC_ACT_SHOT, type LxcProgram, type RunResult } from '../helpers/lxc-harness.js';
import { icmpQuote, IPPROTO, ipv4Frame, TCP_FLAGS, type L4Spec } from '../helpers/packet.js';
import { allowAll, allowPorts, isolated } from '../helpers/policy.js';

const EP = 5;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const ID_POD = 1000;
const ID_PEER = 1001;
const { INGRESS, EGRESS } = SluiceDirection;
const { SYN, ACK, FIN, RST, PSH } = TCP_FLAGS;
const { CT_NEW: NEW, CT_ESTABLISHED: EST, CT_REPLY: REPLY, CT_RECHECKED: RECHECKED, CT_RELATED: RELATED } = SluiceEventFlags;
const { POLICY_DENIED: DENIED, CT_INVALID } = SluiceDropReason;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

/** The pod serves TCP 80 and UDP 53 to PEER only, and may send nothing on its own (egress isolated, no rule). */
const SERVER_RULE = 40;
function serverPolicy(revision = 0): void {
  h.reset();
  setTraceAllowed(h.dp.maps.config, true);
  h.dp.maps.ipcache.updateBatch([
    [ipcacheKey(POD), { identity: ID_POD, flags: 0 }],
    [ipcacheKey(PEER), { identity: ID_PEER, flags: 0 }],
  ]);
  h.dp.maps.endpoints.update(EP, isolated('both', revision));
  h.dp.maps.policy.updateBatch([
    ...allowPorts(EP, ID_PEER, INGRESS, IPPROTO.TCP, SERVER_RULE, 80),
    ...allowPorts(EP, ID_PEER, INGRESS, IPPROTO.UDP, SERVER_RULE, 53),
    allowAll(EP, ID_PEER, INGRESS, SERVER_RULE + 1), // ICMP from the peer (a rule without ports)
  ]);
}

/** PEER:sport <-> POD:dport; `in` enters the pod, `out` leaves it. */
const tcpIn = (flags: number, sport = 40000, dport = 80): Buffer =>
  ipv4Frame({ src: PEER, dst: POD }, { proto: 'tcp', sport, dport, flags });
const tcpOut = (flags: number, sport = 80, dport = 40000): Buffer =>
  ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport, dport, flags });
const udp = (dir: 'in' | 'out', sport: number, dport: number): Buffer =>
  ipv4Frame(dir === 'in' ? { src: PEER, dst: POD } : { src: POD, dst: PEER }, { proto: 'udp', sport, dport, payload: Buffer.from('x') });
const icmp = (dir: 'in' | 'out', type: number, id: number): Buffer => {
  const l4: L4Spec = { proto: 'icmp', type, code: 0, id, seq: 1 };
  return ipv4Frame(dir === 'in' ? { src: PEER, dst: POD } : { src: POD, dst: PEER }, l4);
};

/** What one packet did: forwarded with conntrack flags and rule, or dropped with a reason. */
interface Outcome {
  readonly drop?: number;
  readonly flags: number;
  readonly rule: number;
}

async function send(prog: LxcProgram, frame: Buffer, as?: EndpointConfig): Promise<Outcome & { r: RunResult }> {
  const r = await h.run(prog, frame, as ? { as } : {});
  const [ev] = r.events;
  assert.equal(r.events.length, 1, 'one event per packet (tracing on)');
  assert.ok(ev);
  assert.equal(r.retval, ev.dropReason === SluiceDropReason.NONE ? TC_ACT_OK : TC_ACT_SHOT);
  const ctFlags = ev.flags & (NEW | EST | REPLY | RECHECKED | RELATED);
  return { ...(ev.dropReason === SluiceDropReason.NONE ? {} : { drop: ev.dropReason }), flags: ctFlags, rule: ev.ruleId, r };
}

/** Sends each step and compares the outcomes as one list, so a failure shows the whole sequence. */
async function sequence(steps: ReadonlyArray<readonly [LxcProgram, Buffer, Outcome, string]>): Promise<void> {
  const got: (Outcome & { step: string })[] = [];
  for (const [prog, frame, , step] of steps) {
    const { r: _r, ...outcome } = await send(prog, frame);
    got.push({ step, ...outcome });
  }
  assert.deepEqual(got, steps.map(([, , want, step]) => ({ step, ...want })));
}

const fwd = (flags: number, rule = SERVER_RULE): Outcome => ({ flags, rule });
const drop = (reason: number, flags: number = NEW, rule = 0): Outcome => ({ drop: reason, flags, rule });

/** The pod's entry for PEER:40000 <-> POD:80 (or another tuple). */
function entry(protocol: number = IPPROTO.TCP, local = 80, remote = 40000): ConntrackRow | undefined {
  const proto = protocol === IPPROTO.TCP ? 'TCP' : protocol === IPPROTO.UDP ? 'UDP' : 'ICMP';
  const remoteSide = protocol === IPPROTO.ICMP ? `${PEER} id ${remote}` : `${PEER}:${remote}`;
  const localSide = protocol === IPPROTO.ICMP ? POD : `${POD}:${local}`;
  return dumpConntrack(h.dp.maps.conntrack).find((e) => e.protocol === proto && e.local === localSide && e.remote === remoteSide);
}

test('control: without a connection, the pod\'s replies are denied (egress isolated, no rule)', async () => {
  serverPolicy();
  await sequence([
    ['from_container', tcpOut(SYN | ACK), drop(DENIED), 'SYN-ACK'],
    ['from_container', tcpOut(ACK), drop(DENIED), 'ACK'],
    ['from_container', udp('out', 53, 5353), drop(DENIED), 'UDP answer'],
    ['from_container', icmp('out', 0, 7), drop(DENIED), 'echo reply'],
  ]);
});

test('TCP: the replies of an allowed connection pass where policy would deny them; the flow then skips policy', async () => {
  serverPolicy();
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW), 'SYN in: policy allows port 80'],
    ['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK out: a reply'],
    ['to_container', tcpIn(ACK), fwd(EST), 'ACK in'],
    ['to_container', tcpIn(ACK | PSH), fwd(EST), 'data in'],
    ['from_container', tcpOut(ACK | PSH), fwd(REPLY), 'data out'],
  ]);
  const e = entry();
  assert.deepEqual(e && [e.origDirection, e.tcpState, e.flags, e.ruleId, e.policyRevision],
    ['INGRESS', 'ESTABLISHED', ['REPLY_SEEN'], SERVER_RULE, 0]);
  // Established: the policy entry is no longer consulted (its removal without a revision bump changes nothing).
  h.dp.maps.policy.deleteBatch([...h.dp.maps.policy.entries()].map(([k]) => k));
  await sequence([
    ['to_container', tcpIn(ACK | PSH), fwd(EST), 'data in, no policy entry left'],
    ['from_container', tcpOut(ACK | PSH), fwd(REPLY), 'data out'],
  ]);
});

test('a new connection in the reverse direction is not a reply', async () => {
  serverPolicy();
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW), 'PEER connects to POD:80'],
    ['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK'],
    ['from_container', tcpOut(SYN, 40001, 80), drop(DENIED), 'POD connects to PEER:80 (its own ephemeral port)'],
    ['from_container', tcpOut(SYN, 80, 40000), drop(DENIED), 'a pure SYN reusing the tuple backwards opens, not answers'],
    ['from_container', udp('out', 5353, 53), drop(DENIED), 'UDP from POD to PEER:53'],
    ['from_container', icmp('out', 8, 7), drop(DENIED), 'POD pings PEER'],
  ]);
});

test('TCP lifecycle: SYN_SENT, ESTABLISHED, FIN_WAIT (half-close keeps data flowing), CLOSED, each with its lifetime', async () => {
  serverPolicy();
  writeCtConfig(h.dp.maps.ctConfig, { tcpSynMs: 11_000, tcpEstablishedMs: 22_000, tcpFinMs: 33_000, tcpClosedMs: 44_000 });
  const state = (): [string | undefined, readonly string[] | undefined, number] => {
    const e = entry();
    return [e?.tcpState, e?.flags, Math.ceil((e?.expiresInMs ?? 0) / 11_000) * 11]; // lifetime in s, rounded up
  };
  await sequence([['to_container', tcpIn(SYN), fwd(NEW), 'SYN']]);
  assert.deepEqual(state(), ['SYN_SENT', [], 11]);
  await sequence([['to_container', tcpIn(SYN), fwd(NEW), 'a retransmitted SYN opens again (policy again)']]);
  await sequence([['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK'], ['to_container', tcpIn(ACK), fwd(EST), 'ACK']]);
  assert.deepEqual(state(), ['ESTABLISHED', ['REPLY_SEEN'], 22]);
  await sequence([['to_container', tcpIn(FIN | ACK), fwd(EST), 'client FIN']]);
  assert.deepEqual(state(), ['FIN_WAIT', ['REPLY_SEEN', 'FIN_ORIG'], 33]);
  await sequence([['from_container', tcpOut(ACK | PSH), fwd(REPLY), 'server still sends (half-closed)']]);
  await sequence([['from_container', tcpOut(FIN | ACK), fwd(REPLY), 'server FIN']]);
  assert.deepEqual(state(), ['CLOSED', ['REPLY_SEEN', 'FIN_ORIG', 'FIN_REPLY'], 44]);
  await sequence([['to_container', tcpIn(ACK), fwd(EST), 'last ACK passes while CLOSED lives']]);
});

test('TCP: a closed connection expires; its late packets then face policy', async () => {
  serverPolicy();
  writeCtConfig(h.dp.maps.ctConfig, { tcpClosedMs: 30 });
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW), 'SYN'],
    ['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK'],
    ['from_container', tcpOut(RST), fwd(REPLY), 'server RST'],
  ]);
  assert.equal(entry()?.tcpState, 'CLOSED');
  await sequence([['from_container', tcpOut(ACK), fwd(REPLY), 'a straggler right after the RST']]);
  await new Promise((resolve) => setTimeout(resolve, 60));
  await sequence([
    ['from_container', tcpOut(ACK), drop(DENIED), 'after CLOSED expired: new, egress denied'],
    ['to_container', tcpIn(ACK), fwd(NEW), 'the client\'s ACK: picked up mid-stream (policy allows port 80)'],
  ]);
  assert.equal(entry()?.tcpState, 'ESTABLISHED');
});

test('TCP: a new SYN on a closed tuple opens a new connection through policy', async () => {
  serverPolicy();
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW), 'SYN'],
    ['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK'],
    ['to_container', tcpIn(RST | ACK), fwd(EST), 'client RST'],
    ['to_container', tcpIn(SYN), fwd(NEW), 'the client reuses the tuple'],
  ]);
  assert.deepEqual(entry() && [entry()?.tcpState, entry()?.flags], ['SYN_SENT', []]);
  // Reused, but now policy denies port 80 from the peer: the SYN is dropped although the tuple was known.
  h.dp.maps.policy.deleteBatch([...h.dp.maps.policy.entries()].map(([k]) => k));
  await sequence([['to_container', tcpIn(SYN), drop(DENIED), 'the same SYN once the rule is gone']]);
});

test('TCP: a simultaneous open (a SYN answering SYN_SENT) is a reply', async () => {
  serverPolicy();
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW), 'SYN in'],
    ['from_container', tcpOut(SYN), fwd(REPLY), 'SYN out on the same tuple'],
  ]);
  assert.equal(entry()?.tcpState, 'ESTABLISHED');
});

test('TCP flags no stack sends are CT_INVALID, isolated or not; valid ones with PSH/ECE/CWR/URG pass', async () => {
  serverPolicy();
  h.dp.maps.endpoints.update(EP, isolated('egress')); // ingress not isolated: policy is not what drops these
  const invalid: [string, number][] = [
    ['SYN+FIN', SYN | FIN], ['SYN+RST', SYN | RST], ['no flags (null scan)', 0], ['FIN alone (no ACK)', FIN],
    ['FIN+PSH+URG (xmas)', FIN | PSH | 0x20], ['SYN+FIN+ACK', SYN | FIN | ACK], ['RST+FIN', RST | FIN | ACK],
  ];
  for (const [name, flags] of invalid) {
    const { r: _r, ...o } = await send('to_container', tcpIn(flags, 41000 + flags));
    assert.deepEqual(o, { drop: CT_INVALID, flags: 0, rule: 0 }, name);
  }
  const valid: [string, number][] = [
    ['SYN+ECE+CWR', SYN | 0x40 | 0x80], ['SYN+ACK+PSH', SYN | ACK | PSH], ['ACK+URG', ACK | 0x20], ['RST', RST],
    ['FIN+ACK+PSH', FIN | ACK | PSH],
  ];
  for (const [name, flags] of valid) {
    const { r: _r, ...o } = await send('to_container', tcpIn(flags, 42000 + flags));
    assert.deepEqual(o, { flags: NEW, rule: 0 }, name);
  }
});

test('policy revision: an allowed connection is re-checked once, from either direction, on its original port', async () => {
  serverPolicy(1);
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW), 'SYN'],
    ['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK'],
  ]);
  h.dp.maps.endpoints.update(EP, isolated('both', 2)); // some policy of the pod changed (not this rule)
  const { r, ...first } = await send('from_container', tcpOut(ACK | PSH));
  // The reply's own port (40000) has no rule: the re-check asked about the connection (PEER -> POD:80).
  assert.deepEqual(first, fwd(REPLY | RECHECKED));
  assert.deepEqual(r.counters, { CT_RECHECKED: 1n });
  assert.equal(entry()?.policyRevision, 2);
  const { r: r2, ...second } = await send('to_container', tcpIn(ACK));
  assert.deepEqual(second, fwd(EST));
  assert.deepEqual(r2.counters, {});
});

test('policy revision: a connection no longer allowed is cut at its next packet, in either direction', async () => {
  for (const [prog, frame] of [['to_container', tcpIn(ACK | PSH)], ['from_container', tcpOut(ACK | PSH)]] as const) {
    serverPolicy(1);
    await sequence([
      ['to_container', tcpIn(SYN), fwd(NEW), 'SYN'],
      ['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK'],
    ]);
    // kubectl apply: port 80 is no longer allowed (the rule now says 81), revision bumped.
    h.dp.maps.policy.deleteBatch([...h.dp.maps.policy.entries()].map(([k]) => k));
    h.dp.maps.policy.updateBatch(allowPorts(EP, ID_PEER, INGRESS, IPPROTO.TCP, SERVER_RULE, 81));
    h.dp.maps.endpoints.update(EP, isolated('both', 2));
    const { r, ...cut } = await send(prog, frame);
    const flags = (prog === 'to_container' ? EST : REPLY) | RECHECKED;
    assert.deepEqual(cut, drop(DENIED, flags, 0), prog); // rule 0: no rule allows it any more
    assert.deepEqual(r.counters, { CT_RECHECKED: 1n, CT_REVOKED: 1n });
    assert.equal(entry(), undefined, 'the entry is gone');
    await sequence([
      ['from_container', tcpOut(ACK | PSH), drop(DENIED), 'the server\'s next packet: new, egress denied'],
      ['to_container', tcpIn(ACK | PSH), drop(DENIED), 'the client\'s next packet: new, port 80 denied'],
    ]);
  }
});

test('policy revision: the peer\'s identity is looked up afresh (relabelled pod loses access)', async () => {
  serverPolicy(1);
  await sequence([['to_container', tcpIn(SYN), fwd(NEW), 'SYN']]);
  h.dp.maps.ipcache.update(ipcacheKey(PEER), { identity: 1005, flags: 0 });
  await sequence([['to_container', tcpIn(ACK), fwd(EST), 'same revision: no re-check, identity not asked']]);
  h.dp.maps.endpoints.update(EP, isolated('both', 2));
  await sequence([['to_container', tcpIn(ACK), drop(DENIED, EST | RECHECKED), 'revision bumped: identity 1005 has no rule']]);
});

test('policy revision: a direction that stopped being isolated allows the re-check', async () => {
  serverPolicy(1);
  await sequence([['to_container', tcpIn(SYN), fwd(NEW), 'SYN']]);
  h.dp.maps.policy.deleteBatch([...h.dp.maps.policy.entries()].map(([k]) => k));
  h.dp.maps.endpoints.update(EP, isolated('egress', 2)); // the last ingress policy went away
  await sequence([['to_container', tcpIn(ACK), fwd(EST | RECHECKED, 0), 'ingress no longer isolated']]);
  assert.deepEqual([entry()?.policyRevision, entry()?.ruleId], [2, 0]);
});

test('UDP: answers pass until the lifetime runs out; expired entries are misses', async () => {
  serverPolicy();
  writeCtConfig(h.dp.maps.ctConfig, { udpMs: 40 });
  await sequence([
    ['to_container', udp('in', 5353, 53), fwd(NEW), 'query'],
    ['from_container', udp('out', 53, 5353), fwd(REPLY), 'answer'],
    ['to_container', udp('in', 5353, 53), fwd(EST), 'next query'],
  ]);
  const e = entry(IPPROTO.UDP, 53, 5353);
  assert.ok(e && e.expiresInMs <= 40 && e.expiresInMs > 0, `UDP lifetime ${e?.expiresInMs}`);
  await new Promise((resolve) => setTimeout(resolve, 80));
  await sequence([['from_container', udp('out', 53, 5353), drop(DENIED), 'a late answer: the entry expired']]);
});

test('UDP: an entry written with a past deadline is a miss; with a future one, a hit', async () => {
  serverPolicy();
  const key: CtKey = { endpointId: EP, localAddr: parseIpv4(POD), remoteAddr: parseIpv4(PEER), localPort: 53, remotePort: 5353,
    protocol: IPPROTO.UDP };
  const base = { policyRevision: 0, ruleId: 99, origDirection: INGRESS, tcpState: SluiceCtTcpState.NONE, flags: SluiceCtFlags.NONE, tcpFlagsSeen: 0,
    natAddr: 0, natPort: 0, backendId: 0 };
  h.dp.maps.conntrack.update(key, { ...base, expiresNs: monotonicNowNs() - 1n });
  await sequence([['from_container', udp('out', 53, 5353), drop(DENIED), 'past deadline']]);
  h.dp.maps.conntrack.update(key, { ...base, expiresNs: monotonicNowNs() + 10_000_000_000n });
  await sequence([['from_container', udp('out', 53, 5353), fwd(REPLY, 99), 'future deadline']]);
});

test('ICMP echo: the reply to an allowed ping passes; a ping back with the same id does not; echo lifetime', async () => {
  serverPolicy();
  writeCtConfig(h.dp.maps.ctConfig, { icmpMs: 40 });
  await sequence([
    ['to_container', icmp('in', 8, 7), fwd(NEW, SERVER_RULE + 1), 'PEER pings POD (a rule without ports)'],
    ['from_container', icmp('out', 0, 7), fwd(REPLY, SERVER_RULE + 1), 'echo reply'],
    ['from_container', icmp('out', 8, 7), drop(DENIED), 'POD pings PEER with the same id: its own connection'],
    ['from_container', icmp('out', 0, 8), drop(DENIED), 'an echo reply to a ping nobody sent'],
    ['from_container', icmp('out', 3, 0), drop(DENIED), 'ICMP errors are never replies here'],
  ]);
  await new Promise((resolve) => setTimeout(resolve, 80));
  await sequence([['from_container', icmp('out', 0, 7), drop(DENIED), 'the reply after the echo lifetime']]);
});

/** An ICMP error from `src` to `dst` about `about` (a frame), type/code as given. */
const icmpError = (src: string, dst: string, type: number, code: number, about: Buffer): Buffer =>
  ipv4Frame({ src, dst }, { proto: 'icmp', type, code, payload: icmpQuote(about) });
const ROUTER = '192.0.2.1'; // WORLD: nothing allows it

test('ICMP errors about a tracked connection are related: they pass where policy would deny them', async () => {
  serverPolicy();
  const query = udp('in', 5353, 53);
  const synAck = tcpOut(SYN | ACK);
  await sequence([
    ['to_container', query, fwd(NEW), 'UDP query to the pod'],
    ['to_container', tcpIn(SYN), fwd(NEW), 'TCP SYN to the pod'],
    ['from_container', synAck, fwd(REPLY), 'SYN-ACK'],
    ['from_container', icmpError(POD, PEER, 3, 3, query), fwd(RELATED), 'port unreachable about the query (egress: no rule)'],
    ['to_container', icmpError(ROUTER, POD, 3, 4, synAck), fwd(RELATED), 'fragmentation needed about the SYN-ACK, from a router'],
    ['to_container', icmpError(ROUTER, POD, 11, 0, synAck), fwd(RELATED), 'time exceeded about it'],
  ]);
  assert.deepEqual(entry()?.tcpState, 'ESTABLISHED', 'a related error changes nothing in the entry');
});

test('ICMP errors about nothing tracked, about another endpoint\'s connection, or quoting garbage face policy', async () => {
  serverPolicy();
  const otherQuery = ipv4Frame({ src: PEER, dst: '10.0.1.6' }, { proto: 'udp', sport: 5353, dport: 53 });
  const truncated = ipv4Frame({ src: ROUTER, dst: POD }, { proto: 'icmp', type: 3, code: 3, payload: icmpQuote(udp('out', 53, 5353)).subarray(0, 24) });
  await sequence([
    ['from_container', icmpError(POD, PEER, 3, 3, udp('in', 5353, 53)), drop(DENIED), 'no such UDP flow'],
    ['to_container', icmpError(ROUTER, POD, 3, 3, otherQuery), drop(DENIED), 'a flow of another pod'],
    ['to_container', truncated, drop(DENIED), 'a quote cut short'],
  ]);
});

test('an ICMP error about a ping is related to the ping', async () => {
  serverPolicy();
  const reply = icmp('out', 0, 7);
  await sequence([
    ['to_container', icmp('in', 8, 7), fwd(NEW, SERVER_RULE + 1), 'PEER pings POD'],
    ['from_container', reply, fwd(REPLY, SERVER_RULE + 1), 'echo reply'],
    ['to_container', icmpError(ROUTER, POD, 3, 1, reply), fwd(RELATED, SERVER_RULE + 1), 'host unreachable about the reply'],
    ['to_container', icmpError(ROUTER, POD, 3, 1, icmp('out', 0, 8)), drop(DENIED), 'about a reply to another ping'],
  ]);
});

test('mid-stream pick-up: a TCP packet policy allows opens an ESTABLISHED entry', async () => {
  serverPolicy();
  await sequence([
    ['to_container', tcpIn(ACK | PSH), fwd(NEW), 'data without a SYN (e.g. after an eviction)'],
    ['from_container', tcpOut(ACK), fwd(REPLY), 'the answer'],
  ]);
  assert.equal(entry()?.tcpState, 'ESTABLISHED');
});

test('two endpoints of one node keep their own entries: the client\'s does not open the server\'s ingress', async () => {
  const SERVER_EP = EP + 1;
  const SERVER = '10.0.1.6';
  serverPolicy();
  const server = h.addEndpoint({ endpointId: SERVER_EP, ipv4: parseIpv4(SERVER) });
  h.dp.maps.ipcache.update(ipcacheKey(SERVER), { identity: 1006, flags: 0 });
  h.dp.maps.endpoints.update(EP, isolated('ingress')); // the client may send anything
  h.dp.maps.endpoints.update(SERVER_EP, isolated('both')); // the server accepts nothing yet
  const syn = ipv4Frame({ src: POD, dst: SERVER }, { proto: 'tcp', sport: 45000, dport: 8080, flags: SYN });
  const synAck = ipv4Frame({ src: SERVER, dst: POD }, { proto: 'tcp', sport: 8080, dport: 45000, flags: SYN | ACK });
  const steps: [string, LxcProgram, Buffer, EndpointConfig | undefined, Outcome][] = [
    ['client egress', 'from_container', syn, undefined, fwd(NEW, 0)],
    ['server ingress: the client\'s entry is not the server\'s', 'to_container', syn, server, drop(DENIED)],
  ];
  for (const [name, prog, frame, as, want] of steps) {
    const { r: _r, ...o } = await send(prog, frame, as);
    assert.deepEqual(o, want, name);
  }
  h.dp.maps.policy.updateBatch(allowPorts(SERVER_EP, ID_POD, INGRESS, IPPROTO.TCP, 50, 8080));
  const allowed: [string, LxcProgram, Buffer, EndpointConfig | undefined, Outcome][] = [
    ['server ingress once allowed', 'to_container', syn, server, fwd(NEW, 50)],
    ['server egress: a reply (the server may send nothing)', 'from_container', synAck, server, fwd(REPLY, 50)],
    ['client ingress: a reply (the client accepts nothing)', 'to_container', synAck, undefined, fwd(REPLY, 0)],
  ];
  for (const [name, prog, frame, as, want] of allowed) {
    const { r: _r, ...o } = await send(prog, frame, as);
    assert.deepEqual(o, want, name);
  }
  assert.deepEqual(dumpConntrack(h.dp.maps.conntrack).map((e) => [e.endpointId, e.local, e.remote, e.origDirection]), [
    [EP, `${POD}:45000`, `${SERVER}:8080`, 'EGRESS'],
    [SERVER_EP, `${SERVER}:8080`, `${POD}:45000`, 'INGRESS'],
  ]);
});

test('LRU: a full conntrack evicts entries nobody revisited; an evicted connection\'s reply faces policy again', async () => {
  serverPolicy();
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW), 'SYN'],
    ['from_container', tcpOut(SYN | ACK), fwd(REPLY), 'SYN-ACK: the entry was looked up again'],
    ['to_container', udp('in', 5353, 53), fwd(NEW), 'a UDP query: an entry written once, not revisited yet'],
  ]);
  const tcpKey: CtKey = { endpointId: EP, localAddr: parseIpv4(POD), remoteAddr: parseIpv4(PEER), localPort: 80, remotePort: 40000,
    protocol: IPPROTO.TCP };
  const udpKey: CtKey = { ...tcpKey, localPort: 53, remotePort: 5353, protocol: IPPROTO.UDP };
  // A burst of new connections nobody revisits (a scan, one-packet flows) while the TCP connection stays live.
  // Which entry the kernel's LRU evicts first depends on its per-CPU free lists, so the burst comes in rounds of
  // half the map, each followed by a packet of the live connection (as real traffic would revisit it), until the
  // UDP entry is gone: the live connection must survive every round, the idle UDP entry must go within a few.
  const value = { expiresNs: monotonicNowNs() + 60_000_000_000n, policyRevision: 0, ruleId: 0, origDirection: EGRESS,
    tcpState: SluiceCtTcpState.ESTABLISHED, flags: 0, tcpFlagsSeen: 0, natAddr: 0, natPort: 0, backendId: 0 };
  const round = h.dp.maps.conntrack.raw.info.maxEntries / 2;
  let rounds = 0;
  for (; rounds < 8 && h.dp.maps.conntrack.lookup(udpKey) !== undefined; rounds++) {
    const filler = Array.from({ length: round }, (_, j) => {
      const i = rounds * round + j;
      return [{ endpointId: 999, localAddr: 0x0a630000, remoteAddr: 0x0a640001 + (i >>> 16), localPort: i & 0xffff,
        remotePort: 80, protocol: IPPROTO.TCP }, value] as const;
    });
    for (let i = 0; i < filler.length; i += 65536) h.dp.maps.conntrack.updateBatch(filler.slice(i, i + 65536));
    assert.notEqual(h.dp.maps.conntrack.lookup(tcpKey), undefined, `the live TCP connection survived round ${rounds + 1}`);
    await sequence([['from_container', tcpOut(ACK | PSH), fwd(REPLY), `round ${rounds + 1}: the TCP connection goes on`]]);
  }
  assert.equal(h.dp.maps.conntrack.lookup(udpKey), undefined, `the idle UDP entry was evicted (after ${rounds} rounds)`);
  await sequence([
    ['from_container', tcpOut(ACK | PSH), fwd(REPLY), 'the TCP connection goes on'],
    ['from_container', udp('out', 53, 5353), drop(DENIED), 'the evicted UDP flow\'s answer: new, egress denied'],
    ['to_container', udp('in', 5353, 53), fwd(NEW), 'the client\'s retried query: allowed, entry re-created'],
    ['from_container', udp('out', 53, 5353), fwd(REPLY), 'the answer passes again'],
  ]);
});
