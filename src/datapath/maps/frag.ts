/**
 * sl_frag_v1: LRU hash, one fragmented IPv4 datagram (saddr, daddr, IP id,
 * protocol) → the L4 fields of its first fragment (bpf/lib/frag.h), which
 * the datapath gives to the later fragments so that port-aware policy and
 * conntrack can judge them. Written and evicted by the datapath only.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { fragEntryCodec, fragKeyCodec, type FragEntry, type FragKey } from '../generated/abi.js';
import { formatIpv4 } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

/** No maxEntries: the size is the node's choice (agent `mapSizes.frag`), nothing here depends on it. */
export const FRAG_LAYOUT: MapLayout = {
  name: 'sl_frag_v1',
  type: BpfMapType.LRU_HASH,
  keySize: fragKeyCodec.size,
  valueSize: fragEntryCodec.size,
};

export type FragMap = TypedMap<FragKey, FragEntry>;

/** Types raw after checking it is the fragment map of this layout. */
export function openFrag(raw: RawMap): FragMap {
  checkLayout(raw.info, FRAG_LAYOUT);
  return typedMap(raw, fragKeyCodec, fragEntryCodec);
}

export interface FragRow {
  readonly saddr: string;
  readonly daddr: string;
  readonly id: number;
  readonly protocol: number;
  /** As events report them: ports, or ICMP type and code. */
  readonly sport: number;
  readonly dport: number;
  readonly icmpId: number;
}

/** Every remembered datagram, ordered by addresses, protocol, id. */
export function dumpFrag(map: FragMap): FragRow[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.saddr - b.saddr || a.daddr - b.daddr || a.protocol - b.protocol || a.id - b.id)
    .map(([k, e]) => ({
      saddr: formatIpv4(k.saddr), daddr: formatIpv4(k.daddr), id: k.id, protocol: k.protocol,
      sport: e.sport, dport: e.dport, icmpId: e.icmpId,
    }));
}
