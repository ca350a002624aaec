/**
 * An endpoint whose policy the agent could not write completely
 * (SLUICE_EP_F_POLICY_INCOMPLETE) in lxc.o (BPF_PROG_TEST_RUN): every policy
 * decision drops with POLICY_INCOMPLETE — new connections both ways, whether
 * the direction is isolated or not and whatever its entries allow — and an
 * established connection is cut at its next packet, because the agent bumps
 * the revision with the flag. ARP keeps working; another endpoint is
 * unaffected; clearing the flag (with the next revision) restores the
 * policy. Every packet asserts the verdict, the event's reason, conntrack
 * flags and rule, and the drop counter.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceDirection, SluiceDropReason, SluiceEndpointFlags, SluiceEventFlags, type EndpointEntry } from '../../src/datapath/generated/abi.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { LxcHarness, oneCounter, TC_ACT_OK, TC_ACT_SHOT, type LxcProgram } from '../helpers/lxc-harness.js';
import { arpFrame, IPPROTO, ipv4Frame, TCP_FLAGS } from '../helpers/packet.js';
import { allowAll, allowPorts, isolated } from '../helpers/policy.js';

const EP = 12;
const OTHER_EP = 13;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const ID_POD = 1000;
const ID_PEER = 1001;
const RULE = 70;
const { INGRESS, EGRESS } = SluiceDirection;
const { SYN, ACK, PSH } = TCP_FLAGS;
const { CT_NEW: NEW, CT_ESTABLISHED: EST, CT_REPLY: REPLY, CT_RECHECKED: RECHECKED } = SluiceEventFlags;
const { NONE, POLICY_INCOMPLETE: INCOMPLETE, POLICY_DENIED: DENIED } = SluiceDropReason;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

const incomplete = (e: EndpointEntry, revision: number): EndpointEntry =>
  ({ ...e, flags: (e.flags | SluiceEndpointFlags.POLICY_INCOMPLETE) >>> 0, policyRevision: revision });

/** The pod: ingress isolated with TCP 80 and everything-from-PEER allowed, egress not isolated. */
function setup(entry: EndpointEntry = isolated('ingress', 1)): void {
  h.reset();
  setTraceAllowed(h.dp.maps.config, true);
  h.dp.maps.ipcache.updateBatch([
    [ipcacheKey(POD), { identity: ID_POD, flags: 0 }],
    [ipcacheKey(PEER), { identity: ID_PEER, flags: 0 }],
  ]);
  h.dp.maps.endpoints.update(EP, entry);
  h.dp.maps.policy.updateBatch([
    ...allowPorts(EP, ID_PEER, INGRESS, IPPROTO.TCP, RULE, 80),
    allowAll(EP, ID_PEER, INGRESS, RULE + 1),
  ]);
}

const tcpIn = (flags: number, dport = 80): Buffer => ipv4Frame({ src: PEER, dst: POD }, { proto: 'tcp', sport: 40000, dport, flags });
const tcpOut = (flags: number, dport = 443): Buffer => ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 40001, dport, flags });
const ping = (dir: 'in' | 'out'): Buffer =>
  ipv4Frame(dir === 'in' ? { src: PEER, dst: POD } : { src: POD, dst: PEER }, { proto: 'icmp', type: 8, code: 0, id: 9, seq: 1 });

interface Outcome {
  readonly reason: number;
  readonly flags: number;
  readonly rule: number;
}

/** Sends one packet; asserts verdict and counter agree with the event, returns what the event says. */
async function send(prog: LxcProgram, frame: Buffer): Promise<Outcome> {
  const r = await h.run(prog, frame);
  assert.equal(r.events.length, 1, 'one event per packet (tracing on)');
  const [ev] = r.events;
  assert.ok(ev);
  assert.equal(r.retval, ev.dropReason === NONE ? TC_ACT_OK : TC_ACT_SHOT);
  const direction = prog === 'to_container' ? INGRESS : EGRESS;
  assert.deepEqual(r.metrics, oneCounter(direction, ev.dropReason, frame.length));
  return { reason: ev.dropReason, flags: ev.flags & (NEW | EST | REPLY | RECHECKED), rule: ev.ruleId };
}

async function sequence(steps: ReadonlyArray<readonly [LxcProgram, Buffer, Outcome, string]>): Promise<void> {
  const got: (Outcome & { step: string })[] = [];
  for (const [prog, frame, , step] of steps) got.push({ step, ...(await send(prog, frame)) });
  assert.deepEqual(got, steps.map(([, , want, step]) => ({ step, ...want })));
}

const fwd = (flags: number, rule: number): Outcome => ({ reason: NONE, flags, rule });
const drop = (reason: number, flags: number = NEW): Outcome => ({ reason, flags, rule: 0 });

test('control: the complete policy allows port 80 in and anything out', async () => {
  setup();
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW, RULE), 'SYN in to 80'],
    ['to_container', tcpIn(SYN, 81), fwd(NEW, RULE + 1), 'SYN in to 81: the rule without ports'],
    ['from_container', tcpOut(SYN), fwd(NEW, 0), 'SYN out: egress not isolated'],
  ]);
});

