/**
 * sl_endpoints_v2: hash, endpoint id → isolation flags, policy revision and
 * per direction the port classes of its policy entries (bpf/lib/endpoint.h).
 * A program whose endpoint has no entry drops every packet
 * (ENDPOINT_UNKNOWN), so the entry is written before the programs are
 * attached. An isolated direction needs an ALLOW in sl_policy_v3 of a class
 * its mask names; bumping the revision makes conntrack re-check the
 * endpoint's existing connections.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { endpointEntryCodec, SluiceEndpointFlags, type EndpointEntry } from '../generated/abi.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';
import { ALL_POLICY_CLASSES, formatPolicyClasses } from './policy-key.js';

export const ENDPOINTS_LAYOUT: MapLayout = {
  name: 'sl_endpoints_v2',
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

/** Port-class masks per direction (policy-key.ts policyClassesOf). */
export interface PolicyClasses {
  readonly ingress: number;
  readonly egress: number;
}

/**
 * The entry of an endpoint with this isolation at this revision. The class
 * masks default to every class, which is correct whatever the entries (a
 * denied packet then costs 36 lookups); the compiler writes exact ones.
 */
export function endpointEntry(isolation: Isolation, policyRevision: number,
  classes: PolicyClasses = { ingress: ALL_POLICY_CLASSES, egress: ALL_POLICY_CLASSES }): EndpointEntry {
  const flags = (isolation.ingress ? SluiceEndpointFlags.INGRESS_ISOLATED : 0) |
    (isolation.egress ? SluiceEndpointFlags.EGRESS_ISOLATED : 0);
  return { flags, policyRevision, ingressPolicyClasses: classes.ingress, egressPolicyClasses: classes.egress };
}

export interface EndpointRow {
  readonly endpointId: number;
  readonly ingressIsolated: boolean;
  readonly egressIsolated: boolean;
  readonly policyRevision: number;
  /** The port classes looked up, most specific first: "16,0,*" (policy-key.ts formatPolicyClasses). */
  readonly ingressClasses: string;
  readonly egressClasses: string;
  /** The agent could not write the endpoint's whole policy: every decision drops (POLICY_INCOMPLETE). */
  readonly policyIncomplete: boolean;
  /** Flag bits this module does not name (0 normally). */
  readonly otherFlags: number;
}

/** Every entry, by endpoint id. */
export function dumpEndpoints(map: EndpointsMap): EndpointRow[] {
  const known = SluiceEndpointFlags.INGRESS_ISOLATED | SluiceEndpointFlags.EGRESS_ISOLATED | SluiceEndpointFlags.POLICY_INCOMPLETE;
  return [...map.entries()]
    .sort(([a], [b]) => a - b)
    .map(([endpointId, e]) => ({
      endpointId,
      ingressIsolated: (e.flags & SluiceEndpointFlags.INGRESS_ISOLATED) !== 0,
      egressIsolated: (e.flags & SluiceEndpointFlags.EGRESS_ISOLATED) !== 0,
      policyRevision: e.policyRevision,
      ingressClasses: formatPolicyClasses(e.ingressPolicyClasses),
      egressClasses: formatPolicyClasses(e.egressPolicyClasses),
      policyIncomplete: (e.flags & SluiceEndpointFlags.POLICY_INCOMPLETE) !== 0,
      otherFlags: (e.flags & ~known) >>> 0,
    }));
}
