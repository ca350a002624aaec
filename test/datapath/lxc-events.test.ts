/**
 * Events and counters of lxc.o (BPF_PROG_TEST_RUN): drops always emit, allowed
 * packets only while sl_config_v1 has SLUICE_CFG_TRACE_ALLOWED, and the switch
 * takes effect on the next packet without reloading anything.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceDirection, SluiceDropReason, SluiceEventType, SluicePolicyAction,
} from '../../src/datapath/generated/abi.js';
import { readGlobalConfig, setTraceAllowed, writeGlobalConfig } from '../../src/datapath/maps/config.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { dumpMetrics } from '../../src/datapath/maps/metrics.js';
import { eventFields, LxcHarness, oneCounter, TC_ACT_OK, TC_ACT_SHOT } from '../helpers/lxc-harness.js';
import { ETH_P_IPV6, ethernet, ipv4Frame } from '../helpers/packet.js';

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
  h.dp.maps.policy.update({ endpointId: EP, remoteIdentity: ID_PEER, direction: EGRESS },
    { action: SluicePolicyAction.DENY, ruleId: 3 });
  for (const on of [false, true]) {
    setTraceAllowed(h.dp.maps.config, on);
    const r = await h.run('from_container', allowedOut);
    assert.equal(r.retval, TC_ACT_SHOT);
    assert.deepEqual(eventFields(r.events).map((e) => [e.eventType, e.dropReason, e.ruleId]),
      [[SluiceEventType.DROP, SluiceDropReason.POLICY_DENIED, 3]]);
  }
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
