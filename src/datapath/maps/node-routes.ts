/**
 * sl_noderoute_v1: LPM trie, another node's podCIDR → {device ifindex,
 * next hop, device MTU}: how bpf/lib/host-routing.h sends a pod's packet to
 * a pod of another node. A mirror of the kernel routes the node-routes owner
 * installs (src/reconcile/node-routes.ts), written by that owner next to them.
 */
import type { Codec, RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { nodeRouteCodec, nodeRouteKeyCodec, type NodeRoute } from '../generated/abi.js';
import { formatIpv4Prefix, parseIpv4Prefix, type Ipv4Prefix } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

export const NODE_ROUTES_LAYOUT: MapLayout = {
  name: 'sl_noderoute_v1',
  type: BpfMapType.LPM_TRIE,
  keySize: nodeRouteKeyCodec.size,
  valueSize: nodeRouteCodec.size,
};

/** The key as a CIDR string ("10.244.1.0/24"), the way the owner names podCIDRs. */
const cidrKeyCodec: Codec<string> = {
  size: nodeRouteKeyCodec.size,
  encode: (cidr: string): Buffer => nodeRouteKeyCodec.encode(parseIpv4Prefix(cidr) satisfies Ipv4Prefix),
  decode: (b: Buffer, o = 0): string => formatIpv4Prefix(nodeRouteKeyCodec.decode(b, o)),
};

/** podCIDR → route (nextHop in natural order, as parseIpv4 gives it). */
export type NodeRoutesMap = TypedMap<string, NodeRoute>;

/** Types raw after checking it is the node-routes map of this layout. */
export function openNodeRoutes(raw: RawMap): NodeRoutesMap {
  checkLayout(raw.info, NODE_ROUTES_LAYOUT);
  return typedMap(raw, cidrKeyCodec, nodeRouteCodec);
}
