/**
 * IPv4 fragments under port-aware policy (BPF_PROG_TEST_RUN): the first
 * fragment is judged on its ports and, once it passed, its datagram's later
 * fragments take those ports (and the same connection); a later fragment
 * whose first fragment did not pass is FRAG_UNKNOWN. Sequences of fragments
 * with exact verdicts, event ports and counters.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceDirection, SluiceDropReason, SluiceEventFlags } from '../../src/datapath/generated/abi.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { dumpFrag } from '../../src/datapath/maps/frag.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { LxcHarness, TC_ACT_OK, TC_ACT_SHOT, type LxcProgram } from '../helpers/lxc-harness.js';
import { IPPROTO, ipv4Fragments, type Ipv4Spec, type L4Spec } from '../helpers/packet.js';
import { allowAll, allowPorts, isolated } from '../helpers/policy.js';

const EP = 12;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const ID_PEER = 1001;
const { INGRESS } = SluiceDirection;
const { FRAGMENT, LATER_FRAG, CT_NEW: NEW, CT_ESTABLISHED: EST, CT_REPLY: REPLY } = SluiceEventFlags;
const { POLICY_DENIED: DENIED, FRAG_UNKNOWN } = SluiceDropReason;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

/** The pod accepts UDP 53 from PEER (rule 70) and sends nothing on its own. */
function setup(): void {
  h.reset();
  setTraceAllowed(h.dp.maps.config, true);
  h.dp.maps.ipcache.updateBatch([[ipcacheKey(PEER), { identity: ID_PEER, flags: 0 }]]);
  h.dp.maps.endpoints.update(EP, isolated('both'));
  h.dp.maps.policy.updateBatch(allowPorts(EP, ID_PEER, INGRESS, IPPROTO.UDP, 70, 53));
}

const inbound = (id: number): Ipv4Spec => ({ src: PEER, dst: POD, id });
const udpTo = (dport: number): L4Spec => ({ proto: 'udp', sport: 5353, dport, payload: Buffer.alloc(100, 0x61) });

/** [verdict, sport, dport, flags, reason, rule] of each fragment, in order. */
async function send(prog: LxcProgram, frames: readonly Buffer[]): Promise<(string | number)[][]> {
  const out: (string | number)[][] = [];
  for (const frame of frames) {
    const r = await h.run(prog, frame);
    const ev = r.events[0];
    assert.ok(ev && r.events.length === 1);
    out.push([r.retval === TC_ACT_OK ? 'pass' : r.retval === TC_ACT_SHOT ? 'drop' : r.retval, ev.sport, ev.dport, ev.flags, ev.dropReason,
      ev.ruleId]);
  }
  return out;
}

test('an allowed first fragment lets its later fragments through, with its ports and connection', async () => {
  setup();
  const frags = ipv4Fragments(inbound(0x1111), udpTo(53), 40); // 108 bytes of UDP: 40 + 40 + 28
  assert.equal(frags.length, 3);
  const results = await send('to_container', frags);
  assert.deepEqual(results, [
    ['pass', 5353, 53, FRAGMENT | NEW, 0, 70],
    ['pass', 5353, 53, FRAGMENT | LATER_FRAG | EST, 0, 70],
    ['pass', 5353, 53, FRAGMENT | LATER_FRAG | EST, 0, 70],
  ]);
  assert.deepEqual(dumpFrag(h.dp.maps.frag), [
    { saddr: PEER, daddr: POD, id: 0x1111, protocol: IPPROTO.UDP, sport: 5353, dport: 53, icmpId: 0 },
  ]);
});

test('a denied first fragment: its later fragments are FRAG_UNKNOWN (never remembered)', async () => {
  setup();
  const results = await send('to_container', ipv4Fragments(inbound(0x2222), udpTo(54), 40));
  assert.deepEqual(results, [
    ['drop', 5353, 54, FRAGMENT | NEW, DENIED, 0],
    ['drop', 0, 0, FRAGMENT | LATER_FRAG, FRAG_UNKNOWN, 0],
    ['drop', 0, 0, FRAGMENT | LATER_FRAG, FRAG_UNKNOWN, 0],
  ]);
  assert.deepEqual(dumpFrag(h.dp.maps.frag), []);
});

test('later fragments ahead of their first are FRAG_UNKNOWN; once the first passed, a resent one passes', async () => {
  setup();
  const [first, middle, last] = ipv4Fragments(inbound(0x3333), udpTo(53), 40);
  assert.ok(first && middle && last);
  const r1 = await h.run('to_container', last);
  assert.equal(r1.retval, TC_ACT_SHOT);
  assert.equal(r1.events[0]?.dropReason, FRAG_UNKNOWN);
  const r2 = await h.run('to_container', first);
  assert.deepEqual(r2.counters, { CT_CREATED: 1n, FRAG_TRACKED: 1n });
  assert.deepEqual(await send('to_container', [middle, last]), [
    ['pass', 5353, 53, FRAGMENT | LATER_FRAG | EST, 0, 70],
    ['pass', 5353, 53, FRAGMENT | LATER_FRAG | EST, 0, 70],
  ]);
});

test('another datagram (IP id) does not inherit a remembered first fragment', async () => {
  setup();
  const [first] = ipv4Fragments(inbound(0x4444), udpTo(53), 40);
  const [, otherLater] = ipv4Fragments(inbound(0x4445), udpTo(53), 40);
  assert.ok(first && otherLater);
  assert.deepEqual(await send('to_container', [first, otherLater]), [
    ['pass', 5353, 53, FRAGMENT | NEW, 0, 70],
    ['drop', 0, 0, FRAGMENT | LATER_FRAG, FRAG_UNKNOWN, 0],
  ]);
});

test('a fragmented ping and its fragmented reply: ICMP by a rule without ports, the reply as a reply', async () => {
  setup();
  h.dp.maps.policy.update(...allowAll(EP, ID_PEER, INGRESS, 71));
  const request = ipv4Fragments(inbound(0x5555), { proto: 'icmp', type: 8, code: 0, id: 42, seq: 1, payload: Buffer.alloc(64) }, 32);
  const reply = ipv4Fragments({ src: POD, dst: PEER, id: 0x6666 }, { proto: 'icmp', type: 0, code: 0, id: 42, seq: 1,
    payload: Buffer.alloc(64) }, 32);
  assert.deepEqual(await send('to_container', request), [
    ['pass', 8, 0, FRAGMENT | NEW, 0, 71],
    ['pass', 8, 0, FRAGMENT | LATER_FRAG | EST, 0, 71],
    ['pass', 8, 0, FRAGMENT | LATER_FRAG | EST, 0, 71],
  ]);
  assert.deepEqual(await send('from_container', reply), [
    ['pass', 0, 0, FRAGMENT | REPLY, 0, 71],
    ['pass', 0, 0, FRAGMENT | LATER_FRAG | REPLY, 0, 71],
    ['pass', 0, 0, FRAGMENT | LATER_FRAG | REPLY, 0, 71],
  ]);
  assert.deepEqual(dumpFrag(h.dp.maps.frag).map((f) => [f.saddr, f.id, f.sport, f.icmpId]),
    [[POD, 0x6666, 0, 42], [PEER, 0x5555, 8, 42]]);
});
