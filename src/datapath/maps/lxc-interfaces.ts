/**
 * sl_lxc_v1: hash, host veth ifindex → endpoint_config {endpoint id, pod
 * IPv4} (bpf/lib/config.h). Read per packet by the node-shared lxc instance
 * (lxc-shared.ts) to learn which endpoint an interface serves; an interface
 * without an entry drops everything (INTERFACE_UNKNOWN). The CNI writes the
 * entry before it attaches the programs and deletes it once the veth is gone.
 * Keys are ifindexes of the node's network namespace: one pin root per node.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { endpointConfigCodec, type EndpointConfig } from '../generated/abi.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const LXC_IFACES_LAYOUT: MapLayout = {
  name: 'sl_lxc_v1',
  type: BpfMapType.HASH,
  keySize: u32Codec.size,
  valueSize: endpointConfigCodec.size,
};

/** ifindex → the endpoint (ipv4 in natural order, as parseIpv4 gives it). */
export type LxcInterfacesMap = TypedMap<number, EndpointConfig>;

/** Types raw after checking it is the interface map of this layout. */
export function openLxcInterfaces(raw: RawMap): LxcInterfacesMap {
  checkLayout(raw.info, LXC_IFACES_LAYOUT);
  return typedMap(raw, u32Codec, endpointConfigCodec);
}

export interface LxcInterfaceRow {
  readonly ifindex: number;
  readonly endpointId: number;
  readonly ipv4: number;
}

/** Every entry, by ifindex. */
export function dumpLxcInterfaces(map: LxcInterfacesMap): LxcInterfaceRow[] {
  return [...map.entries()]
    .sort(([a], [b]) => a - b)
    .map(([ifindex, c]) => ({ ifindex, endpointId: c.endpointId, ipv4: c.ipv4 }));
}
