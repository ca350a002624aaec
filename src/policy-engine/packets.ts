/**
 * The packets the BPF engine feeds to BPF_PROG_TEST_RUN: the first packet of
 * a connection and its reply, as a real stack would send them (Ethernet,
 * IPv4, then a TCP SYN / SYN-ACK, a UDP datagram, an SCTP INIT / INIT-ACK
 * or an ICMP echo request / reply), checksums included, so the datapath
 * under test sees nothing a real pod could not send.
 */
import type { TrafficProtocol } from '../policy/match.js';
import { IP_PROTOCOL } from '../policy/protocols.js';

export interface Flow {
  readonly protocol: TrafficProtocol;
  /** IPv4 in natural order (10.0.0.1 = 0x0a000001). */
  readonly src: number;
  readonly dst: number;
  /** TCP/UDP/SCTP ports; for ICMP `sport` is the echo id and `dport` is ignored. */
  readonly sport: number;
  readonly dport: number;
}

const TCP_SYN = 0x02;
const TCP_ACK = 0x10;
const SCTP_INIT = 1;
const SCTP_INIT_ACK = 2;
const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;

/** The packet that opens `flow`. */
export function openingFrame(flow: Flow): Buffer {
  return frame(flow.src, flow.dst, flow.protocol, l4(flow.protocol, flow.src, flow.dst, flow.sport, flow.dport, false));
}

/** The destination's answer to openingFrame(flow). */
export function replyFrame(flow: Flow): Buffer {
  return frame(flow.dst, flow.src, flow.protocol, l4(flow.protocol, flow.dst, flow.src, flow.dport, flow.sport, true));
}

function l4(protocol: TrafficProtocol, src: number, dst: number, sport: number, dport: number, reply: boolean): Buffer {
  switch (protocol) {
    case 'TCP': {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(sport, 0);
      h.writeUInt16BE(dport, 2);
      h.writeUInt32BE(reply ? 0x2000 : 0x1000, 4); // sequence
      h.writeUInt32BE(reply ? 0x1001 : 0, 8); // acknowledges the SYN
      h.writeUInt8(5 << 4, 12);
      h.writeUInt8(reply ? TCP_SYN | TCP_ACK : TCP_SYN, 13);
      h.writeUInt16BE(65535, 14);
      h.writeUInt16BE(checksum(pseudoHeader(src, dst, IP_PROTOCOL.TCP, h.length), h), 16);
      return h;
    }
    case 'UDP': {
      const h = Buffer.alloc(8 + 4);
      h.writeUInt16BE(sport, 0);
      h.writeUInt16BE(dport, 2);
      h.writeUInt16BE(h.length, 4);
      h.write(reply ? 'pong' : 'ping', 8);
      const sum = checksum(pseudoHeader(src, dst, IP_PROTOCOL.UDP, h.length), h);
      h.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
      return h;
    }
    case 'SCTP': {
      // Common header + one INIT / INIT ACK chunk (type, flags, length, initiate tag, a_rwnd, streams, TSN).
      const h = Buffer.alloc(12 + 20);
      h.writeUInt16BE(sport, 0);
      h.writeUInt16BE(dport, 2);
      h.writeUInt32BE(reply ? 0x1111 : 0, 4); // an INIT carries verification tag 0
      h.writeUInt8(reply ? SCTP_INIT_ACK : SCTP_INIT, 12);
      h.writeUInt16BE(20, 14);
      h.writeUInt32BE(reply ? 0x2222 : 0x1111, 16);
      h.writeUInt32BE(65536, 20);
      h.writeUInt16BE(1, 24);
      h.writeUInt16BE(1, 26);
      h.writeUInt32BE(1, 28);
      h.writeUInt32LE(crc32c(h), 8);
      return h;
    }
    case 'ICMP': {
      const h = Buffer.alloc(8 + 8);
      h.writeUInt8(reply ? ICMP_ECHO_REPLY : ICMP_ECHO_REQUEST, 0);
      h.writeUInt16BE(reply ? dport : sport, 4); // the echo id travels unchanged
      h.writeUInt16BE(1, 6);
      h.writeUInt16BE(checksum(h), 2);
      return h;
    }
  }
}

function frame(src: number, dst: number, protocol: TrafficProtocol, payload: Buffer): Buffer {
  const eth = Buffer.from([0x02, 0x5c, 0, 0, 0, 2, 0x02, 0x5c, 0, 0, 0, 1, 0x08, 0x00]);
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + payload.length, 2);
  ip.writeUInt16BE(0x4000, 6); // don't fragment
  ip.writeUInt8(64, 8);
  ip.writeUInt8(IP_PROTOCOL[protocol], 9);
  ip.writeUInt32BE(src, 12);
  ip.writeUInt32BE(dst, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([eth, ip, payload]);
}

function pseudoHeader(src: number, dst: number, protocol: number, length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(src, 0);
  b.writeUInt32BE(dst, 4);
  b.writeUInt8(protocol, 9);
  b.writeUInt16BE(length, 10);
  return b;
}

/** RFC 1071 over the concatenation of parts (each part even-length except the last). */
function checksum(...parts: Buffer[]): number {
  const data = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += (data[i] ?? 0) * 256 + (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** CRC32c (Castagnoli, reflected), SCTP's checksum (RFC 9260 appendix B). */
function crc32c(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
