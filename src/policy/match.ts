/**
 * The matching predicates of NetworkPolicy, one per concept: which pods a
 * policy selects, whether a remote endpoint is one of a rule's peers, and
 * whether a destination port/protocol is one of a rule's ports. The evaluator
 * composes them; the map compiler is tested against them.
 */
import { cidrContainsIp, type IpAddress } from './cidr.js';
import type { Cluster } from './cluster.js';
import type { ClusterPod } from './objects.js';
import type { PeerMatcher, Policy, PolicyRule, PortMatcher, Protocol } from './policy-types.js';
import { matchesSelector } from './selectors.js';

/** A connection end: a pod of the cluster, or an address outside it. */
export type Endpoint =
  | { readonly kind: 'pod'; readonly pod: ClusterPod }
  | { readonly kind: 'external'; readonly ip: IpAddress };

/** Protocols of traffic: the policy protocols plus ICMP, which only port-less rules allow. */
export type TrafficProtocol = Protocol | 'ICMP';

/** The policy applies to `pod`: same namespace and the podSelector matches. */
export function policySelectsPod(policy: Policy, pod: ClusterPod): boolean {
  return policy.namespace === pod.namespace && matchesSelector(policy.podSelector, pod.labels);
}

/**
 * `remote` is one of the peers `peer` describes. Pod selectors see only pods
 * (a lone podSelector only those of the policy's namespace); an ipBlock sees
 * any address, pod IPs included (the upstream conformance tests rely on it).
 */
export function peerMatches(cluster: Cluster, peer: PeerMatcher, remote: Endpoint): boolean {
  if (peer.kind === 'ipBlock') {
    const ip = remote.kind === 'pod' ? remote.pod.ip : remote.ip;
    if (ip === undefined || !cidrContainsIp(peer.cidr, ip)) return false;
    return !peer.except.some((e) => cidrContainsIp(e, ip));
  }
  if (remote.kind !== 'pod') return false;
  const pod = remote.pod;
  if (peer.namespaces.kind === 'policy-namespace') {
    if (pod.namespace !== peer.namespaces.namespace) return false;
  } else {
    const ns = cluster.namespaces.get(pod.namespace);
    if (ns === undefined || !matchesSelector(peer.namespaces.selector, ns.labels)) return false;
  }
  return matchesSelector(peer.pods, pod.labels);
}

/**
 * The destination port/protocol is one `matcher` allows. Named ports resolve
 * on the destination pod (for ingress and egress alike): the name must be a
 * container port of that pod with the matcher's protocol. An external
 * destination has no named ports.
 */
export function portMatches(matcher: PortMatcher, destination: Endpoint, port: number, protocol: TrafficProtocol): boolean {
  if (matcher.protocol !== protocol) return false;
  const spec = matcher.port;
  switch (spec.kind) {
    case 'all':
      return true;
    case 'range':
      return port >= spec.from && port <= spec.to;
    case 'named':
      return resolveNamedPort(destination, spec.name, matcher.protocol).includes(port);
  }
}

/** The port numbers `name` means on `destination` for `protocol` (none when it has no such port). */
export function resolveNamedPort(destination: Endpoint, name: string, protocol: Protocol): number[] {
  if (destination.kind !== 'pod') return [];
  return destination.pod.ports.filter((p) => p.name === name && p.protocol === protocol).map((p) => p.port);
}

/**
 * A rule of a policy allows traffic between the policy's pod and `remote`:
 * some peer matches (or the rule has none), and some port matches (or the
 * rule has none; then ICMP is allowed too).
 */
export function ruleAllows(
  cluster: Cluster,
  rule: PolicyRule,
  remote: Endpoint,
  destination: Endpoint,
  port: number,
  protocol: TrafficProtocol,
): boolean {
  const peerOk = rule.peers === 'all' || rule.peers.some((p) => peerMatches(cluster, p, remote));
  if (!peerOk) return false;
  return rule.ports === 'all' || rule.ports.some((m) => portMatches(m, destination, port, protocol));
}
