/**
 * bpf/lxc.c verdicts on well-formed traffic (BPF_PROG_TEST_RUN): allowed
 * TCP/UDP/ICMP/SCTP/other in both directions, policy DENY by identity, the
 * ipcache's longest-prefix match, and the source check. Each row is one
 * crafted packet with its expected return value, exact events and the
 * metrics counters it moves.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceDirection, SluiceDropReason, SluiceIdentityReserved, SluicePolicyAction,
  type IpcacheEntry, type IpcacheKey, type PolicyEntry, type PolicyKey,
} from '../../src/datapath/generated/abi.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import {
  directionOf, eventFields, expectedEvent, LxcHarness, oneCounter, TC_ACT_OK, TC_ACT_SHOT, type EventFields, type LxcProgram,
} from '../helpers/lxc-harness.js';
import { IPPROTO, ipv4Frame, type L4Spec } from '../helpers/packet.js';

const EP = 42;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const ID_POD = 1000;
const ID_PEER = 1001;
/** test-run executes on loopback unless the ctx names another device. */
const LO_IFINDEX = 1;

const { INGRESS, EGRESS } = SluiceDirection;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

interface Setup {
  readonly ipcache?: Record<string, number>;
  readonly policy?: ReadonlyArray<readonly [PolicyKey, PolicyEntry]>;
}

/** Pod and peer in the ipcache as /32s unless a row brings its own. */
const BASE_IPCACHE: Record<string, number> = { [POD]: ID_POD, [PEER]: ID_PEER };

function apply(setup: Setup): void {
  h.reset();
  setTraceAllowed(h.dp.maps.config, true); // allowed rows show what the program parsed
  const ipcache: [IpcacheKey, IpcacheEntry][] = Object.entries(setup.ipcache ?? BASE_IPCACHE)
    .map(([prefix, identity]) => [ipcacheKey(prefix), { identity, flags: 0 }]);
  h.dp.maps.ipcache.updateBatch(ipcache);
  h.dp.maps.policy.updateBatch(setup.policy ?? []);
}

function deny(remoteIdentity: number, direction: number, ruleId: number, endpointId = EP): [PolicyKey, PolicyEntry] {
  return [{ endpointId, remoteIdentity, direction }, { action: SluicePolicyAction.DENY, ruleId }];
}

function tuple(src: string, dst: string, l4: L4Spec): Pick<EventFields, 'saddr' | 'daddr' | 'sport' | 'dport' | 'protocol'> {
  switch (l4.proto) {
    case 'tcp': case 'udp': case 'sctp':
      return { saddr: parseIpv4(src), daddr: parseIpv4(dst), sport: l4.sport, dport: l4.dport,
        protocol: l4.proto === 'tcp' ? IPPROTO.TCP : l4.proto === 'udp' ? IPPROTO.UDP : IPPROTO.SCTP };
    case 'icmp':
      return { saddr: parseIpv4(src), daddr: parseIpv4(dst), sport: l4.type, dport: l4.code, protocol: IPPROTO.ICMP };
    case 'raw':
      return { saddr: parseIpv4(src), daddr: parseIpv4(dst), sport: 0, dport: 0, protocol: l4.protocol };
  }
}

interface Row {
  readonly name: string;
  readonly prog: LxcProgram;
  readonly src: string;
  readonly dst: string;
  readonly l4: L4Spec;
  readonly setup?: Setup;
  /** Expected identities (src, dst) as the ipcache resolves them. */
  readonly ids: readonly [number, number];
  /** undefined = forwarded; a reason = dropped with it. */
  readonly drop?: number;
  readonly ruleId?: number;
}

const tcp = (sport: number, dport: number): L4Spec => ({ proto: 'tcp', sport, dport });
const udp = (sport: number, dport: number): L4Spec => ({ proto: 'udp', sport, dport, payload: Buffer.from('dns?') });
const echo = (type: number): L4Spec => ({ proto: 'icmp', type, code: 0, id: 9, seq: 1 });

