/**
 * The reference evaluator: is a new connection from → to on port/protocol
 * allowed, and by which rules? It is written for clarity, not speed, and is
 * the oracle the BPF engine is tested against.
 *
 * Semantics (networking.k8s.io/v1):
 * - a pod is isolated for a direction once any policy of its namespace
 *   selects it and affects that direction; a non-isolated direction allows
 *   everything;
 * - an isolated direction allows exactly what the union of the rules of the
 *   selecting policies allows (policies are additive, there is no deny rule);
 * - a connection needs the source's egress AND the destination's ingress;
 *   an endpoint outside the cluster has no policy of its own.
 *
 * Out of scope, on purpose:
 * - replies. The model answers for the packet that opens a connection; the
 *   reply of an allowed connection is the datapath's business (conntrack),
 *   and a "reply" the model is asked about is just a connection the other way;
 * - loopback. A pod's traffic to its own IP never leaves its network
 *   namespace in the real datapath, so it is never policed there; the model
 *   still answers from → from by the rules (as BPF_PROG_TEST_RUN would), and
 *   upstream conformance ignores that diagonal;
 * - node/host traffic (kubelet probes) and Services: callers resolve Service
 *   addresses to pods before asking.
 */
import { formatIp, parseIp } from './cidr.js';
import type { Cluster } from './cluster.js';
import { PolicyError } from './errors.js';
import { policySelectsPod, ruleAllows, type Endpoint, type TrafficProtocol } from './match.js';
import type { ClusterPod } from './objects.js';
import { PROTOCOLS, policyId, type Direction, type Policy } from './policy-types.js';

export const TRAFFIC_PROTOCOLS: readonly TrafficProtocol[] = [...PROTOCOLS, 'ICMP'];

/** One rule of one policy: `x/allow-b ingress[1]`. */
export interface RuleRef {
  readonly policy: string;
  readonly direction: Direction;
  readonly index: number;
}

export interface DirectionVerdict {
  readonly direction: Direction;
  /** The pod whose policies decide: the source for egress, the destination for ingress. Undefined for an external endpoint. */
  readonly pod?: string;
  /** Policies that select the pod for this direction (sorted); empty = not isolated. */
  readonly isolatedBy: readonly string[];
  /** Rules of those policies that allow the connection. */
  readonly allowedBy: readonly RuleRef[];
  readonly allowed: boolean;
}

export interface Verdict {
  readonly allowed: boolean;
  /** One line for people: what allowed it, or what isolates and that nothing matched. */
  readonly reason: string;
  /** Every rule that allowed the connection (egress then ingress); empty when denied. */
  readonly rules: readonly RuleRef[];
  readonly egress: DirectionVerdict;
  readonly ingress: DirectionVerdict;
}

export function formatRuleRef(r: RuleRef): string {
  return `${r.policy} ${r.direction}[${r.index}]`;
}

/**
 * Evaluates a new connection. `from` and `to` are pods ("namespace/name") or
 * IPv4 addresses; an address that is a pod's IP means that pod (as the
 * ipcache makes it mean in the datapath). The port is ignored for ICMP.
 * Throws PolicyError for an unknown pod, a malformed address or port.
 */
export function evaluate(cluster: Cluster, from: string, to: string, port: number, protocol: TrafficProtocol): Verdict {
  if (!TRAFFIC_PROTOCOLS.includes(protocol)) {
    throw new PolicyError('invalid', `protocol "${String(protocol)}" is not one of ${TRAFFIC_PROTOCOLS.join(', ')}`, 'protocol');
  }
  if (protocol !== 'ICMP' && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new PolicyError('invalid', `port must be 1..65535, got ${port}`, 'port');
  }
  const source = resolveEndpoint(cluster, from, 'from');
  const destination = resolveEndpoint(cluster, to, 'to');
  const egress = evaluateDirection(cluster, 'egress', source, destination, destination, port, protocol);
  const ingress = evaluateDirection(cluster, 'ingress', destination, source, destination, port, protocol);
  const allowed = egress.allowed && ingress.allowed;
  const what = `${describeEndpoint(source)} → ${describeEndpoint(destination)} ${describeTraffic(port, protocol)}`;
  const parts = [egress, ingress].map((d) => explainDirection(d, source, destination, port, protocol)).filter((s) => s !== '');
  if (parts.length === 0) parts.push('neither end is a pod, so no policy applies');
  return {
    allowed,
    reason: `${allowed ? 'allowed' : 'denied'}: ${what}: ${parts.join('; ')}`,
    rules: allowed ? [...egress.allowedBy, ...ingress.allowedBy] : [],
    egress,
    ingress,
  };
}

