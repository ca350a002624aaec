/**
 * bpf/lib/parse.h through lxc.o (BPF_PROG_TEST_RUN): what each layer accepts
 * and rejects. Truncation at every layer, malformed IPv4 headers, options,
 * fragments, non-IP frames. Tracing of allowed packets is on, so a forwarded
 * packet's event shows exactly what the parser extracted (and CT_NEW: every
 * row is a packet no connection knows). Fragments end with sequences: a later
 * fragment takes the ports of its first fragment, or is FRAG_UNKNOWN.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SluiceDropReason, SluiceEventFlags,
} from '../../src/datapath/generated/abi.js';
import { setTraceAllowed } from '../../src/datapath/maps/config.js';
import { ipcacheKey } from '../../src/datapath/maps/ipcache.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { isBpfError } from '../../src/datapath/errors.js';
import {
  directionOf, eventFields, expectedEvent, LxcHarness, oneCounter, TC_ACT_OK, TC_ACT_SHOT, type EventFields,
  type LxcProgram,
} from '../helpers/lxc-harness.js';
import { isolated } from '../helpers/policy.js';
import {
  arpFrame, ETH_HLEN, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ethernet, IPPROTO, ipv4Fragments, ipv4Frame, padFrame,
  truncateIpv4Payload, type Ipv4Spec,
} from '../helpers/packet.js';

const EP = 7;
const POD = '10.0.1.5';
const PEER = '10.0.2.7';
const ID_POD = 1000;
const ID_PEER = 1001;
/** test-run executes on loopback unless the ctx names another device. */
const LO_IFINDEX = 1;
const { FRAGMENT, LATER_FRAG, IP_OPTIONS, CT_NEW: NEW } = SluiceEventFlags;
const { INVALID_IP, INVALID_L4, UNSUPPORTED_L3, FRAG_UNKNOWN } = SluiceDropReason;

let h: LxcHarness;
before(() => {
  h = LxcHarness.open({ endpointId: EP, ipv4: parseIpv4(POD) });
});
after(() => h.close());

/** denyPeer: the pod isolated for egress with no rule, so the peer is denied. */
function setup(opts: { denyPeer?: boolean } = {}): void {
  h.reset();
  setTraceAllowed(h.dp.maps.config, true);
  h.dp.maps.ipcache.updateBatch([
    [ipcacheKey(POD), { identity: ID_POD, flags: 0 }],
    [ipcacheKey(PEER), { identity: ID_PEER, flags: 0 }],
  ]);
  if (opts.denyPeer) h.dp.maps.endpoints.update(EP, isolated('egress'));
}

const out: Ipv4Spec = { src: POD, dst: PEER };

/** Fields of a packet from the pod to the peer that got through parsing. */
const parsedOut = { saddr: parseIpv4(POD), daddr: parseIpv4(PEER), srcIdentity: ID_POD, dstIdentity: ID_PEER };
/** IP addresses and protocol are read before the rest of the header is judged. */
const ipOnly = (protocol: number) => ({ saddr: parseIpv4(POD), daddr: parseIpv4(PEER), protocol });

interface Row {
  readonly name: string;
  readonly prog?: LxcProgram; // default from_container
  readonly frame: Buffer;
  /** undefined = forwarded without any event (ARP) */
  readonly event?: Partial<EventFields>;
  readonly denyPeer?: boolean;
  readonly ctx?: Buffer;
}

const tcp80 = { proto: 'tcp', sport: 40000, dport: 80 } as const;
const udp53 = { proto: 'udp', sport: 5353, dport: 53, payload: Buffer.alloc(64, 0x61) } as const;
const tcpFrame = ipv4Frame(out, tcp80);
const udpFrame = ipv4Frame(out, udp53);
const nops = (n: number) => Buffer.alloc(n, 0x01); // IPv4 option NOP
/** struct __sk_buff (192 bytes) with gso_size (offset 176) set, for BIG TCP. */
function skbWithGsoSize(gsoSize: number): Buffer {
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(gsoSize, 176);
  return ctx;
}
function withTotLen(frame: Buffer, totLen: number): Buffer {
  const f = Buffer.from(frame);
  f.writeUInt16BE(totLen, ETH_HLEN + 2);
  return f;
}

