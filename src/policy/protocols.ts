/**
 * The one protocol table: IP protocol numbers and the names Sluice gives
 * them, from enum sluice_ip_proto (bpf/include/sluice_abi.h, through the
 * generated ABI). Everything that turns a protocol number into a name or
 * back (policy keys, conntrack and flow lines, test packets) asks here.
 */
import { SluiceIpProto } from '../datapath/generated/abi.js';

/** Every protocol with a name: ICMP, TCP, UDP, SCTP. */
export type IpProtocolName = keyof typeof SluiceIpProto;

/** The protocols whose packets carry ports, which NetworkPolicy ports name: TCP, UDP, SCTP. */
export const PORT_PROTOCOL_NAMES = ['TCP', 'UDP', 'SCTP'] as const satisfies readonly IpProtocolName[];
export type PortProtocolName = (typeof PORT_PROTOCOL_NAMES)[number];

/** Name → IANA protocol number. */
export const IP_PROTOCOL: Readonly<Record<IpProtocolName, number>> = SluiceIpProto;

const NAMES: ReadonlyMap<number, IpProtocolName> = new Map(
  (Object.keys(IP_PROTOCOL) as IpProtocolName[]).map((name) => [IP_PROTOCOL[name], name]),
);
const WITH_PORTS: ReadonlySet<number> = new Set(PORT_PROTOCOL_NAMES.map((name) => IP_PROTOCOL[name]));

/** "TCP" for 6; "IP(n)" for a protocol without a name here. */
export function ipProtocolName(n: number): string {
  return NAMES.get(n) ?? `IP(${n})`;
}

/** True for TCP, UDP and SCTP: packets with source and destination ports. */
export function carriesPorts(n: number): boolean {
  return WITH_PORTS.has(n);
}
