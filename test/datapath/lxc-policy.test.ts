/**
 * NetworkPolicy ports and protocols in lxc.o (BPF_PROG_TEST_RUN): exact
 * ports, protocol-only rules, endPort ranges as port classes, SCTP, ICMP and
 * other port-less protocols (allowed by rules without ports only), the most
 * specific entry winning, peer identity before any peer, and the endpoint's
 * port-class masks (a superset is harmless, a missing bit hides a class).
 * The endpoint is isolated in both directions; each row is one packet that
 * opens a connection (so policy decides it), with its exact verdict, rule
 * and event, run once with every class in the masks and once with exactly
 * the classes of the row's entries, as the compiler writes them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceDirection, SluiceDropReason, SluiceEventFlags, SluicePolicyAction, SluicePolicyClass,
  type PolicyEntry, type PolicyKey,
} from '../../src/datapath/generated/abi.js';
import type { PolicyClasses } from '../../src/datapath/maps/endpoints.js';
import { policyClassesOf } from '../../src/datapath/maps/policy-v3.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import {
  directionOf, eventFields, LxcHarness, oneCounter, TC_ACT_OK, TC_ACT_SHOT, type LxcProgram,
} from '../helpers/lxc-harness.js';
import { IPPROTO, ipv4Frame, type L4Spec } from '../helpers/packet.js';
import { allowAll, allowPorts, allowProtocol, isolated, type Entry } from '../helpers/policy.js';

const EP = 9;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const OTHER = '10.0.2.8';
const ID_POD = 1000;
const ID_PEER = 1001;
const ID_OTHER = 1002;
const { INGRESS, EGRESS } = SluiceDirection;
const { TCP, UDP, SCTP, ICMP, GRE } = IPPROTO;
const DENIED = SluiceDropReason.POLICY_DENIED;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

/** An entry the compiler would never write (policyKey refuses it): the datapath must not match it either. */
function raw(portPrefixlen: number, protocol: number, dport: number, ruleId: number): Entry {
  const key: PolicyKey = { endpointId: EP, remoteIdentity: ID_PEER, direction: INGRESS, protocol, portPrefixlen, dport };
  const entry: PolicyEntry = { action: SluicePolicyAction.ALLOW, ruleId };
  return [key, entry];
}

const tcp = (dport: number): L4Spec => ({ proto: 'tcp', sport: 40000, dport });
const udp = (dport: number): L4Spec => ({ proto: 'udp', sport: 40000, dport });
const sctp = (dport: number): L4Spec => ({ proto: 'sctp', sport: 40000, dport, vtag: 1 });
const ping: L4Spec = { proto: 'icmp', type: 8, code: 0, id: 3, seq: 1 };
const unreachable: L4Spec = { proto: 'icmp', type: 3, code: 3, payload: Buffer.alloc(28) };
const gre: L4Spec = { proto: 'raw', protocol: GRE, payload: Buffer.alloc(8) };

interface Row {
  readonly name: string;
  readonly policy: readonly Entry[];
  readonly l4: L4Spec;
  /** Default: into the pod from PEER. */
  readonly prog?: LxcProgram;
  readonly peer?: string;
  /** The rule reported, or DENIED with the rule (0: a miss). */
  readonly allow?: number;
  readonly deny?: number;
  /** The endpoint's class masks in both runs; default: every class, then exactly the entries' classes. */
  readonly classes?: PolicyClasses;
}

const bit = (c: number): number => 2 ** c;
const { PORT_FULL, NO_PORTS } = SluicePolicyClass;

const ing = (ruleId: number, start: number, end = start, protocol: number = TCP, id = ID_PEER): Entry[] =>
  allowPorts(EP, id, INGRESS, protocol, ruleId, start, end);