const [udpFirst, udpLater] = ipv4Fragments(out, udp53, 32);
const [tcpFirst, tcpLater] = ipv4Fragments(out, { ...tcp80, payload: Buffer.alloc(40) }, 24);
const [icmpFirst, icmpLater] = ipv4Fragments(out, { proto: 'icmp', type: 8, code: 0, payload: Buffer.alloc(40) }, 16);
const tinyTcpFirst = ipv4Fragments(out, { ...tcp80, payload: Buffer.alloc(40) }, 8)[0];
assert.ok(udpFirst && udpLater && tcpFirst && tcpLater && icmpFirst && icmpLater && tinyTcpFirst);

const rows: Row[] = [
  // Non-IP.
  { name: 'ARP passes without an event', frame: arpFrame({ senderIp: POD, targetIp: PEER }) },
  { name: 'ARP into the pod passes without an event', prog: 'to_container',
    frame: arpFrame({ op: 2, senderIp: PEER, targetIp: POD }) },
  { name: 'IPv6 is unsupported L3 (fail closed until IPv6 lands)',
    frame: ethernet(ETH_P_IPV6, Buffer.alloc(60)), event: { dropReason: UNSUPPORTED_L3 } },
  { name: 'a VLAN tag is unsupported L3', frame: ethernet(ETH_P_8021Q, Buffer.alloc(46)),
    event: { dropReason: UNSUPPORTED_L3 } },
  { name: 'a frame with only an Ethernet header and an unknown type is unsupported L3',
    frame: ethernet(0x1234, Buffer.alloc(0)), event: { dropReason: UNSUPPORTED_L3 } },

  // IPv4 header.
  // A truncated fixed IPv4 header is in lxc-veth.test.ts: test-run refuses it (see the end of this file).
  { name: 'ihl 4 is below the minimum', frame: ipv4Frame({ ...out, ihl: 4 }, tcp80), event: { dropReason: INVALID_IP } },
  { name: 'ihl 0', frame: ipv4Frame({ ...out, ihl: 0 }, tcp80), event: { dropReason: INVALID_IP } },
  { name: 'version 6 behind an IPv4 ethertype', frame: ipv4Frame({ ...out, version: 6 }, tcp80),
    event: { dropReason: INVALID_IP } },
  { name: 'IP options beyond the end of the packet',
    frame: ipv4Frame({ ...out, options: nops(40) }, tcp80).subarray(0, ETH_HLEN + 20 + 12),
    event: { ...ipOnly(IPPROTO.TCP), dropReason: INVALID_IP } },
  { name: 'tot_len longer than the packet (truncated in transit)', frame: tcpFrame.subarray(0, tcpFrame.length - 1),
    event: { ...ipOnly(IPPROTO.TCP), dropReason: INVALID_IP } },
  { name: 'tot_len shorter than the header', frame: withTotLen(tcpFrame, 19),
    event: { ...ipOnly(IPPROTO.TCP), dropReason: INVALID_IP } },
  { name: 'tot_len 0 outside BIG TCP', frame: withTotLen(tcpFrame, 0),
    event: { ...ipOnly(IPPROTO.TCP), dropReason: INVALID_IP } },
  { name: 'tot_len 0 on a GSO packet (BIG TCP) uses the skb length', frame: withTotLen(tcpFrame, 0),
    ctx: skbWithGsoSize(1448), event: { ...parsedOut, protocol: IPPROTO.TCP, sport: 40000, dport: 80, flags: NEW } },
  { name: 'Ethernet padding after tot_len is not data', frame: padFrame(ipv4Frame(out, { proto: 'udp', sport: 1, dport: 2 }), 60),
    event: { ...parsedOut, protocol: IPPROTO.UDP, sport: 1, dport: 2, flags: NEW } },

  // IPv4 options: allowed, L4 found after them, flagged.
  { name: 'options (4 bytes): L4 parsed after them, flagged', frame: ipv4Frame({ ...out, options: nops(4) }, tcp80),
    event: { ...parsedOut, protocol: IPPROTO.TCP, sport: 40000, dport: 80, flags: IP_OPTIONS | NEW } },
  { name: 'options (40 bytes, ihl 15): UDP ports after them', frame: ipv4Frame({ ...out, options: nops(40) }, udp53),
    event: { ...parsedOut, protocol: IPPROTO.UDP, sport: 5353, dport: 53, flags: IP_OPTIONS | NEW } },
  { name: 'options and a truncated TCP header',
    frame: truncateIpv4Payload(ipv4Frame({ ...out, options: nops(8) }, tcp80), 19),
    event: { ...ipOnly(IPPROTO.TCP), flags: IP_OPTIONS, dropReason: INVALID_L4 } },

  // L4 headers: exactly enough passes, one byte less is truncated.
  { name: 'TCP header of exactly 20 bytes', frame: truncateIpv4Payload(tcpFrame, 20),
    event: { ...parsedOut, protocol: IPPROTO.TCP, sport: 40000, dport: 80, flags: NEW } },
  { name: 'TCP header truncated (19 bytes)', frame: truncateIpv4Payload(tcpFrame, 19),
    event: { ...ipOnly(IPPROTO.TCP), dropReason: INVALID_L4 } },
  { name: 'TCP header missing', frame: truncateIpv4Payload(tcpFrame, 0),
    event: { ...ipOnly(IPPROTO.TCP), dropReason: INVALID_L4 } },
  { name: 'UDP header truncated (7 bytes)', frame: truncateIpv4Payload(udpFrame, 7),
    event: { ...ipOnly(IPPROTO.UDP), dropReason: INVALID_L4 } },
  { name: 'UDP header cut by tot_len although the frame is padded',
    frame: padFrame(truncateIpv4Payload(udpFrame, 4), 60), event: { ...ipOnly(IPPROTO.UDP), dropReason: INVALID_L4 } },
  { name: 'ICMP header of exactly 8 bytes', frame: ipv4Frame(out, { proto: 'icmp', type: 8, code: 0 }),
    event: { ...parsedOut, protocol: IPPROTO.ICMP, sport: 8, dport: 0, flags: NEW } },
  { name: 'ICMP header truncated (7 bytes)', frame: truncateIpv4Payload(ipv4Frame(out, { proto: 'icmp', type: 8, code: 0 }), 7),
    event: { ...ipOnly(IPPROTO.ICMP), dropReason: INVALID_L4 } },
  { name: 'SCTP common header truncated (11 bytes)',
    frame: truncateIpv4Payload(ipv4Frame(out, { proto: 'sctp', sport: 1, dport: 2 }), 11),
    event: { ...ipOnly(IPPROTO.SCTP), dropReason: INVALID_L4 } },
  { name: 'unknown protocol with no payload: nothing to truncate',
    frame: ipv4Frame(out, { proto: 'raw', protocol: IPPROTO.GRE, payload: Buffer.alloc(0) }),
    event: { ...parsedOut, protocol: IPPROTO.GRE, flags: NEW } },

  // Fragments, one at a time (sequences are below).
  { name: 'first UDP fragment: ports parsed, FRAGMENT flag', frame: udpFirst,
    event: { ...parsedOut, protocol: IPPROTO.UDP, sport: 5353, dport: 53, flags: FRAGMENT | NEW } },
  { name: 'first TCP fragment', frame: tcpFirst,
    event: { ...parsedOut, protocol: IPPROTO.TCP, sport: 40000, dport: 80, flags: FRAGMENT | NEW } },
  { name: 'a later UDP fragment without its first fragment: ports 0, FRAG_UNKNOWN', frame: udpLater,
    event: { ...parsedOut, protocol: IPPROTO.UDP, flags: FRAGMENT | LATER_FRAG, dropReason: FRAG_UNKNOWN } },
  { name: 'the last TCP fragment (no MF, offset set) without its first', frame: tcpLater,
    event: { ...parsedOut, protocol: IPPROTO.TCP, flags: FRAGMENT | LATER_FRAG, dropReason: FRAG_UNKNOWN } },
  { name: 'a later ICMP fragment without its first: no type/code', frame: icmpLater,
    event: { ...parsedOut, protocol: IPPROTO.ICMP, flags: FRAGMENT | LATER_FRAG, dropReason: FRAG_UNKNOWN } },
  { name: 'a later fragment shorter than any L4 header is not "truncated"',
    frame: ipv4Fragments(out, { ...tcp80, payload: Buffer.alloc(4) }, 16)[1] ?? Buffer.alloc(0),
    event: { ...parsedOut, protocol: IPPROTO.TCP, flags: FRAGMENT | LATER_FRAG, dropReason: FRAG_UNKNOWN } },
  { name: 'a tiny first fragment splitting the TCP header is invalid (RFC 1858)', frame: tinyTcpFirst,
    event: { ...ipOnly(IPPROTO.TCP), flags: FRAGMENT, dropReason: INVALID_L4 } },
  { name: 'first fragment of a denied peer drops', frame: udpFirst, denyPeer: true,
    event: { ...parsedOut, protocol: IPPROTO.UDP, sport: 5353, dport: 53, flags: FRAGMENT | NEW,
      dropReason: SluiceDropReason.POLICY_DENIED } },
  { name: 'a later fragment with options, without its first', frame: ipv4Fragments({ ...out, options: nops(4) }, udp53, 32)[1] ?? Buffer.alloc(0),
    event: { ...parsedOut, protocol: IPPROTO.UDP, flags: FRAGMENT | LATER_FRAG | IP_OPTIONS, dropReason: FRAG_UNKNOWN } },
];

