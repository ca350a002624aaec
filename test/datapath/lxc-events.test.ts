/**
 * Events and counters of lxc.o (BPF_PROG_TEST_RUN): drops always emit, allowed
 * packets only while sl_config_v1 has SLUICE_CFG_TRACE_ALLOWED (every one) or
 * SLUICE_CFG_TRACE_NEW (those policy decided), the switches take effect on
 * the next packet without reloading anything, and events lost to a full ring
 * buffer are counted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceConfigFlags, SluiceCounter, SluiceDirection, SluiceDropReason, SluiceEventFlags, SluiceEventType, SluiceMapCapacity,
  sluiceEventCodec,
} from '../../src/datapath/generated/abi.js';
import { readGlobalConfig, setTraceAllowed, setTraceMode, writeGlobalConfig } from '../../src/datapath/maps/config.js';
import { readDatapathCounter } from '../../src/datapath/maps/counters.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { dumpMetrics, readCounter } from '../../src/datapath/maps/metrics.js';
import { eventFields, LxcHarness, oneCounter, TC_ACT_OK, TC_ACT_SHOT } from '../helpers/lxc-harness.js';
import { ETH_P_IPV6, ethernet, ipv4Frame, TCP_FLAGS } from '../helpers/packet.js';
import { allowAll, isolated } from '../helpers/policy.js';

const EP = 11;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const ID_PEER = 1001;
const { INGRESS, EGRESS } = SluiceDirection;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

const allowedOut = ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 40000, dport: 80 });
const allowedIn = ipv4Frame({ src: PEER, dst: POD }, { proto: 'udp', sport: 53, dport: 5353 });

function setup(): void {
  h.reset();
  h.dp.maps.ipcache.update(ipcacheKey(PEER), { identity: ID_PEER, flags: 0 });
}

test('tracing off (the default): allowed packets are counted, not reported', async () => {
  setup();
  assert.equal(readGlobalConfig(h.dp.maps.config).flags, 0);
  for (const [prog, frame, dir] of [['from_container', allowedOut, EGRESS], ['to_container', allowedIn, INGRESS]] as const) {
    const r = await h.run(prog, frame);
    assert.equal(r.retval, TC_ACT_OK);
    assert.deepEqual(r.events, []);
    assert.deepEqual(r.metrics, oneCounter(dir, SluiceDropReason.NONE, frame.length));
  }
});

test('tracing on: one TRACE event per allowed packet', async () => {
  setup();
  setTraceAllowed(h.dp.maps.config, true);
  const r = await h.run('to_container', allowedIn);
  assert.equal(r.retval, TC_ACT_OK);
  assert.deepEqual(eventFields(r.events).map((e) => [e.eventType, e.direction, e.sport, e.dport]),
    [[SluiceEventType.TRACE, INGRESS, 53, 5353]]);
});

test('the switch applies to the next packet and keeps other flag bits', async () => {
  setup();
  writeGlobalConfig(h.dp.maps.config, { flags: 0x100 }); // a bit this datapath does not know
  assert.deepEqual((await h.run('from_container', allowedOut)).events, []);
  setTraceAllowed(h.dp.maps.config, true);
  assert.equal((await h.run('from_container', allowedOut)).events.length, 1);
  setTraceAllowed(h.dp.maps.config, false);
  assert.deepEqual((await h.run('from_container', allowedOut)).events, []);
  assert.equal(readGlobalConfig(h.dp.maps.config).flags, 0x100);
});

test('drops are reported whether tracing is on or off', async () => {
  setup();
  h.dp.maps.endpoints.update(EP, isolated('egress'));
  for (const on of [false, true]) {
    setTraceAllowed(h.dp.maps.config, on);
    const r = await h.run('from_container', allowedOut);
    assert.equal(r.retval, TC_ACT_SHOT);
    assert.deepEqual(eventFields(r.events).map((e) => [e.eventType, e.dropReason, e.ruleId]),
      [[SluiceEventType.DROP, SluiceDropReason.POLICY_DENIED, 0]]);
  }
});

test('TRACE_NEW: one event per policy verdict (connection opened), with its rule; none for the rest', async () => {
  setup();
  h.dp.maps.endpoints.update(EP, isolated('egress'));
  h.dp.maps.policy.update(...allowAll(EP, ID_PEER, EGRESS, 77));
  writeGlobalConfig(h.dp.maps.config, { flags: SluiceConfigFlags.TRACE_NEW });
  const syn = ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 40500, dport: 80, flags: TCP_FLAGS.SYN });
  const synAck = ipv4Frame({ src: PEER, dst: POD }, { proto: 'tcp', sport: 80, dport: 40500, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK });
  const ack = ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 40500, dport: 80, flags: TCP_FLAGS.ACK });
  const opened = await h.run('from_container', syn);
  assert.deepEqual(eventFields(opened.events).map((e) => [e.eventType, e.flags, e.ruleId]),
    [[SluiceEventType.TRACE, SluiceEventFlags.CT_NEW, 77]]);
  assert.deepEqual(opened.counters, { CT_CREATED: 1n });
  assert.deepEqual((await h.run('to_container', synAck)).events, []); // a reply
  assert.deepEqual((await h.run('from_container', ack)).events, []); // established
  // Every allowed packet under TRACE_ALLOWED, with the connection's view and rule.
  writeGlobalConfig(h.dp.maps.config, { flags: SluiceConfigFlags.TRACE_ALLOWED });
  assert.deepEqual(eventFields((await h.run('to_container', synAck)).events).map((e) => [e.flags, e.ruleId]),
    [[SluiceEventFlags.CT_REPLY, 77]]);
  assert.deepEqual(eventFields((await h.run('from_container', ack)).events).map((e) => [e.flags, e.ruleId]),
    [[SluiceEventFlags.CT_ESTABLISHED, 77]]);
});

test('TRACE_TCP_FLAGS: a tracked TCP connection reports each packet with a new flag, not every packet', async () => {
  setup();
  h.dp.maps.endpoints.update(EP, isolated('egress'));
  h.dp.maps.policy.update(...allowAll(EP, ID_PEER, EGRESS, 78));
  setTraceMode(h.dp.maps.config, 'tcp-flags');
  const { SYN, ACK, PSH, FIN } = TCP_FLAGS;
  const out = (flags: number): Buffer => ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 40600, dport: 80, flags });
  const back = (flags: number): Buffer => ipv4Frame({ src: PEER, dst: POD }, { proto: 'tcp', sport: 80, dport: 40600, flags });
  const NEW_FLAGS = SluiceEventFlags.TCP_FLAGS_NEW;
  const seq: [string, Buffer, number[][]][] = [
    ['from_container', out(SYN), [[SluiceEventFlags.CT_NEW, SYN]]], // the policy verdict
    ['to_container', back(SYN | ACK), [[SluiceEventFlags.CT_REPLY | NEW_FLAGS, SYN | ACK]]], // ACK is new
    ['from_container', out(ACK), []],
    ['from_container', out(PSH | ACK), [[SluiceEventFlags.CT_ESTABLISHED | NEW_FLAGS, PSH | ACK]]],
    ['to_container', back(PSH | ACK), []],
    ['from_container', out(ACK), []],
    ['from_container', out(FIN | ACK), [[SluiceEventFlags.CT_ESTABLISHED | NEW_FLAGS, FIN | ACK]]],
    ['to_container', back(FIN | ACK), []], // FIN was seen (the other direction)
  ];
  for (const [prog, frame, want] of seq) {
    const r = await h.run(prog as 'from_container' | 'to_container', frame);
    assert.equal(r.retval, TC_ACT_OK);
    assert.deepEqual(eventFields(r.events).map((e) => [e.flags, e.tcpFlags]), want, `${prog} flags ${frame[47]}`);
  }
  assert.equal(readGlobalConfig(h.dp.maps.config).flags, SluiceConfigFlags.TRACE_NEW | SluiceConfigFlags.TRACE_TCP_FLAGS);
  setTraceMode(h.dp.maps.config, 'off');
  assert.deepEqual((await h.run('from_container', out(SYN))).events, [], 'off: a new connection is not reported');
});

test('events lost to a full ring buffer are counted; the verdicts and metrics stand', async () => {
  setup();
  h.dp.maps.endpoints.update(EP, isolated('egress'));
  await h.flush();
  const repeat = 20_000;
  // A record is the event plus an 8-byte header (56 + 8 = 64 bytes, 8-aligned),
  // and the kernel refuses a record that would fill the whole ring (it
  // compares with size - 1): with 1 MiB, 16383 fit while nobody reads
  // (test-run blocks the event loop).
  const fit = SluiceMapCapacity.EVENTS_RING_BYTES / (sluiceEventCodec.size + 8) - 1;
  const lostBefore = readDatapathCounter(h.dp.maps.counters, SluiceCounter.EVENTS_LOST);
  const droppedBefore = readCounter(h.dp.maps.metrics, EGRESS, SluiceDropReason.POLICY_DENIED).packets;
  assert.equal(h.testRun(h.dp.fromContainer, { data: allowedOut, repeat }).retval, TC_ACT_SHOT);
  assert.equal(readDatapathCounter(h.dp.maps.counters, SluiceCounter.EVENTS_LOST) - lostBefore, BigInt(repeat - fit));
  assert.equal(readCounter(h.dp.maps.metrics, EGRESS, SluiceDropReason.POLICY_DENIED).packets - droppedBefore, BigInt(repeat));
  await h.flush(); // the 16383 that fit
  // Once read, the ring takes events again.
  const r = await h.run('from_container', allowedOut);
  assert.equal(r.events.length, 1);
  assert.deepEqual(r.counters, {});
});

test('events are in order with rising timestamps; counters add up', async () => {
  setup();
  setTraceAllowed(h.dp.maps.config, true);
  const before = dumpMetrics(h.dp.maps.metrics);
  const stamps: bigint[] = [];
  for (let i = 0; i < 5; i++) {
    const frame = ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 41000 + i, dport: 80 });
    const r = await h.run('from_container', frame);
    assert.equal(r.events.length, 1);
    assert.equal(r.events[0]?.sport, 41000 + i);
    stamps.push(r.events[0]?.timestampNs ?? 0n);
  }
  assert.deepEqual([...stamps].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), stamps);
  const forwarded = (rows: ReturnType<typeof dumpMetrics>) =>
    rows.find((m) => m.direction === 'EGRESS' && m.reason === 'NONE')?.packets ?? 0n;
  assert.equal(forwarded(dumpMetrics(h.dp.maps.metrics)) - forwarded(before), 5n);
});

test('a drop before the IP header carries what is known: direction, endpoint, length', async () => {
  setup();
  const frame = ethernet(ETH_P_IPV6, Buffer.alloc(40));
  const r = await h.run('to_container', frame);
  assert.equal(r.retval, TC_ACT_SHOT);
  const [ev] = eventFields(r.events);
  assert.deepEqual(ev && [ev.direction, ev.endpointId, ev.pktLen, ev.saddr, ev.protocol, ev.dropReason],
    [INGRESS, EP, frame.length, 0, 0, SluiceDropReason.UNSUPPORTED_L3]);
});
