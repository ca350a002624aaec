/**
 * sl_lxc_addr_v1: hash, local pod IPv4 → the host veth that serves it
 * (bpf/lib/host-routing.h): where the programs deliver a packet for a local
 * pod when they forward it themselves. The datapath uses an entry only while
 * sl_lxc_v1 confirms it (that ifindex's entry carries the same address), so
 * an entry left behind by a gone pod sends packets to the node's stack, never
 * to another pod. Written by the owner of sl_lxc_v1 (src/reconcile/lxc-interfaces.ts).
 */
import type { Codec, RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { lxcAddressCodec, lxcAddressKeyCodec, type LxcAddress, type LxcAddressKey } from '../generated/abi.js';
import { checkLayout, type MapLayout } from './layout.js';

export const LXC_ADDRESSES_LAYOUT: MapLayout = {
  name: 'sl_lxc_addr_v1',
  type: BpfMapType.HASH,
  keySize: lxcAddressKeyCodec.size,
  valueSize: lxcAddressCodec.size,
};

/** The key as a plain address (natural order, as parseIpv4 gives it). */
const addressKeyCodec: Codec<number> = {
  size: lxcAddressKeyCodec.size,
  encode: (addr: number): Buffer => lxcAddressKeyCodec.encode({ addr } satisfies LxcAddressKey),
  decode: (b: Buffer, o = 0): number => lxcAddressKeyCodec.decode(b, o).addr,
};

/** Pod IPv4 (natural order) → its host veth. */
export type LxcAddressesMap = TypedMap<number, LxcAddress>;

/** Types raw after checking it is the local-address map of this layout. */
export function openLxcAddresses(raw: RawMap): LxcAddressesMap {
  checkLayout(raw.info, LXC_ADDRESSES_LAYOUT);
  return typedMap(raw, addressKeyCodec, lxcAddressCodec);
}
