/**
 * sl_policy_v1: hash, (endpoint, remote identity, direction) → action and
 * rule id (bpf/lib/policy.h). A DENY entry drops; ALLOW or no entry passes,
 * and any other action is treated as DENY by the datapath.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import {
  policyEntryCodec, policyKeyCodec, sluiceDirectionName, sluicePolicyActionName, type PolicyEntry, type PolicyKey,
} from '../generated/abi.js';
import { checkLayout, type MapLayout } from './layout.js';

export const POLICY_LAYOUT: MapLayout = {
  name: 'sl_policy_v1',
  type: BpfMapType.HASH,
  keySize: policyKeyCodec.size,
  valueSize: policyEntryCodec.size,
};

export type PolicyMap = TypedMap<PolicyKey, PolicyEntry>;

/** Types raw after checking it is a policy map of this layout. */
export function openPolicy(raw: RawMap): PolicyMap {
  checkLayout(raw.info, POLICY_LAYOUT);
  return typedMap(raw, policyKeyCodec, policyEntryCodec);
}

export interface PolicyRow {
  readonly endpointId: number;
  readonly direction: string; // INGRESS | EGRESS
  readonly remoteIdentity: number;
  readonly action: string; // ALLOW | DENY | UNKNOWN(n)
  readonly ruleId: number;
}

/** Every entry with enum names, ordered by endpoint, direction, identity. */
export function dumpPolicy(map: PolicyMap): PolicyRow[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.endpointId - b.endpointId || a.direction - b.direction || a.remoteIdentity - b.remoteIdentity)
    .map(([key, entry]) => ({
      endpointId: key.endpointId,
      direction: sluiceDirectionName(key.direction),
      remoteIdentity: key.remoteIdentity,
      action: sluicePolicyActionName(entry.action),
      ruleId: entry.ruleId,
    }));
}
