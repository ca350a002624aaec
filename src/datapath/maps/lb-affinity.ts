/**
 * sl_lb_aff_v1: LRU hash, (service, client address) → the backend of the
 * client's last new connection and when it was made (bpf/lib/lb.h). The
 * datapath writes it; the agent only deletes a deleted service's entries.
 * Times are bpf_ktime_get_ns() values (CLOCK_MONOTONIC, monotonicNowNs()).
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { lbAffinityEntryCodec, lbAffinityKeyCodec, type LbAffinityEntry, type LbAffinityKey } from '../generated/abi.js';
import { monotonicNowNs } from './conntrack.js';
import { formatIpv4 } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

/** No maxEntries: the size is the node's choice. */
export const LB_AFF_LAYOUT: MapLayout = {
  name: 'sl_lb_aff_v1',
  type: BpfMapType.LRU_HASH,
  keySize: lbAffinityKeyCodec.size,
  valueSize: lbAffinityEntryCodec.size,
};

export type LbAffinityMap = TypedMap<LbAffinityKey, LbAffinityEntry>;

/** Types raw after checking it is the affinity map of this layout. */
export function openLbAffinity(raw: RawMap): LbAffinityMap {
  checkLayout(raw.info, LB_AFF_LAYOUT);
  return typedMap(raw, lbAffinityKeyCodec, lbAffinityEntryCodec);
}

/** Deletes every affinity of serviceId (the service went away). Returns how many. */
export function flushServiceAffinity(map: LbAffinityMap, serviceId: number): number {
  let n = 0;
  for (const [key] of map.entries()) {
    if (key.serviceId === serviceId && map.delete(key)) n++;
  }
  return n;
}

export interface LbAffinityRow {
  readonly serviceId: number;
  readonly client: string;
  readonly backendId: number;
  /** Milliseconds since the client's last new connection to the service, at `now`. */
  readonly idleMs: number;
}

export function dumpLbAffinity(map: LbAffinityMap, now: bigint = monotonicNowNs()): LbAffinityRow[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.serviceId - b.serviceId || a.clientAddr - b.clientAddr)
    .map(([key, e]) => ({
      serviceId: key.serviceId,
      client: formatIpv4(key.clientAddr),
      backendId: e.backendId,
      idleMs: Number((now - e.lastUsedNs) / 1_000_000n),
    }));
}
