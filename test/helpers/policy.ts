/**
 * Policy map entries for datapath tests, written the way the compiler writes
 * them (through src/datapath/maps/policy-v3.ts and endpoints.ts), so tests
 * state rules, not port-class arithmetic.
 */
import { SluicePolicyAction, type EndpointEntry, type PolicyEntry, type PolicyKey } from '../../src/datapath/generated/abi.js';
import { endpointEntry, type PolicyClasses } from '../../src/datapath/maps/endpoints.js';
import { policyKey, policyKeysForPorts } from '../../src/datapath/maps/policy-v3.js';

export type Entry = readonly [PolicyKey, PolicyEntry];

/**
 * An endpoint entry isolated for the directions named, at `revision`; port
 * classes looked up: every one unless given (correct for any entries).
 */
export function isolated(dirs: 'ingress' | 'egress' | 'both', revision = 0, classes?: PolicyClasses): EndpointEntry {
  return endpointEntry({ ingress: dirs !== 'egress', egress: dirs !== 'ingress' }, revision, classes);
}

/** A rule without ports: every protocol and port from/to remoteIdentity (0 = any peer). */
export function allowAll(endpointId: number, remoteIdentity: number, direction: number, ruleId: number,
  action: number = SluicePolicyAction.ALLOW): [PolicyKey, PolicyEntry] {
  return [policyKey({ endpointId, remoteIdentity, direction }), { action, ruleId }];
}

/** `protocol` without a port: every port of it. */
export function allowProtocol(endpointId: number, remoteIdentity: number, direction: number, protocol: number,
  ruleId: number): [PolicyKey, PolicyEntry] {
  return [policyKey({ endpointId, remoteIdentity, direction, protocol }), { action: SluicePolicyAction.ALLOW, ruleId }];
}

/** protocol ports start..end (one port: omit end), as the aligned blocks (port classes) that cover them. */
export function allowPorts(endpointId: number, remoteIdentity: number, direction: number, protocol: number,
  ruleId: number, start: number, end = start): Entry[] {
  return policyKeysForPorts({ endpointId, remoteIdentity, direction }, protocol, start, end)
    .map((key) => [key, { action: SluicePolicyAction.ALLOW, ruleId }] as const);
}
