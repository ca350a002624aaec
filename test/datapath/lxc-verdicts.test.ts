/**
 * bpf/lxc.c verdicts on well-formed traffic (BPF_PROG_TEST_RUN): traffic of a
 * not-isolated endpoint in both directions (TCP/UDP/ICMP/SCTP/other), the
 * endpoint table (unknown endpoint, isolation per direction), policy by
 * identity (exact peer, any peer, another endpoint's entries, unknown
 * actions), the ipcache's longest-prefix match feeding policy, and the source
 * check. Each row is one crafted packet with its expected return value, exact
 * events and the metrics counters it moves. Ports and protocols are in
 * lxc-policy.test.ts, connections in lxc-conntrack.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceDirection, SluiceDropReason, SluiceEventFlags, SluiceIdentityReserved,
  type EndpointEntry, type IpcacheEntry, type IpcacheKey, type PolicyEntry, type PolicyKey,
} from '../../src/datapath/generated/abi.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { endpointEntry } from '../../src/datapath/maps/endpoints.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import {
  directionOf, eventFields, expectedEvent, LxcHarness, oneCounter, TC_ACT_OK, TC_ACT_SHOT, type EventFields, type LxcProgram,
} from '../helpers/lxc-harness.js';
import { arpFrame, IPPROTO, ipv4Frame, type L4Spec } from '../helpers/packet.js';
import { allowAll, isolated } from '../helpers/policy.js';

const EP = 42;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const ID_POD = 1000;
const ID_PEER = 1001;
/** test-run executes on loopback unless the ctx names another device. */
const LO_IFINDEX = 1;
const NEW = SluiceEventFlags.CT_NEW;

const { INGRESS, EGRESS } = SluiceDirection;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

interface Setup {
  readonly ipcache?: Record<string, number>;
  readonly endpoint?: EndpointEntry | null; // null: no entry at all
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
  if (setup.endpoint === null) h.dp.maps.endpoints.delete(EP);
  else if (setup.endpoint) h.dp.maps.endpoints.update(EP, setup.endpoint);
  h.dp.maps.policy.updateBatch(setup.policy ?? []);
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
  /** Expected event flags; default CT_NEW (policy decided the packet). */
  readonly flags?: number;
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

