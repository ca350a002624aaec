/**
 * sl_policy_v3: the NetworkPolicy hash (bpf/lib/policy.h), one for every
 * endpoint, exact keys: (endpoint, remote identity, direction, protocol,
 * port class, dport masked to the class) → ALLOW and the rule's id. Keys and
 * class masks are built by policy-key.ts (re-exported here).
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import {
  policyEntryCodec, policyKeyCodec, SluicePolicyClass, sluiceDirectionName, sluicePolicyActionName,
  type PolicyEntry, type PolicyKey,
} from '../generated/abi.js';
import { checkLayout, type MapLayout } from './layout.js';
import { ipProtocolName } from '../../policy/protocols.js';
import { formatPolicyPorts } from './policy-key.js';

export * from './policy-key.js';

export const POLICY_V3_LAYOUT: MapLayout = {
  name: 'sl_policy_v3',
  type: BpfMapType.HASH,
  keySize: policyKeyCodec.size,
  valueSize: policyEntryCodec.size,
};

export type PolicyV3Map = TypedMap<PolicyKey, PolicyEntry>;

/** Types raw after checking it is the policy hash of this layout. */
export function openPolicyV3(raw: RawMap): PolicyV3Map {
  checkLayout(raw.info, POLICY_V3_LAYOUT);
  return typedMap(raw, policyKeyCodec, policyEntryCodec);
}

export interface PolicyV3Row {
  readonly endpointId: number;
  readonly direction: string; // INGRESS | EGRESS
  /** 0 = any peer. */
  readonly remoteIdentity: number;
  /** TCP | UDP | SCTP, "*" for every protocol, or the number of one this module does not name. */
  readonly protocol: string;
  /** "80", "8000-8063", or "*" for every port. */
  readonly ports: string;
  readonly action: string; // ALLOW | DENY | UNKNOWN(n)
  readonly ruleId: number;
}

/** Every entry with names, ordered by endpoint, direction, identity, protocol, port, class. */
export function dumpPolicyV3(map: PolicyV3Map): PolicyV3Row[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.endpointId - b.endpointId || a.direction - b.direction || a.remoteIdentity - b.remoteIdentity ||
      a.protocol - b.protocol || a.dport - b.dport || a.portPrefixlen - b.portPrefixlen)
    .map(([key, entry]) => ({
      endpointId: key.endpointId,
      direction: sluiceDirectionName(key.direction),
      remoteIdentity: key.remoteIdentity,
      protocol: key.portPrefixlen === SluicePolicyClass.NO_PORTS ? '*' : ipProtocolName(key.protocol),
      ports: formatPolicyPorts(key),
      action: sluicePolicyActionName(entry.action),
      ruleId: entry.ruleId,
    }));
}