for (const row of rows) {
  test(row.name, async () => {
    setup({ denyPeer: row.denyPeer ?? false });
    const prog = row.prog ?? 'from_container';
    const r = await h.run(prog, row.frame, row.ctx ? { ctx: row.ctx } : {});
    const dropReason = row.event?.dropReason ?? SluiceDropReason.NONE;
    assert.equal(r.retval, dropReason === SluiceDropReason.NONE ? TC_ACT_OK : TC_ACT_SHOT);
    const ctx = { direction: directionOf(prog), endpointId: EP, ifindex: LO_IFINDEX, frame: row.frame };
    assert.deepEqual(eventFields(r.events), row.event ? [expectedEvent(ctx, row.event)] : []);
    assert.deepEqual(r.metrics, oneCounter(directionOf(prog), dropReason, row.frame.length));
  });
}

test('test-run refuses frames shorter than their L2 or L3 fixed header', () => {
  // Why two layers of truncation are tested elsewhere: the kernel's test-run
  // wants 14 bytes of Ethernet, and 20 of IPv4 behind ETH_P_IP. Short IPv4
  // frames are sent over a real veth in lxc-veth.test.ts; frames shorter than
  // Ethernet cannot be sent by a pod at all (INVALID_L2 guards skbs whose
  // header is missing from the packet, see parse_header()).
  for (const data of [Buffer.alloc(ETH_HLEN - 1), ethernet(ETH_P_IP, Buffer.alloc(19))]) {
    assert.throws(() => h.testRun(h.dp.fromContainer, { data }), (err: unknown) => isBpfError(err) && err.code === 'EINVAL');
  }
});