/** "x/a" → that pod; "10.9.0.1" → the pod with that IP, or an external endpoint. */
export function resolveEndpoint(cluster: Cluster, ref: string, field = 'endpoint'): Endpoint {
  if (ref.includes('/')) {
    const pod = cluster.podsById.get(ref);
    if (pod === undefined) throw new PolicyError('not-found', `no pod "${ref}" in the cluster`, field);
    return { kind: 'pod', pod };
  }
  const ip = parseIp(ref);
  if (typeof ip === 'string') throw new PolicyError('invalid', `"${ref}" is neither namespace/pod nor an IP address`, field);
  const pod = cluster.podsByIp.get(formatIp(ip));
  return pod === undefined ? { kind: 'external', ip } : { kind: 'pod', pod };
}

/**
 * One direction of a connection, decided by `local`'s policies: egress of the
 * source (remote = destination) or ingress of the destination (remote = source).
 * `destination` resolves named ports in both cases.
 */
export function evaluateDirection(
  cluster: Cluster,
  direction: Direction,
  local: Endpoint,
  remote: Endpoint,
  destination: Endpoint,
  port: number,
  protocol: TrafficProtocol,
): DirectionVerdict {
  if (local.kind !== 'pod') return { direction, isolatedBy: [], allowedBy: [], allowed: true };
  const isolating = isolatingPolicies(cluster, local.pod, direction);
  const allowedBy: RuleRef[] = [];
  for (const policy of isolating) {
    for (const rule of direction === 'ingress' ? policy.ingress : policy.egress) {
      if (ruleAllows(cluster, rule, remote, destination, port, protocol)) {
        allowedBy.push({ policy: policyId(policy), direction, index: rule.index });
      }
    }
  }
  return {
    direction,
    pod: local.pod.id,
    isolatedBy: isolating.map(policyId),
    allowedBy,
    allowed: isolating.length === 0 || allowedBy.length > 0,
  };
}

/** Policies that select `pod` and affect `direction` (sorted by id). */
export function isolatingPolicies(cluster: Cluster, pod: ClusterPod, direction: Direction): Policy[] {
  const candidates = cluster.policiesByNamespace.get(pod.namespace) ?? [];
  return candidates.filter((p) => p.affects[direction] && policySelectsPod(p, pod));
}

function explainDirection(d: DirectionVerdict, source: Endpoint, destination: Endpoint, port: number, protocol: TrafficProtocol): string {
  if (d.pod === undefined) return '';
  const head = d.direction === 'egress' ? `egress from ${d.pod}` : `ingress to ${d.pod}`;
  if (d.isolatedBy.length === 0) return `${head} not isolated (no policy selects it for ${d.direction})`;
  if (d.allowed) return `${head} allowed by ${d.allowedBy.map(formatRuleRef).join(', ')}`;
  const remote = d.direction === 'egress' ? `to ${describeEndpoint(destination)}` : `from ${describeEndpoint(source)}`;
  const whose = d.isolatedBy.length === 1 ? 'its' : 'their';
  return (
    `${head} denied: isolated by ${d.isolatedBy.join(', ')} and none of ${whose} ${d.direction} rules ` +
    `allows traffic ${remote} on ${describeTraffic(port, protocol)}`
  );
}

function describeEndpoint(e: Endpoint): string {
  return e.kind === 'pod' ? e.pod.id : `${formatIp(e.ip)} (outside the cluster)`;
}

function describeTraffic(port: number, protocol: TrafficProtocol): string {
  return protocol === 'ICMP' ? 'ICMP' : `${protocol}/${port}`;
}