const rows: Row[] = [
  // Allowed (no policy entry) in both directions.
  { name: 'TCP SYN out of the pod', prog: 'from_container', src: POD, dst: PEER, l4: tcp(40000, 80), ids: [ID_POD, ID_PEER] },
  { name: 'TCP reply into the pod', prog: 'to_container', src: PEER, dst: POD, l4: tcp(80, 40000), ids: [ID_PEER, ID_POD] },
  { name: 'UDP out', prog: 'from_container', src: POD, dst: PEER, l4: udp(5353, 53), ids: [ID_POD, ID_PEER] },
  { name: 'UDP in', prog: 'to_container', src: PEER, dst: POD, l4: udp(53, 5353), ids: [ID_PEER, ID_POD] },
  { name: 'ICMP echo request out (type/code in the port fields)', prog: 'from_container', src: POD, dst: PEER,
    l4: echo(8), ids: [ID_POD, ID_PEER] },
  { name: 'ICMP echo reply in', prog: 'to_container', src: PEER, dst: POD, l4: echo(0), ids: [ID_PEER, ID_POD] },
  { name: 'ICMP unreachable (code 3) in', prog: 'to_container', src: PEER, dst: POD,
    l4: { proto: 'icmp', type: 3, code: 3, payload: Buffer.alloc(28) }, ids: [ID_PEER, ID_POD] },
  { name: 'SCTP out, ports parsed', prog: 'from_container', src: POD, dst: PEER,
    l4: { proto: 'sctp', sport: 3868, dport: 3869, vtag: 7 }, ids: [ID_POD, ID_PEER] },
  { name: 'GRE out: no ports, decided on identity', prog: 'from_container', src: POD, dst: PEER,
    l4: { proto: 'raw', protocol: IPPROTO.GRE, payload: Buffer.alloc(8) }, ids: [ID_POD, ID_PEER] },
  { name: 'destination outside the ipcache is WORLD', prog: 'from_container', src: POD, dst: '192.0.2.1',
    l4: tcp(40001, 443), ids: [ID_POD, SluiceIdentityReserved.WORLD] },

  // Policy by identity.
  { name: 'DENY of the destination identity drops egress', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { policy: [deny(ID_PEER, EGRESS, 7001)] }, ids: [ID_POD, ID_PEER],
    drop: SluiceDropReason.POLICY_DENIED, ruleId: 7001 },
  { name: 'DENY of the source identity drops ingress', prog: 'to_container', src: PEER, dst: POD,
    l4: udp(53, 5353), setup: { policy: [deny(ID_PEER, INGRESS, 7002)] }, ids: [ID_PEER, ID_POD],
    drop: SluiceDropReason.POLICY_DENIED, ruleId: 7002 },
  { name: 'DENY drops ICMP too (identity, not ports)', prog: 'from_container', src: POD, dst: PEER, l4: echo(8),
    setup: { policy: [deny(ID_PEER, EGRESS, 7009)] }, ids: [ID_POD, ID_PEER],
    drop: SluiceDropReason.POLICY_DENIED, ruleId: 7009 },
  { name: 'an ingress DENY does not touch egress', prog: 'from_container', src: POD, dst: PEER, l4: tcp(40000, 80),
    setup: { policy: [deny(ID_PEER, INGRESS, 7004)] }, ids: [ID_POD, ID_PEER] },
  { name: 'another endpoint\'s DENY does not touch this one', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { policy: [deny(ID_PEER, EGRESS, 7005, EP + 1)] }, ids: [ID_POD, ID_PEER] },
  { name: 'ingress is keyed by the source: DENY of the pod\'s own identity does nothing', prog: 'to_container',
    src: PEER, dst: POD, l4: tcp(80, 40000), setup: { policy: [deny(ID_POD, INGRESS, 7006)] }, ids: [ID_PEER, ID_POD] },
  { name: 'ALLOW passes and reports its rule', prog: 'from_container', src: POD, dst: PEER, l4: tcp(40000, 80),
    setup: { policy: [[{ endpointId: EP, remoteIdentity: ID_PEER, direction: EGRESS },
      { action: SluicePolicyAction.ALLOW, ruleId: 7003 }]] }, ids: [ID_POD, ID_PEER], ruleId: 7003 },
  { name: 'an unknown action fails closed', prog: 'from_container', src: POD, dst: PEER, l4: tcp(40000, 80),
    setup: { policy: [[{ endpointId: EP, remoteIdentity: ID_PEER, direction: EGRESS }, { action: 9, ruleId: 7007 }]] },
    ids: [ID_POD, ID_PEER], drop: SluiceDropReason.POLICY_DENIED, ruleId: 7007 },
  { name: 'DENY of WORLD drops traffic to unknown addresses', prog: 'from_container', src: POD, dst: '192.0.2.1',
    l4: tcp(40001, 443), setup: { policy: [deny(SluiceIdentityReserved.WORLD, EGRESS, 7008)] },
    ids: [ID_POD, SluiceIdentityReserved.WORLD], drop: SluiceDropReason.POLICY_DENIED, ruleId: 7008 },

  // ipcache: longest prefix wins.
  ...lpmRows(),

  // Source check on traffic leaving the pod.
  { name: 'a source other than the pod\'s address is spoofed', prog: 'from_container', src: '10.0.1.6', dst: PEER,
    l4: tcp(40000, 80), ids: [SluiceIdentityReserved.WORLD, ID_PEER], drop: SluiceDropReason.SPOOFED_SOURCE },
  { name: 'a spoofed source names the identity it impersonates', prog: 'from_container', src: PEER, dst: POD,
    l4: tcp(40000, 80), ids: [ID_PEER, ID_POD], drop: SluiceDropReason.SPOOFED_SOURCE },
  { name: 'the source check comes before policy', prog: 'from_container', src: '10.0.1.6', dst: PEER,
    l4: tcp(40000, 80), setup: { policy: [deny(ID_PEER, EGRESS, 7010)] }, ids: [SluiceIdentityReserved.WORLD, ID_PEER],
    drop: SluiceDropReason.SPOOFED_SOURCE },
  { name: 'traffic into the pod may come from any source', prog: 'to_container', src: '198.51.100.9', dst: POD,
    l4: tcp(443, 40000), ids: [SluiceIdentityReserved.WORLD, ID_POD] },
];

