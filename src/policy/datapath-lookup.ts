/**
 * What the datapath decides for a packet, computed from a DatapathState the
 * way bpf/lxc.c does it: ipcache (exact /32 first, then the longest CIDR
 * prefix, else WORLD), the endpoint entry (missing → drop; POLICY_INCOMPLETE
 * → drop both ways; a direction not isolated → pass), then the policy hash with the peer's identity and then
 * with 0 (any peer), trying only the port classes the endpoint entry's mask
 * names, most specific first (bpf/lib/policy.h). It is the specification the
 * compiled state is tested against without a kernel (a mask that misses a
 * class hides its entries here as in the kernel), and lets `explain` name
 * the entry that would match.
 */
import { SluiceEndpointFlags, SluiceIdentityReserved, SluicePolicyClass } from '../datapath/generated/abi.js';
import { endpointClasses, endpointDirection, ipcachePrefix, packPolicyKey, type DatapathState, type PortMatch } from './datapath-state.js';
import type { TrafficProtocol } from './match.js';
import type { Direction } from './policy-types.js';

export type DirectionDecision =
  | { readonly verdict: 'no-endpoint' }
  /** SLUICE_EP_F_POLICY_INCOMPLETE: the agent could not write the endpoint's policy; every decision drops. */
  | { readonly verdict: 'incomplete' }
  | { readonly verdict: 'not-isolated' }
  | { readonly verdict: 'allowed'; readonly ruleId: number; readonly remoteIdentity: number; readonly matchedIdentity: number }
  | { readonly verdict: 'denied'; readonly remoteIdentity: number };

const ISOLATED: Readonly<Record<Direction, number>> = {
  ingress: SluiceEndpointFlags.INGRESS_ISOLATED,
  egress: SluiceEndpointFlags.EGRESS_ISOLATED,
};

/** The identity the ipcache gives `addr` (natural-order IPv4). */
export function lookupIdentity(state: DatapathState, addr: number): number {
  for (let len = 32; len >= 0; len--) {
    const network = len === 0 ? 0 : Math.floor(addr / 2 ** (32 - len)) * 2 ** (32 - len);
    const id = state.ipcache.get(ipcachePrefix(network, len));
    if (id !== undefined) return id;
  }
  return SluiceIdentityReserved.WORLD;
}

/**
 * One direction of one packet at `endpointId`: `remoteAddr` is the
 * destination for egress, the source for ingress.
 */
export function lookupDirection(
  state: DatapathState,
  endpointId: number,
  direction: Direction,
  remoteAddr: number,
  protocol: TrafficProtocol,
  dport: number,
): DirectionDecision {
  const ep = state.endpoints.get(endpointId);
  if (ep === undefined) return { verdict: 'no-endpoint' };
  if ((ep.flags & SluiceEndpointFlags.POLICY_INCOMPLETE) !== 0) return { verdict: 'incomplete' };
  if ((ep.flags & ISOLATED[direction]) === 0) return { verdict: 'not-isolated' };
  const remoteIdentity = lookupIdentity(state, remoteAddr);
  const entries = state.policy.get(endpointDirection(endpointId, direction));
  const classes = endpointClasses(ep, direction);
  for (const id of [remoteIdentity, 0]) {
    const ruleId = entries === undefined ? undefined : firstMatch(entries, classes, id, protocol, dport);
    if (ruleId !== undefined) return { verdict: 'allowed', ruleId, remoteIdentity, matchedIdentity: id };
  }
  return { verdict: 'denied', remoteIdentity };
}

/**
 * The rule id of the first entry for (identity, protocol, port) among the
 * classes of `classes`: 16 port bits down to 0, then NO_PORTS (port-less
 * protocols: NO_PORTS only).
 */
function firstMatch(entries: ReadonlyMap<number, number>, classes: number, identity: number, protocol: TrafficProtocol,
  dport: number): number | undefined {
  const has = (c: number): boolean => (classes & (2 ** c)) !== 0;
  if (protocol !== 'ICMP') {
    for (let bits = SluicePolicyClass.PORT_FULL; bits >= 0; bits--) {
      if (!has(bits)) continue;
      const port = Math.floor(dport / 2 ** (16 - bits)) * 2 ** (16 - bits);
      const match: PortMatch = { kind: 'port', protocol, prefix: { port, bits } };
      const r = entries.get(packPolicyKey(identity, match));
      if (r !== undefined) return r;
    }
  }
  return has(SluicePolicyClass.NO_PORTS) ? entries.get(packPolicyKey(identity, { kind: 'any' })) : undefined;
}

/** A connection end as the datapath sees it: an address, and the endpoint id if the pod is local. */
export interface LookupEnd {
  readonly addr: number;
  readonly endpointId?: number;
}

export interface ConnectionDecision {
  readonly allowed: boolean;
  /** At the source's endpoint; undefined when the source is not a local endpoint. */
  readonly egress?: DirectionDecision;
  /** At the destination's endpoint; undefined when it is not local. */
  readonly ingress?: DirectionDecision;
}

/** A new connection from → to: egress at the source's endpoint, then ingress at the destination's. */
export function lookupConnection(
  state: DatapathState,
  from: LookupEnd,
  to: LookupEnd,
  protocol: TrafficProtocol,
  dport: number,
): ConnectionDecision {
  const passes = (d: DirectionDecision | undefined): boolean => d === undefined || d.verdict === 'not-isolated' || d.verdict === 'allowed';
  const egress = from.endpointId === undefined ? undefined : lookupDirection(state, from.endpointId, 'egress', to.addr, protocol, dport);
  if (!passes(egress)) return egress === undefined ? { allowed: false } : { allowed: false, egress };
  const ingress = to.endpointId === undefined ? undefined : lookupDirection(state, to.endpointId, 'ingress', from.addr, protocol, dport);
  return {
    allowed: passes(ingress),
    ...(egress === undefined ? {} : { egress }),
    ...(ingress === undefined ? {} : { ingress }),
  };
}