const rows: Row[] = [
  // Exact ports: protocol and port must both match.
  { name: 'TCP to the allowed port', policy: ing(1, 80), l4: tcp(80), allow: 1 },
  { name: 'TCP to the next port', policy: ing(1, 80), l4: tcp(81), deny: 0 },
  { name: 'TCP to the port below', policy: ing(1, 80), l4: tcp(79), deny: 0 },
  { name: 'UDP to a TCP-only port', policy: ing(1, 80), l4: udp(80), deny: 0 },
  { name: 'SCTP to a TCP-only port', policy: ing(1, 80), l4: sctp(80), deny: 0 },
  { name: 'UDP port', policy: ing(2, 53, 53, UDP), l4: udp(53), allow: 2 },
  { name: 'TCP to a UDP-only port', policy: ing(2, 53, 53, UDP), l4: tcp(53), deny: 0 },
  { name: 'the source port does not matter', policy: ing(1, 80), l4: { proto: 'tcp', sport: 80, dport: 9999 }, deny: 0 },

  // SCTP: ports parsed and matched like TCP's.
  { name: 'SCTP to the allowed port', policy: ing(3, 3868, 3868, SCTP), l4: sctp(3868), allow: 3 },
  { name: 'SCTP to another port', policy: ing(3, 3868, 3868, SCTP), l4: sctp(3869), deny: 0 },
  { name: 'TCP to the SCTP port', policy: ing(3, 3868, 3868, SCTP), l4: tcp(3868), deny: 0 },
  { name: 'SCTP range', policy: ing(4, 36412, 36422, SCTP), l4: sctp(36420), allow: 4 },

  // Protocol without ports: every port of that protocol, nothing else.
  { name: 'protocol-only UDP: port 1', policy: [allowProtocol(EP, ID_PEER, INGRESS, UDP, 5)], l4: udp(1), allow: 5 },
  { name: 'protocol-only UDP: port 65535', policy: [allowProtocol(EP, ID_PEER, INGRESS, UDP, 5)], l4: udp(65535), allow: 5 },
  { name: 'protocol-only UDP: port 0', policy: [allowProtocol(EP, ID_PEER, INGRESS, UDP, 5)], l4: udp(0), allow: 5 },
  { name: 'protocol-only UDP: not TCP', policy: [allowProtocol(EP, ID_PEER, INGRESS, UDP, 5)], l4: tcp(53), deny: 0 },

  // endPort ranges, as the prefixes that cover them.
  ...[[7999, false], [8000, true], [8001, true], [8063, true], [8064, true], [8095, true], [8100, true], [8101, false],
    [8192, false]].map(([port, ok]): Row => ({
    name: `range 8000-8100: port ${port as number}`, policy: ing(6, 8000, 8100), l4: tcp(port as number),
    ...(ok ? { allow: 6 } : { deny: 0 }),
  })),
  { name: 'range 0-65535 is every TCP port', policy: ing(7, 0, 65535), l4: tcp(12345), allow: 7 },
  { name: 'range 1-65534 excludes 0', policy: ing(8, 1, 65534), l4: tcp(0), deny: 0 },
  { name: 'range 1-65534 excludes 65535', policy: ing(8, 1, 65534), l4: tcp(65535), deny: 0 },
  { name: 'range 1-65534 includes 32768', policy: ing(8, 1, 65534), l4: tcp(32768), allow: 8 },

  // ICMP and other port-less protocols: rules without ports only.
  { name: 'ICMP echo allowed by a rule without ports', policy: [allowAll(EP, ID_PEER, INGRESS, 9)], l4: ping, allow: 9 },
  { name: 'ICMP error allowed by a rule without ports', policy: [allowAll(EP, ID_PEER, INGRESS, 9)], l4: unreachable, allow: 9 },
  { name: 'ICMP is not allowed by a TCP port rule', policy: ing(1, 80), l4: ping, deny: 0 },
  { name: 'ICMP is not allowed by protocol-only TCP', policy: [allowProtocol(EP, ID_PEER, INGRESS, TCP, 10)], l4: ping, deny: 0 },
  { name: 'ICMP is not allowed by a TCP range covering its type and code', policy: ing(11, 0, 65535), l4: unreachable, deny: 0 },
  { name: 'ICMP ignores a protocol-ICMP entry the compiler would never write', policy: [raw(0, ICMP, 0, 12)],
    l4: ping, deny: 0 },
  { name: 'ICMP ignores a port-0 ICMP entry', policy: [raw(PORT_FULL, ICMP, 0, 13)], l4: ping, deny: 0 },
  { name: 'ICMP type 3 code 3 ignores a TCP/UDP entry for "port" 3', policy: [...ing(14, 3), ...ing(14, 3, 3, UDP)],
    l4: unreachable, deny: 0 },
  { name: 'GRE allowed by a rule without ports', policy: [allowAll(EP, ID_PEER, INGRESS, 15)], l4: gre, allow: 15 },
  { name: 'GRE ignores a protocol-GRE entry', policy: [raw(0, GRE, 0, 16)], l4: gre, deny: 0 },
  { name: 'GRE ignores a TCP port-0 entry', policy: ing(17, 0), l4: gre, deny: 0 },
  { name: 'TCP ignores a no-ports entry that names TCP', policy: [raw(NO_PORTS, TCP, 0, 18)], l4: tcp(80), deny: 0 },
  { name: 'TCP ignores a no-ports entry with a port', policy: [raw(NO_PORTS, 0, 80, 19)], l4: tcp(80), deny: 0 },

  // Most specific entry wins; the peer's identity before any peer.
  { name: 'an exact port beats its protocol-only rule', policy: [allowProtocol(EP, ID_PEER, INGRESS, TCP, 20), ...ing(21, 443)],
    l4: tcp(443), allow: 21 },
  { name: 'the protocol-only rule covers the other ports', policy: [allowProtocol(EP, ID_PEER, INGRESS, TCP, 20), ...ing(21, 443)],
    l4: tcp(444), allow: 20 },
  { name: 'a port beats a rule without ports', policy: [allowAll(EP, ID_PEER, INGRESS, 22), ...ing(23, 443)], l4: tcp(443), allow: 23 },
  { name: 'a rule without ports covers everything else', policy: [allowAll(EP, ID_PEER, INGRESS, 22), ...ing(23, 443)],
    l4: udp(9), allow: 22 },
  { name: 'a port inside a range: the port wins', policy: [...ing(24, 8000, 8100), ...ing(25, 8050)], l4: tcp(8050), allow: 25 },
  { name: 'the peer\'s range before an any-peer exact port', policy: [...ing(26, 8000, 8100), ...ing(27, 8050, 8050, TCP, 0)],
    l4: tcp(8050), allow: 26 },
  { name: 'another peer gets the any-peer port', policy: [...ing(26, 8000, 8100), ...ing(27, 8050, 8050, TCP, 0)],
    l4: tcp(8050), peer: OTHER, allow: 27 },
  { name: 'another peer, another port: denied', policy: [...ing(26, 8000, 8100), ...ing(27, 8050, 8050, TCP, 0)],
    l4: tcp(8051), peer: OTHER, deny: 0 },
  { name: 'the peer\'s miss falls back to any peer', policy: [...ing(28, 80), ...ing(29, 443, 443, TCP, 0)], l4: tcp(443), allow: 29 },

  // Class masks: only the classes named are looked up.
  { name: 'a port whose class the mask lacks is not found', policy: ing(40, 80), classes: { ingress: bit(0), egress: 0 }, l4: tcp(80),
    deny: 0 },
  { name: 'a port whose class only the egress mask names is not found', policy: ing(40, 80),
    classes: { ingress: 0, egress: bit(PORT_FULL) }, l4: tcp(80), deny: 0 },
  { name: 'a hidden exact port falls back to its protocol-only rule', policy: [allowProtocol(EP, ID_PEER, INGRESS, TCP, 41), ...ing(42, 443)],
    classes: { ingress: bit(0), egress: 0 }, l4: tcp(443), allow: 41 },
  { name: 'a range block needs its own class: 8064-8095 is /11', policy: ing(43, 8000, 8100),
    classes: { ingress: bit(10) | bit(12) | bit(14), egress: 0 }, l4: tcp(8070), deny: 0 },
  { name: 'ICMP needs the no-ports class', policy: [allowAll(EP, ID_PEER, INGRESS, 44)], classes: { ingress: bit(PORT_FULL), egress: 0 },
    l4: ping, deny: 0 },
  { name: 'ICMP tries nothing but the no-ports class', policy: [allowAll(EP, ID_PEER, INGRESS, 44)],
    classes: { ingress: bit(NO_PORTS), egress: 0 }, l4: ping, allow: 44 },
  { name: 'an empty mask denies whatever the entries', policy: [allowAll(EP, 0, INGRESS, 45), ...ing(46, 80, 80, TCP, 0)],
    classes: { ingress: 0, egress: 0 }, l4: tcp(80), deny: 0 },
  { name: 'mask bits past the classes are ignored', policy: ing(47, 80), classes: { ingress: (0xfffc0000 | bit(PORT_FULL)) >>> 0, egress: 0 },
    l4: tcp(80), allow: 47 },

  // Egress: the destination's port and identity.
  { name: 'egress: TCP to an allowed destination port', prog: 'from_container',
    policy: allowPorts(EP, ID_PEER, EGRESS, TCP, 30, 443), l4: tcp(443), allow: 30 },
  { name: 'egress: another port', prog: 'from_container', policy: allowPorts(EP, ID_PEER, EGRESS, TCP, 30, 443), l4: tcp(444), deny: 0 },
  { name: 'egress: an ingress rule does not apply', prog: 'from_container', policy: ing(31, 443), l4: tcp(443), deny: 0 },
];

