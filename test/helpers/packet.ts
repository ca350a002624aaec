/**
 * A small packet builder for datapath tests: Ethernet, ARP, IPv4 (options,
 * fragment fields, deliberate malformations), TCP, UDP, SCTP and ICMP, with
 * correct checksums, so the programs under test see packets a real stack
 * would send unless a test asks otherwise.
 *
 * Addresses are dotted strings here; the ABI codecs want numbers (see
 * src/datapath/maps/ipv4.ts).
 */
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_8021Q = 0x8100;
export const ETH_HLEN = 14;
export const IPV4_HLEN = 20;

export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, GRE: 47, SCTP: 132 } as const;

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

export interface EthSpec {
  readonly src?: string; // "02:00:00:00:00:01"
  readonly dst?: string;
}

export interface ArpSpec {
  readonly op?: 1 | 2; // request, reply
  readonly senderMac?: string;
  readonly senderIp: string;
  readonly targetMac?: string;
  readonly targetIp: string;
}

export interface Ipv4Spec {
  readonly src: string;
  readonly dst: string;
  readonly ttl?: number;
  readonly id?: number;
  readonly tos?: number;
  readonly dontFragment?: boolean;
  readonly moreFragments?: boolean;
  /** In bytes; a multiple of 8. */
  readonly fragmentOffset?: number;
  /** Raw option bytes, a multiple of 4 (pad with 0 = End of Options List). */
  readonly options?: Buffer;
  /** Overrides for malformed headers; the checksum still covers what is written. */
  readonly ihl?: number;
  readonly totalLength?: number;
  readonly version?: number;
}

export type L4Spec =
  | { readonly proto: 'tcp'; readonly sport: number; readonly dport: number; readonly seq?: number;
      readonly ack?: number; readonly flags?: number; readonly window?: number; readonly payload?: Buffer }
  | { readonly proto: 'udp'; readonly sport: number; readonly dport: number; readonly payload?: Buffer }
  | { readonly proto: 'sctp'; readonly sport: number; readonly dport: number; readonly vtag?: number;
      readonly payload?: Buffer }
  | { readonly proto: 'icmp'; readonly type: number; readonly code: number; readonly id?: number;
      readonly seq?: number; readonly payload?: Buffer }
  /** Any IP protocol number with opaque payload (GRE, ESP, ...). */
  | { readonly proto: 'raw'; readonly protocol: number; readonly payload: Buffer };

const DEFAULT_SRC_MAC = '02:00:00:00:00:01';
const DEFAULT_DST_MAC = '02:00:00:00:00:02';