  // The endpoint table.
  { name: 'an endpoint without an entry drops everything (fail closed)', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: null }, ids: [ID_POD, ID_PEER], drop: SluiceDropReason.ENDPOINT_UNKNOWN, flags: 0 },
  { name: 'an endpoint without an entry: into the pod too', prog: 'to_container', src: PEER, dst: POD,
    l4: udp(53, 5353), setup: { endpoint: null }, ids: [ID_PEER, ID_POD], drop: SluiceDropReason.ENDPOINT_UNKNOWN, flags: 0 },

  // Isolation: an isolated direction without an ALLOW drops; the other direction is untouched.
  { name: 'isolated for egress, no entry: TCP out is denied', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress') }, ids: [ID_POD, ID_PEER],
    drop: SluiceDropReason.POLICY_DENIED },
  { name: 'isolated for ingress, no entry: UDP in is denied', prog: 'to_container', src: PEER, dst: POD,
    l4: udp(53, 5353), setup: { endpoint: isolated('ingress') }, ids: [ID_PEER, ID_POD],
    drop: SluiceDropReason.POLICY_DENIED },
  { name: 'isolated for ingress only: egress still allows', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('ingress') }, ids: [ID_POD, ID_PEER] },
  { name: 'isolated for egress only: ingress still allows', prog: 'to_container', src: PEER, dst: POD,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress') }, ids: [ID_PEER, ID_POD] },
  { name: 'isolated: ICMP is denied too', prog: 'from_container', src: POD, dst: PEER, l4: echo(8),
    setup: { endpoint: isolated('egress') }, ids: [ID_POD, ID_PEER], drop: SluiceDropReason.POLICY_DENIED },
  { name: 'isolated: other protocols (GRE) are denied too', prog: 'to_container', src: PEER, dst: POD,
    l4: { proto: 'raw', protocol: IPPROTO.GRE, payload: Buffer.alloc(8) }, setup: { endpoint: isolated('ingress') },
    ids: [ID_PEER, ID_POD], drop: SluiceDropReason.POLICY_DENIED },

  // Entries by identity, rules without ports (prefix 72).
  { name: 'an ALLOW for the peer\'s identity passes and reports its rule', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress'), policy: [allowAll(EP, ID_PEER, EGRESS, 7003)] },
    ids: [ID_POD, ID_PEER], ruleId: 7003 },
  { name: 'ingress is keyed by the source identity', prog: 'to_container', src: PEER, dst: POD, l4: udp(53, 5353),
    setup: { endpoint: isolated('ingress'), policy: [allowAll(EP, ID_PEER, INGRESS, 7002)] }, ids: [ID_PEER, ID_POD],
    ruleId: 7002 },
  { name: 'an ALLOW for another identity does not match', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress'), policy: [allowAll(EP, ID_PEER + 1, EGRESS, 7004)] },
    ids: [ID_POD, ID_PEER], drop: SluiceDropReason.POLICY_DENIED },
  { name: 'ingress: an ALLOW of the pod\'s own identity does not match the peer', prog: 'to_container', src: PEER,
    dst: POD, l4: tcp(80, 40000), setup: { endpoint: isolated('ingress'), policy: [allowAll(EP, ID_POD, INGRESS, 7006)] },
    ids: [ID_PEER, ID_POD], drop: SluiceDropReason.POLICY_DENIED },
  { name: 'an ALLOW of the other direction does not match', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress'), policy: [allowAll(EP, ID_PEER, INGRESS, 7005)] },
    ids: [ID_POD, ID_PEER], drop: SluiceDropReason.POLICY_DENIED },
  { name: 'another endpoint\'s ALLOW does not match', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress'), policy: [allowAll(EP + 1, ID_PEER, EGRESS, 7007)] },
    ids: [ID_POD, ID_PEER], drop: SluiceDropReason.POLICY_DENIED },
  { name: 'an any-peer ALLOW (identity 0) matches every peer', prog: 'from_container', src: POD, dst: '192.0.2.1',
    l4: tcp(40001, 443), setup: { endpoint: isolated('egress'), policy: [allowAll(EP, 0, EGRESS, 7008)] },
    ids: [ID_POD, SluiceIdentityReserved.WORLD], ruleId: 7008 },
  { name: 'the peer\'s own entry is tried before any-peer', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress'),
      policy: [allowAll(EP, 0, EGRESS, 7010), allowAll(EP, ID_PEER, EGRESS, 7011)] }, ids: [ID_POD, ID_PEER], ruleId: 7011 },
  { name: 'an entry with an unknown action fails closed', prog: 'from_container', src: POD, dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress'), policy: [allowAll(EP, ID_PEER, EGRESS, 7012, 9)] },
    ids: [ID_POD, ID_PEER], drop: SluiceDropReason.POLICY_DENIED, ruleId: 7012 },
  { name: 'an entry with an unknown action is not skipped for an any-peer ALLOW', prog: 'from_container', src: POD,
    dst: PEER, l4: tcp(40000, 80), setup: { endpoint: isolated('egress'),
      policy: [allowAll(EP, ID_PEER, EGRESS, 7013, 9), allowAll(EP, 0, EGRESS, 7014)] },
    ids: [ID_POD, ID_PEER], drop: SluiceDropReason.POLICY_DENIED, ruleId: 7013 },
  { name: 'WORLD is an identity like any other', prog: 'from_container', src: POD, dst: '192.0.2.1',
    l4: tcp(40001, 443), setup: { endpoint: isolated('egress'),
      policy: [allowAll(EP, SluiceIdentityReserved.WORLD, EGRESS, 7015)] },
    ids: [ID_POD, SluiceIdentityReserved.WORLD], ruleId: 7015 },

  // ipcache: longest prefix wins.
  ...lpmRows(),

  // Source check on traffic leaving the pod.
  { name: 'a source other than the pod\'s address is spoofed', prog: 'from_container', src: '10.0.1.6', dst: PEER,
    l4: tcp(40000, 80), ids: [SluiceIdentityReserved.WORLD, ID_PEER], drop: SluiceDropReason.SPOOFED_SOURCE, flags: 0 },
  { name: 'a spoofed source names the identity it impersonates', prog: 'from_container', src: PEER, dst: POD,
    l4: tcp(40000, 80), ids: [ID_PEER, ID_POD], drop: SluiceDropReason.SPOOFED_SOURCE, flags: 0 },
  { name: 'the source check comes before policy', prog: 'from_container', src: '10.0.1.6', dst: PEER,
    l4: tcp(40000, 80), setup: { endpoint: isolated('egress') }, ids: [SluiceIdentityReserved.WORLD, ID_PEER],
    drop: SluiceDropReason.SPOOFED_SOURCE, flags: 0 },
  { name: 'traffic into the pod may come from any source', prog: 'to_container', src: '198.51.100.9', dst: POD,
    l4: tcp(443, 40000), ids: [SluiceIdentityReserved.WORLD, ID_POD] },
];

