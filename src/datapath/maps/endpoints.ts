/**
 * sl_endpoints_v1: hash, endpoint id → isolation flags and policy revision
 * (bpf/lib/endpoint.h). A program whose endpoint has no entry drops every
 * packet (ENDPOINT_UNKNOWN), so the entry is written before the programs are
 * attached. An isolated direction needs an ALLOW in sl_policy_v2; bumping the
 * revision makes conntrack re-check the endpoint's existing connections.
 */
import { constants } from 'node:os';
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { isBpfError } from '../errors.js';
import { endpointEntryCodec, SluiceEndpointFlags, type EndpointEntry } from '../generated/abi.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const ENDPOINTS_LAYOUT: MapLayout = {
  name: 'sl_endpoints_v1',
  type: BpfMapType.HASH,
  keySize: u32Codec.size,
  valueSize: endpointEntryCodec.size,
};

export type EndpointsMap = TypedMap<number, EndpointEntry>;

/** Types raw after checking it is the endpoints map of this layout. */
export function openEndpoints(raw: RawMap): EndpointsMap {
  checkLayout(raw.info, ENDPOINTS_LAYOUT);
  return typedMap(raw, u32Codec, endpointEntryCodec);
}

export interface Isolation {
  readonly ingress: boolean;
  readonly egress: boolean;
}

/** The entry of an endpoint with this isolation at this revision. */
export function endpointEntry(isolation: Isolation, policyRevision: number): EndpointEntry {
  const flags = (isolation.ingress ? SluiceEndpointFlags.INGRESS_ISOLATED : 0) |
    (isolation.egress ? SluiceEndpointFlags.EGRESS_ISOLATED : 0);
  return { flags, policyRevision };
}

/**
 * Writes a not-isolated entry at revision 0 unless the endpoint has one
 * already (a reload keeps whatever policy wrote). Returns true when it wrote.
 */
export function ensureEndpoint(map: EndpointsMap, endpointId: number): boolean {
  try {
    map.update(endpointId, endpointEntry({ ingress: false, egress: false }, 0), 'noexist');
    return true;
  } catch (e) {
    if (isBpfError(e) && e.errno === constants.errno.EEXIST) return false;
    throw e;
  }
}

export interface EndpointRow {
  readonly endpointId: number;
  readonly ingressIsolated: boolean;
  readonly egressIsolated: boolean;
  readonly policyRevision: number;
  /** Flag bits this module does not name (0 normally). */
  readonly otherFlags: number;
}

/** Every entry, by endpoint id. */
export function dumpEndpoints(map: EndpointsMap): EndpointRow[] {
  const known = SluiceEndpointFlags.INGRESS_ISOLATED | SluiceEndpointFlags.EGRESS_ISOLATED;
  return [...map.entries()]
    .sort(([a], [b]) => a - b)
    .map(([endpointId, e]) => ({
      endpointId,
      ingressIsolated: (e.flags & SluiceEndpointFlags.INGRESS_ISOLATED) !== 0,
      egressIsolated: (e.flags & SluiceEndpointFlags.EGRESS_ISOLATED) !== 0,
      policyRevision: e.policyRevision,
      otherFlags: (e.flags & ~known) >>> 0,
    }));
}
