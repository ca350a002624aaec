/**
 * Load-balancer state for datapath tests, written through the map modules
 * the agent uses (src/datapath/maps/lb-*.ts), and a decoder for the frames
 * the programs put out (addresses, ports, flags, and whether each checksum
 * a receiver verifies is right).
 */
import { formatIpv4, parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import {
  SluiceLbAlgorithm, SluiceLbScope, SluiceLbSet, SluiceLbSvcFlags, type LbSvcKey,
} from '../../src/datapath/generated/abi.js';
import type { LbMaps } from '../../src/datapath/maps/lb-maps.js';
import { maglevTable } from '../../src/lb/maglev.js';
import { ETH_HLEN, internetChecksum, IPPROTO } from './packet.js';

export interface BackendSpec {
  readonly id: number;
  readonly ip: string;
  readonly port: number;
  readonly flags?: number;
}

export interface ServiceSpec {
  readonly vip: string;
  readonly port: number;
  readonly protocol: number;
  readonly serviceId: number;
  /** The backends of the service (sl_lb_be_v1). */
  readonly backends: readonly BackendSpec[];
  /** The ids in the table; default: every backend's. */
  readonly table?: readonly number[];
  readonly maglev?: boolean;
  readonly maglevSize?: number;
  readonly affinitySeconds?: number;
  readonly emptyDrop?: boolean;
  /** A frontend for traffic from outside the node (scope EXTERNAL); default: for pods. */
  readonly external?: boolean;
  /** External traffic is masqueraded (externalTrafficPolicy Cluster). */
  readonly masquerade?: boolean;
}

export function frontendKey(s: Pick<ServiceSpec, 'vip' | 'port' | 'protocol' | 'external'>): LbSvcKey {
  return { addr: parseIpv4(s.vip), port: s.port, protocol: s.protocol, scope: s.external ? SluiceLbScope.EXTERNAL : SluiceLbScope.POD };
}

/** The Maglev table of ids, built from the backends' "ip:port" keys as an agent would. */
export function maglevIds(backends: readonly BackendSpec[], size?: number): Uint32Array {
  const slots = maglevTable(backends.map((b) => `${b.ip}:${b.port}`), size);
  return slots.map((i) => backends[i]?.id ?? 0);
}

/** Writes a service in the agent's order: backends, table, frontend. */
export function writeService(lb: LbMaps, s: ServiceSpec): void {
  for (const b of s.backends) {
    lb.backends.update(b.id, { addr: parseIpv4(b.ip), port: b.port, flags: b.flags ?? 0, serviceId: s.serviceId });
  }
  const ids = s.maglev ? maglevIds(s.backends.filter((b) => (s.table ?? s.backends.map((x) => x.id)).includes(b.id)), s.maglevSize)
    : (s.table ?? s.backends.map((b) => b.id));
  lb.tables.replace({ serviceId: s.serviceId, backendSet: SluiceLbSet.CLUSTER }, ids);
  lb.services.update(frontendKey(s), {
    serviceId: s.serviceId,
    affinityTimeoutS: s.affinitySeconds ?? 0,
    backendSet: SluiceLbSet.CLUSTER,
    algorithm: s.maglev ? SluiceLbAlgorithm.MAGLEV : SluiceLbAlgorithm.RANDOM,
    flags: (s.emptyDrop ? SluiceLbSvcFlags.EMPTY_DROP : 0) | (s.masquerade ? SluiceLbSvcFlags.MASQUERADE : 0),
  });
}

/** Empties every load-balancer map. */
export function clearLb(lb: LbMaps): void {
  lb.services.deleteBatch([...lb.services.entries()].map(([k]) => k));
  const refused = lb.tables.deleteMany(lb.tables.keys());
  if (refused.length > 0) throw refused[0]?.error;
  lb.backends.deleteBatch([...lb.backends.entries()].map(([k]) => k));
  lb.affinity.deleteBatch([...lb.affinity.entries()].map(([k]) => k));
  lb.nat.deleteBatch([...lb.nat.entries()].map(([k]) => k));
}

export interface DecodedFrame {
  readonly srcMac: string;
  readonly dstMac: string;
  readonly src: string;
  readonly dst: string;
  readonly protocol: number;
  readonly totalLength: number;
  /** The IPv4 header checksum verifies. */
  readonly ipChecksumOk: boolean;
  /** TCP/UDP (pseudo header included) or ICMP checksum verifies; true for other protocols. */
  readonly l4ChecksumOk: boolean;
  readonly sport: number;
  readonly dport: number;
  readonly tcpFlags: number;
  readonly seq: number;
  readonly ack: number;
  readonly icmpType: number;
  readonly icmpCode: number;
  /** ICMP errors: the quoted packet (addresses, protocol, ports). */
  readonly quote?: { readonly src: string; readonly dst: string; readonly protocol: number; readonly sport: number; readonly dport: number; readonly ipChecksumOk: boolean };
}

const macText = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

export function decodeFrame(frame: Buffer): DecodedFrame {
  const ip = frame.subarray(ETH_HLEN);
  const ihl = ((ip[0] ?? 0) & 0x0f) * 4;
  const totalLength = ip.readUInt16BE(2);
  const protocol = ip[9] ?? 0;
  const l4 = ip.subarray(ihl, totalLength);
  const src = formatIpv4(ip.readUInt32BE(12));
  const dst = formatIpv4(ip.readUInt32BE(16));
  let l4ChecksumOk = true;
  if (protocol === IPPROTO.TCP || protocol === IPPROTO.UDP) {
    const pseudo = Buffer.alloc(12);
    ip.copy(pseudo, 0, 12, 20);
    pseudo.writeUInt8(protocol, 9);
    pseudo.writeUInt16BE(l4.length, 10);
    const unchecked = protocol === IPPROTO.UDP && l4.readUInt16BE(6) === 0;
    l4ChecksumOk = unchecked || internetChecksum(pseudo, l4) === 0;
  } else if (protocol === IPPROTO.ICMP) {
    l4ChecksumOk = internetChecksum(l4) === 0;
  }
  const icmp = protocol === IPPROTO.ICMP;
  let quote: DecodedFrame['quote'];
  if (icmp && (l4[0] === 3 || l4[0] === 11) && l4.length >= 36) {
    const q = l4.subarray(8);
    const qihl = ((q[0] ?? 0) & 0x0f) * 4;
    quote = {
      src: formatIpv4(q.readUInt32BE(12)), dst: formatIpv4(q.readUInt32BE(16)), protocol: q[9] ?? 0,
      sport: q.readUInt16BE(qihl), dport: q.readUInt16BE(qihl + 2), ipChecksumOk: internetChecksum(q.subarray(0, qihl)) === 0,
    };
  }
  return {
    dstMac: macText(frame.subarray(0, 6)),
    srcMac: macText(frame.subarray(6, 12)),
    src, dst, protocol, totalLength,
    ipChecksumOk: internetChecksum(ip.subarray(0, ihl)) === 0,
    l4ChecksumOk,
    sport: icmp ? 0 : l4.readUInt16BE(0),
    dport: icmp ? 0 : l4.readUInt16BE(2),
    tcpFlags: protocol === IPPROTO.TCP ? (l4[13] ?? 0) : 0,
    seq: protocol === IPPROTO.TCP ? l4.readUInt32BE(4) : 0,
    ack: protocol === IPPROTO.TCP ? l4.readUInt32BE(8) : 0,
    icmpType: icmp ? (l4[0] ?? 0) : 0,
    icmpCode: icmp ? (l4[1] ?? 0) : 0,
    ...(quote !== undefined ? { quote } : {}),
  };
}