function lpmRows(): Row[] {
  const ipcache = { '10.0.0.0/8': 2000, '10.0.2.0/24': 2100, [PEER]: ID_PEER, [POD]: ID_POD };
  const policy = [deny(2000, EGRESS, 8001)];
  const out = (dst: string, ids: readonly [number, number], drop?: number): Row => ({
    name: `LPM: ${dst} resolves to ${ids[1]}`, prog: 'from_container', src: POD, dst, l4: tcp(40000, 80),
    setup: { ipcache, policy }, ids, ...(drop === undefined ? {} : { drop, ruleId: 8001 }),
  });
  return [
    out(PEER, [ID_POD, ID_PEER]), // the /32 inside the denied /8 wins
    out('10.0.2.8', [ID_POD, 2100]), // the /24 inside the /8 wins
    out('10.9.9.9', [ID_POD, 2000], SluiceDropReason.POLICY_DENIED), // only the /8 matches
    out('11.0.0.1', [ID_POD, SluiceIdentityReserved.WORLD]), // nothing matches
  ];
}

for (const row of rows) {
  test(row.name, async () => {
    apply(row.setup ?? {});
    const frame = ipv4Frame({ src: row.src, dst: row.dst }, row.l4);
    const dir = directionOf(row.prog);
    const r = await h.run(row.prog, frame);
    assert.equal(r.retval, row.drop === undefined ? TC_ACT_OK : TC_ACT_SHOT);
    const expected = expectedEvent({ direction: dir, endpointId: EP, ifindex: LO_IFINDEX, frame }, {
      ...tuple(row.src, row.dst, row.l4),
      srcIdentity: row.ids[0],
      dstIdentity: row.ids[1],
      dropReason: row.drop ?? SluiceDropReason.NONE,
      ruleId: row.ruleId ?? 0,
    });
    assert.deepEqual(eventFields(r.events), [expected]);
    assert.deepEqual(r.metrics, oneCounter(dir, row.drop ?? SluiceDropReason.NONE, frame.length));
  });
}

test('an endpoint without an address (ipv4 0) has no source check', async () => {
  apply({});
  const other = h.loadEndpoint({ endpointId: EP + 1, ipv4: 0 });
  const frame = ipv4Frame({ src: '10.0.1.6', dst: PEER }, tcp(40000, 80));
  const r = await h.run('from_container', frame, { dp: other });
  assert.equal(r.retval, TC_ACT_OK);
  assert.deepEqual(eventFields(r.events).map((e) => [e.endpointId, e.dropReason]), [[EP + 1, SluiceDropReason.NONE]]);
});

test('endpoints sharing the maps are told apart by their endpoint id', async () => {
  apply({ policy: [deny(ID_PEER, EGRESS, 9001, EP + 2)] });
  const other = h.loadEndpoint({ endpointId: EP + 2, ipv4: parseIpv4(POD) });
  const frame = ipv4Frame({ src: POD, dst: PEER }, tcp(40000, 80));
  const mine = await h.run('from_container', frame);
  const theirs = await h.run('from_container', frame, { dp: other });
  assert.equal(mine.retval, TC_ACT_OK);
  assert.equal(theirs.retval, TC_ACT_SHOT);
  assert.deepEqual(eventFields(theirs.events).map((e) => [e.endpointId, e.ruleId]), [[EP + 2, 9001]]);
});
