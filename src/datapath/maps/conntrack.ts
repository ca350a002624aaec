/**
 * sl_ct_v2: the connection tracker (bpf/lib/conntrack.h), an LRU hash keyed
 * by a connection as one endpoint sees it (local/remote address and port,
 * protocol) → original direction, TCP state, deadline, policy revision,
 * the rule that allowed it and its address translation. Entries flagged
 * SERVICE (pins) hold the backend a pod's connection to a Service frontend
 * goes to (bpf/lib/lb.h); connections flagged DNAT carry the frontend the
 * client addressed. The datapath writes it; the control plane reads it (dumps),
 * and deletes an endpoint's entries when the endpoint goes.
 *
 * Deadlines are bpf_ktime_get_ns() values: CLOCK_MONOTONIC, the clock
 * process.hrtime.bigint() reads, so user space can tell what is live.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import {
  ctEntryCodec, ctKeyCodec, SluiceCtFlags, sluiceCtTcpStateName, sluiceDirectionName, type CtEntry, type CtKey,
} from '../generated/abi.js';
import { carriesPorts, IP_PROTOCOL, ipProtocolName } from '../../policy/protocols.js';
import { formatIpv4 } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

/** No maxEntries: the size is the node's choice (agent `mapSizes.conntrack`), nothing here depends on it. */
export const CT_LAYOUT: MapLayout = {
  name: 'sl_ct_v2',
  type: BpfMapType.LRU_HASH,
  keySize: ctKeyCodec.size,
  valueSize: ctEntryCodec.size,
};

export type ConntrackMap = TypedMap<CtKey, CtEntry>;

/** Types raw after checking it is the conntrack map of this layout. */
export function openConntrack(raw: RawMap): ConntrackMap {
  checkLayout(raw.info, CT_LAYOUT);
  return typedMap(raw, ctKeyCodec, ctEntryCodec);
}

/** Now on the datapath's clock (bpf_ktime_get_ns, CLOCK_MONOTONIC). */
export function monotonicNowNs(): bigint {
  return process.hrtime.bigint();
}

/** Deletes every entry of endpointId (e.g. after its pod went away). Returns how many. */
export function flushEndpointConnections(map: ConntrackMap, endpointId: number): number {
  let n = 0;
  for (const [key] of map.entries()) {
    if (key.endpointId === endpointId && map.delete(key)) n++;
  }
  return n;
}

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [SluiceCtFlags.REPLY_SEEN, 'REPLY_SEEN'], [SluiceCtFlags.FIN_ORIG, 'FIN_ORIG'], [SluiceCtFlags.FIN_REPLY, 'FIN_REPLY'],
  [SluiceCtFlags.DNAT, 'DNAT'], [SluiceCtFlags.HAIRPIN, 'HAIRPIN'], [SluiceCtFlags.SERVICE, 'SERVICE'], [SluiceCtFlags.EXTERNAL, 'EXTERNAL'],
];

export interface ConntrackRow {
  readonly endpointId: number;
  /** CONN: a connection; SERVICE: the pin of a pod's connection to a Service frontend (its backend in `nat`). */
  readonly kind: 'CONN' | 'SERVICE';
  readonly protocol: string; // TCP | UDP | SCTP | ICMP | IP(n)
  readonly local: string; // "10.0.0.2:80"; ICMP echo: "10.0.0.2 id 7"; other: "10.0.0.2"
  readonly remote: string;
  /** Who opened it: EGRESS = the endpoint, INGRESS = the peer. */
  readonly origDirection: string;
  readonly tcpState: string; // NONE for other protocols
  readonly flags: readonly string[];
  readonly policyRevision: number;
  readonly ruleId: number;
  /** A pin: the backend ("10.0.1.7:8080"); a connection flagged DNAT: the frontend the client addressed; else absent. */
  readonly nat?: string;
  /** The sl_lb_be_v1 id of the backend (pins and DNAT connections), else 0. */
  readonly backendId: number;
  /** Milliseconds left at `now`; <= 0: expired (the datapath treats it as gone). */
  readonly expiresInMs: number;
}

/** Every entry, ordered by endpoint, protocol, local then remote side. */
export function dumpConntrack(map: ConntrackMap, now: bigint = monotonicNowNs()): ConntrackRow[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.endpointId - b.endpointId || a.protocol - b.protocol || a.localAddr - b.localAddr ||
      a.localPort - b.localPort || a.remoteAddr - b.remoteAddr || a.remotePort - b.remotePort)
    .map(([key, e]) => ({
      endpointId: key.endpointId,
      kind: (e.flags & SluiceCtFlags.SERVICE) !== 0 ? 'SERVICE' : 'CONN',
      protocol: ipProtocolName(key.protocol),
      local: side(key.protocol, key.localAddr, key.localPort),
      remote: side(key.protocol, key.remoteAddr, key.remotePort),
      origDirection: sluiceDirectionName(e.origDirection),
      tcpState: sluiceCtTcpStateName(e.tcpState),
      flags: FLAG_NAMES.filter(([bit]) => e.flags & bit).map(([, name]) => name),
      policyRevision: e.policyRevision,
      ruleId: e.ruleId,
      ...(e.natAddr !== 0 ? { nat: side(key.protocol, e.natAddr, e.natPort) } : {}),
      backendId: e.backendId,
      expiresInMs: Number((e.expiresNs - now) / 1_000_000n),
    }));
}

function side(protocol: number, addr: number, port: number): string {
  if (protocol === IP_PROTOCOL.ICMP) return port === 0 ? formatIpv4(addr) : `${formatIpv4(addr)} id ${port}`;
  return carriesPorts(protocol) ? `${formatIpv4(addr)}:${port}` : formatIpv4(addr);
}
