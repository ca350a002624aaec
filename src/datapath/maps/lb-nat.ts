/**
 * sl_lb_nat_v1: LRU hash of the connections from outside the node through
 * a frontend (bpf/lib/lb_external.h), two entries each, keyed by the tuple of
 * each direction as its packets carry it: FORWARD (client → frontend) and
 * REPLY (backend → client, or → the node's masquerade address and port). The
 * datapath writes it; the control plane reads it (dumps).
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { lbNatEntryCodec, lbNatKeyCodec, sluiceLbNatRoleName, type LbNatEntry, type LbNatKey } from '../generated/abi.js';
import { ipProtocolName } from '../../policy/protocols.js';
import { monotonicNowNs } from './conntrack.js';
import { formatIpv4 } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

/** No maxEntries: the size is the node's choice. */
export const LB_NAT_LAYOUT: MapLayout = {
  name: 'sl_lb_nat_v1',
  type: BpfMapType.LRU_HASH,
  keySize: lbNatKeyCodec.size,
  valueSize: lbNatEntryCodec.size,
};

export type LbNatMap = TypedMap<LbNatKey, LbNatEntry>;

/** Types raw after checking it is the external-connection map of this layout. */
export function openLbNat(raw: RawMap): LbNatMap {
  checkLayout(raw.info, LB_NAT_LAYOUT);
  return typedMap(raw, lbNatKeyCodec, lbNatEntryCodec);
}

export interface LbNatRow {
  readonly role: string; // FORWARD | REPLY
  readonly protocol: string;
  /** "10.99.0.2:40000" */
  readonly client: string;
  readonly frontend: string;
  readonly backend: string;
  /** The node port the client was masqueraded to; absent: not masqueraded. */
  readonly snatPort?: number;
  readonly backendId: number;
  /** Milliseconds left at `now`; <= 0: expired. */
  readonly expiresInMs: number;
}

/** Every entry, forward entries first, then by client. */
export function dumpLbNat(map: LbNatMap, now: bigint = monotonicNowNs()): LbNatRow[] {
  return [...map.entries()]
    .sort(([a, x], [b, y]) => x.role - y.role || x.clientAddr - y.clientAddr || x.clientPort - y.clientPort || a.protocol - b.protocol)
    .map(([key, e]) => ({
      role: sluiceLbNatRoleName(e.role),
      protocol: ipProtocolName(key.protocol),
      client: `${formatIpv4(e.clientAddr)}:${e.clientPort}`,
      frontend: `${formatIpv4(e.frontendAddr)}:${e.frontendPort}`,
      backend: `${formatIpv4(e.backendAddr)}:${e.backendPort}`,
      ...(e.snatPort !== 0 ? { snatPort: e.snatPort } : {}),
      backendId: e.backendId,
      expiresInMs: Number((e.expiresNs - now) / 1_000_000n),
    }));
}