test('incomplete: every new connection drops as POLICY_INCOMPLETE, both directions, allowed or not, isolated or not', async () => {
  setup(incomplete(isolated('ingress', 1), 2));
  await sequence([
    ['to_container', tcpIn(SYN), drop(INCOMPLETE), 'SYN in to an allowed port'],
    ['to_container', tcpIn(SYN, 9999), drop(INCOMPLETE), 'SYN in to a port only the rule without ports allows'],
    ['to_container', ping('in'), drop(INCOMPLETE), 'ping in'],
    ['from_container', tcpOut(SYN), drop(INCOMPLETE), 'SYN out: egress is not isolated'],
    ['from_container', ping('out'), drop(INCOMPLETE), 'ping out'],
  ]);
  setup(incomplete(isolated('both', 1), 2));
  await sequence([['from_container', tcpOut(SYN), drop(INCOMPLETE), 'SYN out, egress isolated without entries: incomplete, not denied']]);
});

test('incomplete: established connections, in either direction, are cut at their next packet (revision bumped)', async () => {
  const synAck = ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 80, dport: 40000, flags: SYN | ACK });
  const dataOut = ipv4Frame({ src: POD, dst: PEER }, { proto: 'tcp', sport: 80, dport: 40000, flags: ACK | PSH });
  for (const [prog, frame, flags] of [['to_container', tcpIn(ACK | PSH), EST], ['from_container', dataOut, REPLY]] as const) {
    setup();
    await sequence([
      ['to_container', tcpIn(SYN), fwd(NEW, RULE), 'SYN in'],
      ['from_container', synAck, fwd(REPLY, RULE), 'SYN-ACK'],
    ]);
    h.dp.maps.endpoints.update(EP, incomplete(isolated('ingress', 1), 2));
    await sequence([
      [prog, frame, drop(INCOMPLETE, flags | RECHECKED), `${prog}: re-checked, incomplete`],
      ['to_container', tcpIn(ACK | PSH), drop(INCOMPLETE), 'then: no connection left, new and incomplete'],
    ]);
  }
});

test('incomplete without a revision bump: established connections pass (why the agent bumps it)', async () => {
  setup();
  await sequence([['to_container', tcpIn(SYN), fwd(NEW, RULE), 'SYN in']]);
  h.dp.maps.endpoints.update(EP, incomplete(isolated('ingress', 1), 1));
  await sequence([
    ['to_container', tcpIn(ACK), fwd(EST, RULE), 'same revision: conntrack decides, policy not asked'],
    ['to_container', tcpIn(SYN, 81), drop(INCOMPLETE), 'a new connection is decided: incomplete'],
  ]);
});

test('incomplete: ARP still passes, without an event', async () => {
  setup(incomplete(isolated('both', 1), 2));
  for (const [prog, frame] of [
    ['from_container', arpFrame({ senderIp: POD, targetIp: PEER })],
    ['to_container', arpFrame({ op: 2, senderIp: PEER, targetIp: POD })],
  ] as const) {
    const r = await h.run(prog, frame);
    assert.equal(r.retval, TC_ACT_OK, prog);
    assert.deepEqual(r.events, [], prog);
  }
});

test('incomplete is per endpoint: another endpoint keeps its policy', async () => {
  setup(incomplete(isolated('ingress', 1), 2));
  const other = h.addEndpoint({ endpointId: OTHER_EP, ipv4: parseIpv4(POD) });
  {
    h.dp.maps.endpoints.update(OTHER_EP, isolated('ingress', 1));
    h.dp.maps.policy.updateBatch(allowPorts(OTHER_EP, ID_PEER, INGRESS, IPPROTO.TCP, RULE + 5, 80));
    const run = async (frame: Buffer): Promise<[number, number]> => {
      const r = await h.run('to_container', frame, { as: other });
      const [ev] = r.events;
      assert.ok(ev);
      return [r.retval, ev.dropReason];
    };
    assert.deepEqual(await run(tcpIn(SYN)), [TC_ACT_OK, NONE]);
    assert.deepEqual(await run(tcpIn(SYN, 81)), [TC_ACT_SHOT, DENIED]);
  }
  await sequence([['to_container', tcpIn(SYN), drop(INCOMPLETE), 'the flagged endpoint still drops']]);
});

test('the flag cleared with the next revision: the policy decides again', async () => {
  setup(incomplete(isolated('ingress', 1), 2));
  await sequence([['to_container', tcpIn(SYN), drop(INCOMPLETE), 'flagged']]);
  h.dp.maps.endpoints.update(EP, isolated('ingress', 3));
  await sequence([
    ['to_container', tcpIn(SYN), fwd(NEW, RULE), 'allowed port'],
    ['from_container', tcpOut(SYN), fwd(NEW, 0), 'egress not isolated'],
  ]);
  h.dp.maps.policy.deleteBatch([...h.dp.maps.policy.entries()].map(([k]) => k));
  await sequence([['to_container', tcpIn(SYN, 82), drop(DENIED), 'no entry: an ordinary denial']]);
});