/** ipBlock-style CIDRs: the identity of the longest prefix decides which entry applies. */
function lpmRows(): Row[] {
  const ipcache = { '10.0.0.0/8': 2000, '10.0.2.0/24': 2100, [PEER]: ID_PEER, [POD]: ID_POD };
  const setup: Setup = { ipcache, endpoint: isolated('egress'), policy: [allowAll(EP, 2000, EGRESS, 8001)] };
  const out = (dst: string, ids: readonly [number, number], allowed: boolean): Row => ({
    name: `LPM: ${dst} resolves to ${ids[1]}`, prog: 'from_container', src: POD, dst, l4: tcp(40000, 80), setup, ids,
    ...(allowed ? { ruleId: 8001 } : { drop: SluiceDropReason.POLICY_DENIED }),
  });
  return [
    out(PEER, [ID_POD, ID_PEER], false), // the /32 inside the allowed /8 wins
    out('10.0.2.8', [ID_POD, 2100], false), // the /24 inside the /8 wins
    out('10.9.9.9', [ID_POD, 2000], true), // only the /8 matches
    out('11.0.0.1', [ID_POD, SluiceIdentityReserved.WORLD], false), // nothing matches
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
      flags: row.flags ?? NEW,
    });
    assert.deepEqual(eventFields(r.events), [expected]);
    assert.deepEqual(r.metrics, oneCounter(dir, row.drop ?? SluiceDropReason.NONE, frame.length));
  });
}

test('an endpoint without an address (ipv4 0) has no source check', async () => {
  apply({});
  const other = h.addEndpoint({ endpointId: EP + 1, ipv4: 0 });
  const frame = ipv4Frame({ src: '10.0.1.6', dst: PEER }, tcp(40000, 80));
  const r = await h.run('from_container', frame, { as: other });
  assert.equal(r.retval, TC_ACT_OK);
  assert.deepEqual(eventFields(r.events).map((e) => [e.endpointId, e.dropReason]), [[EP + 1, SluiceDropReason.NONE]]);
});

test('an endpoint without an entry drops ARP too (nothing of an unknown pod passes)', async () => {
  apply({ endpoint: null });
  const frame = arpFrame({ senderIp: POD, targetIp: PEER });
  const r = await h.run('from_container', frame);
  assert.equal(r.retval, TC_ACT_SHOT);
  assert.deepEqual(eventFields(r.events), [expectedEvent({ direction: EGRESS, endpointId: EP, ifindex: LO_IFINDEX, frame },
    { dropReason: SluiceDropReason.ENDPOINT_UNKNOWN })]);
});

test('endpoints sharing the maps are told apart by their endpoint id', async () => {
  apply({});
  const other = h.addEndpoint({ endpointId: EP + 2, ipv4: parseIpv4(POD) });
  h.dp.maps.endpoints.update(EP + 2, isolated('egress'));
  h.dp.maps.policy.update(...allowAll(EP, ID_PEER, EGRESS, 9001)); // EP's entry: EP is not even isolated
  const frame = ipv4Frame({ src: POD, dst: PEER }, tcp(40000, 80));
  const mine = await h.run('from_container', frame);
  const theirs = await h.run('from_container', frame, { as: other });
  assert.equal(mine.retval, TC_ACT_OK);
  assert.equal(theirs.retval, TC_ACT_SHOT);
  assert.deepEqual(eventFields(theirs.events).map((e) => [e.endpointId, e.dropReason]),
    [[EP + 2, SluiceDropReason.POLICY_DENIED]]);
});

test('isolation and policy change take effect on the next packet, without a reload', async () => {
  apply({});
  const frame = ipv4Frame({ src: POD, dst: PEER }, udp(5353, 53));
  const verdict = async (): Promise<number> => {
    h.dp.maps.conntrack.deleteBatch([...h.dp.maps.conntrack.entries()].map(([k]) => k)); // judge each packet anew
    return (await h.run('from_container', frame)).retval;
  };
  assert.equal(await verdict(), TC_ACT_OK);
  h.dp.maps.endpoints.update(EP, endpointEntry({ ingress: false, egress: true }, 1));
  assert.equal(await verdict(), TC_ACT_SHOT);
  h.dp.maps.policy.update(...allowAll(EP, ID_PEER, EGRESS, 1));
  assert.equal(await verdict(), TC_ACT_OK);
  h.dp.maps.policy.delete(allowAll(EP, ID_PEER, EGRESS, 1)[0]);
  assert.equal(await verdict(), TC_ACT_SHOT);
});
