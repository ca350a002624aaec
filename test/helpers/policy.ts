/**
 * Policy map entries for datapath tests, written the way the compiler writes
 * them (through src/datapath/maps/policy-v2.ts and endpoints.ts), so tests
 * state rules, not LPM arithmetic.
 */
import { SluicePolicyAction, type EndpointEntry, type PolicyEntry, type PolicyLpmKey } from '../../src/datapath/generated/abi.js';
import { endpointEntry } from '../../src/datapath/maps/endpoints.js';
import { policyLpmKey, policyLpmKeysForPorts } from '../../src/datapath/maps/policy-v2.js';

export type Entry = readonly [PolicyLpmKey, PolicyEntry];

/** An endpoint entry isolated for the directions named, at `revision`. */
export function isolated(dirs: 'ingress' | 'egress' | 'both', revision = 0): EndpointEntry {
  return endpointEntry({ ingress: dirs !== 'egress', egress: dirs !== 'ingress' }, revision);
}

/** A rule without ports: every protocol and port from/to remoteIdentity (0 = any peer). */
export function allowAll(endpointId: number, remoteIdentity: number, direction: number, ruleId: number,
  action: number = SluicePolicyAction.ALLOW): [PolicyLpmKey, PolicyEntry] {
  return [policyLpmKey({ endpointId, remoteIdentity, direction }), { action, ruleId }];
}

/** `protocol` without a port: every port of it. */
export function allowProtocol(endpointId: number, remoteIdentity: number, direction: number, protocol: number,
  ruleId: number): [PolicyLpmKey, PolicyEntry] {
  return [policyLpmKey({ endpointId, remoteIdentity, direction, protocol }), { action: SluicePolicyAction.ALLOW, ruleId }];
}

/** protocol ports start..end (one port: omit end), as the prefixes that cover them. */
export function allowPorts(endpointId: number, remoteIdentity: number, direction: number, protocol: number,
  ruleId: number, start: number, end = start): Entry[] {
  return policyLpmKeysForPorts({ endpointId, remoteIdentity, direction }, protocol, start, end)
    .map((key) => [key, { action: SluicePolicyAction.ALLOW, ruleId }] as const);
}