function protocolOf(l4: L4Spec): number {
  return l4.proto === 'tcp' ? TCP : l4.proto === 'udp' ? UDP : l4.proto === 'sctp' ? SCTP : l4.proto === 'icmp' ? ICMP : l4.protocol;
}

/** The masks the compiler would write for these entries. */
function exactClasses(policy: readonly Entry[]): PolicyClasses {
  const of = (dir: number): number => policyClassesOf(policy.filter(([k]) => k.direction === dir).map(([k]) => k));
  return { ingress: of(INGRESS), egress: of(EGRESS) };
}

type Mode = 'given classes' | 'every class' | 'exact classes';
const runs = rows.flatMap((r): [Mode, Row][] => r.classes !== undefined ? [['given classes', r]] : [['every class', r], ['exact classes', r]]);
for (const [mode, row] of runs) {
  test(`${row.name} (${mode})`, async () => {
    h.reset();
    setTraceAllowed(h.dp.maps.config, true);
    h.dp.maps.ipcache.updateBatch([
      [ipcacheKey(POD), { identity: ID_POD, flags: 0 }],
      [ipcacheKey(PEER), { identity: ID_PEER, flags: 0 }],
      [ipcacheKey(OTHER), { identity: ID_OTHER, flags: 0 }],
    ]);
    const classes = mode === 'every class' ? undefined : (row.classes ?? exactClasses(row.policy));
    h.dp.maps.endpoints.update(EP, isolated('both', 0, classes));
    h.dp.maps.policy.updateBatch(row.policy);
    const prog = row.prog ?? 'to_container';
    const peer = row.peer ?? PEER;
    const [src, dst] = prog === 'to_container' ? [peer, POD] : [POD, peer];
    const frame = ipv4Frame({ src, dst }, row.l4);
    const r = await h.run(prog, frame);
    const denied = row.deny !== undefined;
    assert.equal(r.retval, denied ? TC_ACT_SHOT : TC_ACT_OK);
    assert.deepEqual(eventFields(r.events).map((e) => ({ protocol: e.protocol, reason: e.dropReason, rule: e.ruleId, flags: e.flags })),
      [{ protocol: protocolOf(row.l4), reason: denied ? DENIED : SluiceDropReason.NONE, rule: row.deny ?? row.allow,
        flags: SluiceEventFlags.CT_NEW }]);
    assert.deepEqual(r.metrics, oneCounter(directionOf(prog), denied ? DENIED : SluiceDropReason.NONE, frame.length));
    // Only connections policy allowed are tracked; ICMP errors never are.
    const opens = !denied && !(row.l4.proto === 'icmp' && row.l4.type !== 8);
    assert.deepEqual(r.counters, opens ? { CT_CREATED: 1n } : {});
  });
}
