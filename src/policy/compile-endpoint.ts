/**
 * The policy entries of one local endpoint in one direction: for each
 * rule of the policies that isolate it, (remote identity or 0 = any peer) ×
 * (no port = every protocol and port | protocol | port prefixes) → rule id.
 *
 * Exactness (the datapath looks up the peer's identity, then 0, and allows
 * on any hit):
 * - peers: `from`/`to` omitted → identity 0; a pod peer → the pod
 *   identities its selectors match; an ipBlock → every identity (pod or
 *   CIDR) whose terms include it (compile-identities.ts);
 * - ports: omitted → one prefix-72 entry (ICMP included); `protocol` alone →
 *   prefix 80; a number or port..endPort → its port prefixes; a named port
 *   → resolved on the destination: on this endpoint's pod for ingress, and
 *   for egress on the remote identity (which carries the names egress rules
 *   use), so an egress named port to "any peer" becomes one entry per pod
 *   identity that defines the name (external addresses have no named ports);
 * - when several rules yield the same key the smallest rule id is kept (the
 *   entry allows either way; events name one of the allowing rules).
 */
import type { Cluster } from './cluster.js';
import { ipBlockTerm, portName, selectPodIdentities, type IdentityAssignment } from './compile-identities.js';
import { packPolicyKey, type PortMatch } from './datapath-state.js';
import type { ClusterPod } from './objects.js';
import type { Direction, Policy, PolicyRule, PortMatcher } from './policy-types.js';
import { policyId } from './policy-types.js';
import { portRangeToPrefixes } from './ports.js';
import { ruleKey, type RuleTable } from './rule-ids.js';

/** Identity 0 in a policy key: any peer. */
export const ANY_PEER = 0;

const ANY_PORT: PortMatch = { kind: 'any' };

export interface EndpointCompileContext {
  readonly cluster: Cluster;
  readonly identities: IdentityAssignment;
  readonly rules: RuleTable;
  /** Selector → identities, shared by every endpoint of one compile. */
  readonly selectorCache: Map<string, readonly number[]>;
  /** ipBlock peer → its term key. */
  readonly termKeys: WeakMap<object, string>;
}

/** Entries (packed key → rule id) of `pod` for `direction`, given the policies that isolate it. */
export function compileEndpointDirection(
  ctx: EndpointCompileContext,
  pod: ClusterPod,
  direction: Direction,
  isolating: readonly Policy[],
): Map<number, number> {
  const entries = new Map<number, number>();
  const put = (identity: number, match: PortMatch, ruleId: number): void => {
    const key = packPolicyKey(identity, match);
    const had = entries.get(key);
    if (had === undefined || ruleId < had) entries.set(key, ruleId);
  };
  for (const policy of isolating) {
    for (const rule of direction === 'ingress' ? policy.ingress : policy.egress) {
      const ruleId = ctx.rules.byKey.get(ruleKey({ policy: policyId(policy), direction, index: rule.index }));
      if (ruleId === undefined) throw new Error(`internal: no rule id for ${policyId(policy)} ${direction}[${rule.index}]`);
      const peers = peerIdentities(ctx, rule);
      if (rule.ports === 'all') {
        for (const id of peers) put(id, ANY_PORT, ruleId);
        continue;
      }
      for (const matcher of rule.ports) {
        for (const [id, match] of portEntries(ctx, pod, direction, matcher, peers)) put(id, match, ruleId);
      }
    }
  }
  return entries;
}

/** [ANY_PEER] for a rule without peers, else the distinct identities its peers match. */
function peerIdentities(ctx: EndpointCompileContext, rule: PolicyRule): readonly number[] {
  if (rule.peers === 'all') return [ANY_PEER];
  if (rule.peers.length === 1) return peerIds(ctx, rule.peers[0]!);
  const ids = new Set<number>();
  for (const peer of rule.peers) for (const id of peerIds(ctx, peer)) ids.add(id);
  return [...ids];
}

function peerIds(ctx: EndpointCompileContext, peer: Exclude<PolicyRule['peers'], 'all'>[number]): readonly number[] {
  if (peer.kind === 'pods') return selectPodIdentities(ctx.cluster, ctx.identities, peer.namespaces, peer.pods, ctx.selectorCache);
  if (peer.cidr.family !== 4) return [];
  return ctx.identities.byTerm.get(termKeyOf(ctx, peer)) ?? [];
}

type IpBlockPeer = Extract<Exclude<PolicyRule['peers'], 'all'>[number], { kind: 'ipBlock' }>;

/** The universe's key of an ipBlock peer, memoized per peer object (validated policies are immutable). */
function termKeyOf(ctx: EndpointCompileContext, peer: IpBlockPeer): string {
  let key = ctx.termKeys.get(peer);
  if (key === undefined) {
    key = ipBlockTerm(peer.cidr, peer.except).key;
    ctx.termKeys.set(peer, key);
  }
  return key;
}

function* portEntries(
  ctx: EndpointCompileContext,
  pod: ClusterPod,
  direction: Direction,
  matcher: PortMatcher,
  peers: readonly number[],
): Generator<readonly [number, PortMatch]> {
  const { protocol, port } = matcher;
  switch (port.kind) {
    case 'all':
      for (const id of peers) yield [id, { kind: 'port', protocol, prefix: { port: 0, bits: 0 } }];
      return;
    case 'range': {
      const prefixes = portRangeToPrefixes(port.from, port.to);
      for (const id of peers) for (const prefix of prefixes) yield [id, { kind: 'port', protocol, prefix }];
      return;
    }
    case 'named':
      if (direction === 'ingress') {
        // The destination is this endpoint: one meaning for every peer.
        for (const p of pod.ports) {
          if (p.name !== port.name || p.protocol !== protocol) continue;
          for (const id of peers) yield [id, { kind: 'port', protocol, prefix: { port: p.port, bits: 16 } }];
        }
        return;
      }
      {
        const name = portName(port.name, protocol);
        for (const id of peers) {
          if (id === 0) {
            for (const [pid, n] of ctx.identities.byPortName.get(name) ?? []) yield [pid, { kind: 'port', protocol, prefix: { port: n, bits: 16 } }];
            continue;
          }
          const s = ctx.identities.table.byId.get(id);
          const n = s?.kind === 'pod' ? s.namedPorts.get(name) : undefined;
          if (n !== undefined) yield [id, { kind: 'port', protocol, prefix: { port: n, bits: 16 } }];
        }
      }
      return;
  }
}
