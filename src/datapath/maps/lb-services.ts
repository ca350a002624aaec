/**
 * sl_lb_svc_v1: hash, frontend (address, port, protocol, scope) → the
 * service it belongs to, its backend set, selection algorithm, ClientIP
 * affinity timeout and what happens without a usable backend
 * (bpf/lib/lb.h). The agent writes it; the pod program (scope POD) and the
 * node-device program (scope EXTERNAL) look up every TCP/UDP/SCTP packet's
 * destination in it, one hash lookup per packet.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import {
  lbSvcEntryCodec, lbSvcKeyCodec, SluiceLbSvcFlags, sluiceLbAlgorithmName, sluiceLbScopeName, sluiceLbSetName,
  type LbSvcEntry, type LbSvcKey,
} from '../generated/abi.js';
import { ipProtocolName } from '../../policy/protocols.js';
import { formatIpv4 } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

export const LB_SVC_LAYOUT: MapLayout = {
  name: 'sl_lb_svc_v1',
  type: BpfMapType.HASH,
  keySize: lbSvcKeyCodec.size,
  valueSize: lbSvcEntryCodec.size,
};

export type LbServicesMap = TypedMap<LbSvcKey, LbSvcEntry>;

/** Types raw after checking it is the frontend map of this layout. */
export function openLbServices(raw: RawMap): LbServicesMap {
  checkLayout(raw.info, LB_SVC_LAYOUT);
  return typedMap(raw, lbSvcKeyCodec, lbSvcEntryCodec);
}

export interface LbServiceRow {
  /** "10.96.0.10:53/UDP" */
  readonly frontend: string;
  readonly scope: string; // POD | EXTERNAL
  readonly serviceId: number;
  readonly backendSet: string; // CLUSTER | LOCAL
  readonly algorithm: string; // RANDOM | MAGLEV
  readonly affinityTimeoutS: number;
  /** Without a usable backend: reject (RST / port unreachable) or drop. */
  readonly whenEmpty: 'reject' | 'drop';
}

/** "10.96.0.10:53/UDP" of a key. */
export function formatFrontend(key: Pick<LbSvcKey, 'addr' | 'port' | 'protocol'>): string {
  return `${formatIpv4(key.addr)}:${key.port}/${ipProtocolName(key.protocol)}`;
}

/** Every entry, ordered by address, port, protocol, scope. */
export function dumpLbServices(map: LbServicesMap): LbServiceRow[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.addr - b.addr || a.port - b.port || a.protocol - b.protocol || a.scope - b.scope)
    .map(([key, e]) => ({
      frontend: formatFrontend(key),
      scope: sluiceLbScopeName(key.scope),
      serviceId: e.serviceId,
      backendSet: sluiceLbSetName(e.backendSet),
      algorithm: sluiceLbAlgorithmName(e.algorithm),
      affinityTimeoutS: e.affinityTimeoutS,
      whenEmpty: (e.flags & SluiceLbSvcFlags.EMPTY_DROP) !== 0 ? 'drop' : 'reject',
    }));
}