function mac(text: string): Buffer {
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(`not a MAC address: "${text}"`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

function addrBytes(text: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(parseIpv4(text));
  return b;
}

/** RFC 1071 one's-complement sum of buf, folded and inverted. */
export function internetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  const data = Buffer.concat(parts);
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += (data[data.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** CRC32c (Castagnoli), reflected, as SCTP's checksum (RFC 9260 appendix B). */
export function crc32c(data: Buffer): number {
  let crc = 0xffff_ffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f6_3b78 : crc >>> 1;
  }
  return (crc ^ 0xffff_ffff) >>> 0;
}

function protocolNumber(l4: L4Spec): number {
  switch (l4.proto) {
    case 'tcp': return IPPROTO.TCP;
    case 'udp': return IPPROTO.UDP;
    case 'sctp': return IPPROTO.SCTP;
    case 'icmp': return IPPROTO.ICMP;
    case 'raw': return l4.protocol;
  }
}

/** The TCP/UDP pseudo header (RFC 793 §3.1, RFC 768). */
function pseudoHeader(src: string, dst: string, protocol: number, length: number): Buffer {
  const b = Buffer.alloc(12);
  addrBytes(src).copy(b, 0);
  addrBytes(dst).copy(b, 4);
  b.writeUInt8(protocol, 9);
  b.writeUInt16BE(length, 10);
  return b;
}

/** An L4 segment with its checksum; src/dst feed the TCP/UDP pseudo header. */
export function l4Segment(l4: L4Spec, src: string, dst: string): Buffer {
  switch (l4.proto) {
    case 'tcp': {
      const payload = l4.payload ?? Buffer.alloc(0);
      const h = Buffer.alloc(20);
      h.writeUInt16BE(l4.sport, 0);
      h.writeUInt16BE(l4.dport, 2);
      h.writeUInt32BE(l4.seq ?? 1, 4);
      h.writeUInt32BE(l4.ack ?? 0, 8);
      h.writeUInt8(5 << 4, 12); // data offset: 5 words, no options
      h.writeUInt8(l4.flags ?? TCP_FLAGS.SYN, 13);
      h.writeUInt16BE(l4.window ?? 65535, 14);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(internetChecksum(pseudoHeader(src, dst, IPPROTO.TCP, seg.length), seg), 16);
      return seg;
    }
    case 'udp': {
      const payload = l4.payload ?? Buffer.alloc(0);
      const seg = Buffer.concat([Buffer.alloc(8), payload]);
      seg.writeUInt16BE(l4.sport, 0);
      seg.writeUInt16BE(l4.dport, 2);
      seg.writeUInt16BE(seg.length, 4);
      const sum = internetChecksum(pseudoHeader(src, dst, IPPROTO.UDP, seg.length), seg);
      seg.writeUInt16BE(sum === 0 ? 0xffff : sum, 6); // 0 means "no checksum" in UDP
      return seg;
    }
    case 'sctp': {
      const payload = l4.payload ?? Buffer.alloc(0);
      const seg = Buffer.concat([Buffer.alloc(12), payload]);
      seg.writeUInt16BE(l4.sport, 0);
      seg.writeUInt16BE(l4.dport, 2);
      seg.writeUInt32BE(l4.vtag ?? 0, 4);
      seg.writeUInt32LE(crc32c(seg), 8); // computed with the field zero, stored little-endian
      return seg;
    }
    case 'icmp': {
      const payload = l4.payload ?? Buffer.alloc(0);
      const seg = Buffer.concat([Buffer.alloc(8), payload]);
      seg.writeUInt8(l4.type, 0);
      seg.writeUInt8(l4.code, 1);
      seg.writeUInt16BE(l4.id ?? 0, 4);
      seg.writeUInt16BE(l4.seq ?? 0, 6);
      seg.writeUInt16BE(internetChecksum(seg), 2);
      return seg;
    }
    case 'raw':
      return Buffer.from(l4.payload);
  }
}

/** An IPv4 header (with options) in front of payload, checksum filled in. */
export function ipv4Packet(ip: Ipv4Spec, protocol: number, payload: Buffer): Buffer {
  const options = ip.options ?? Buffer.alloc(0);
  if (options.length % 4 !== 0 || options.length > 40) {
    throw new RangeError(`IPv4 options must be a multiple of 4 bytes, at most 40; got ${options.length}`);
  }
  const fragmentOffset = ip.fragmentOffset ?? 0;
  if (fragmentOffset % 8 !== 0 || fragmentOffset / 8 > 0x1fff) {
    throw new RangeError(`fragment offset must be a multiple of 8 below 65536; got ${fragmentOffset}`);
  }
  const h = Buffer.alloc(IPV4_HLEN + options.length);
  const ihl = ip.ihl ?? h.length / 4;
  h.writeUInt8(((ip.version ?? 4) << 4) | (ihl & 0xf), 0);
  h.writeUInt8(ip.tos ?? 0, 1);
  h.writeUInt16BE(ip.totalLength ?? h.length + payload.length, 2);
  h.writeUInt16BE(ip.id ?? 0x1234, 4);
  const flags = (ip.dontFragment ? 0x4000 : 0) | (ip.moreFragments ? 0x2000 : 0);
  h.writeUInt16BE(flags | (fragmentOffset / 8), 6);
  h.writeUInt8(ip.ttl ?? 64, 8);
  h.writeUInt8(protocol, 9);
  addrBytes(ip.src).copy(h, 12);
  addrBytes(ip.dst).copy(h, 16);
  options.copy(h, IPV4_HLEN);
  h.writeUInt16BE(internetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** An Ethernet II frame. */
export function ethernet(ethertype: number, payload: Buffer, eth: EthSpec = {}): Buffer {
  const h = Buffer.alloc(ETH_HLEN);
  mac(eth.dst ?? DEFAULT_DST_MAC).copy(h, 0);
  mac(eth.src ?? DEFAULT_SRC_MAC).copy(h, 6);
  h.writeUInt16BE(ethertype, 12);
  return Buffer.concat([h, payload]);
}

/** Ethernet + IPv4 + L4, every checksum correct unless ip overrides fields. */
export function ipv4Frame(ip: Ipv4Spec, l4: L4Spec, eth: EthSpec = {}): Buffer {
  return ethernet(ETH_P_IP, ipv4Packet(ip, protocolNumber(l4), l4Segment(l4, ip.src, ip.dst)), eth);
}

/**
 * One datagram split into fragments as a router would: the L4 segment
 * (checksum over the whole datagram) cut into chunks of `chunk` bytes (a
 * multiple of 8), each with its own IPv4 header; all but the last carry MF.
 */
export function ipv4Fragments(ip: Ipv4Spec, l4: L4Spec, chunk: number, eth: EthSpec = {}): Buffer[] {
  if (chunk <= 0 || chunk % 8 !== 0) throw new RangeError(`fragment size must be a positive multiple of 8; got ${chunk}`);
  const segment = l4Segment(l4, ip.src, ip.dst);
  const frames: Buffer[] = [];
  for (let off = 0; off < segment.length; off += chunk) {
    const piece = segment.subarray(off, off + chunk);
    const last = off + chunk >= segment.length;
    frames.push(ethernet(ETH_P_IP, ipv4Packet({ ...ip, fragmentOffset: off, moreFragments: !last },
      protocolNumber(l4), piece), eth));
  }
  return frames;
}

/** An ARP request or reply for IPv4 over Ethernet (RFC 826). */
export function arpFrame(a: ArpSpec, eth: EthSpec = {}): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0); // hardware: Ethernet
  b.writeUInt16BE(ETH_P_IP, 2);
  b.writeUInt8(6, 4);
  b.writeUInt8(4, 5);
  b.writeUInt16BE(a.op ?? 1, 6);
  mac(a.senderMac ?? DEFAULT_SRC_MAC).copy(b, 8);
  addrBytes(a.senderIp).copy(b, 14);
  mac(a.targetMac ?? '00:00:00:00:00:00').copy(b, 18);
  addrBytes(a.targetIp).copy(b, 24);
  return ethernet(ETH_P_ARP, b, { dst: 'ff:ff:ff:ff:ff:ff', ...eth });
}

/**
 * An IPv4 frame cut to `ipPayload` bytes after the IP header, with tot_len and
 * the header checksum rewritten to match: a well-formed IP packet whose L4
 * header is short, as opposed to a frame truncated in transit.
 */
export function truncateIpv4Payload(frame: Buffer, ipPayload: number): Buffer {
  const ihl = ((frame[ETH_HLEN] ?? 0) & 0x0f) * 4;
  const out = Buffer.from(frame.subarray(0, ETH_HLEN + ihl + ipPayload));
  out.writeUInt16BE(ihl + ipPayload, ETH_HLEN + 2);
  out.writeUInt16BE(0, ETH_HLEN + 10);
  out.writeUInt16BE(internetChecksum(out.subarray(ETH_HLEN, ETH_HLEN + ihl)), ETH_HLEN + 10);
  return out;
}

/** frame followed by zero bytes up to `length`, as Ethernet pads short frames. */
export function padFrame(frame: Buffer, length: number): Buffer {
  return frame.length >= length ? frame : Buffer.concat([frame, Buffer.alloc(length - frame.length)]);
}

/**
 * What an ICMP error quotes of the packet it is about (RFC 792): the IPv4
 * header of `frame` (an Ethernet frame) and the first 8 bytes after it.
 */
export function icmpQuote(frame: Buffer): Buffer {
  const ihl = ((frame[ETH_HLEN] ?? 0) & 0x0f) * 4;
  return Buffer.from(frame.subarray(ETH_HLEN, ETH_HLEN + ihl + 8));
}
