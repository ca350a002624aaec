/**
 * sl_lb_be_v1: hash, backend id (__u32, never 0) → address, port, flags and
 * the service it belongs to (bpf/lib/lb.h). The agent writes every serving
 * endpoint of each service, selectable or not. Deleting one moves the
 * service's UDP and other non-TCP flows pinned to it to a live backend at
 * their next packet; TCP connections keep it.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { lbBackendCodec, SluiceLbBackendFlags, type LbBackend } from '../generated/abi.js';
import { formatIpv4 } from './ipv4.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const LB_BE_LAYOUT: MapLayout = {
  name: 'sl_lb_be_v1',
  type: BpfMapType.HASH,
  keySize: u32Codec.size,
  valueSize: lbBackendCodec.size,
};

export type LbBackendsMap = TypedMap<number, LbBackend>;

/** Types raw after checking it is the backend map of this layout. */
export function openLbBackends(raw: RawMap): LbBackendsMap {
  checkLayout(raw.info, LB_BE_LAYOUT);
  return typedMap(raw, u32Codec, lbBackendCodec);
}

export interface LbBackendRow {
  readonly backendId: number;
  readonly serviceId: number;
  /** "10.0.1.5:8080" */
  readonly address: string;
  /** Selectable for new connections, or serving its existing ones only. */
  readonly state: 'active' | 'serving-only';
}

/** Every entry, by service then backend id. */
export function dumpLbBackends(map: LbBackendsMap): LbBackendRow[] {
  return [...map.entries()]
    .sort(([a, x], [b, y]) => x.serviceId - y.serviceId || a - b)
    .map(([backendId, be]) => ({
      backendId,
      serviceId: be.serviceId,
      address: `${formatIpv4(be.addr)}:${be.port}`,
      state: (be.flags & SluiceLbBackendFlags.NOT_SELECTABLE) !== 0 ? 'serving-only' : 'active',
    }));
}
