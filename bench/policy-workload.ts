/**
 * A synthetic cluster for bench/policy: 100 namespaces, pods spread evenly
 * (labels app-0..9, tier, version; named ports "http" = 80 or 8080 and
 * "metrics"), and policies of the shapes real clusters use, cycled in order:
 * a per-namespace baseline (every pod isolated, the namespace on port 80),
 * allow app→app on a port, allow from the next
 * team's namespaces on the named port, egress to an app on an endPort range
 * plus DNS, ingress from an ipBlock with an except hole, metrics scraped
 * from the monitoring namespace, and egress to a shared service of the
 * team's prod namespaces on a named port. Every policy selects about a
 * tenth of its namespace. Deterministic: the same sizes give the same cluster.
 */
import type { Namespace, NetworkPolicy, NetworkPolicySpec, Pod } from '../src/policy/k8s-types.js';

export const NAMESPACES = 100;

export interface Workload {
  readonly namespaces: Namespace[];
  readonly pods: Pod[];
  readonly policies: NetworkPolicy[];
}

const nsName = (i: number): string => `ns-${String(i).padStart(2, '0')}`;

export function workload(policyCount: number, podCount: number): Workload {
  const namespaces: Namespace[] = [];
  for (let i = 0; i < NAMESPACES; i++) {
    namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: nsName(i), labels: { team: `t${i % 10}`, env: i % 2 === 0 ? 'prod' : 'dev' } } });
  }
  const pods: Pod[] = [];
  for (let i = 0; i < podCount; i++) {
    const ns = i % NAMESPACES;
    const j = Math.floor(i / NAMESPACES);
    pods.push({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: nsName(ns), name: `pod-${j}`, labels: { app: `app-${j % 10}`, tier: j % 2 === 0 ? 'frontend' : 'backend', version: `v${j % 3}` } },
      spec: { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: j % 4 === 0 ? 8080 : 80 }, { name: 'metrics', containerPort: 9090 }] }] },
      status: { phase: 'Running', podIP: `10.${ns}.${Math.floor(j / 250)}.${(j % 250) + 1}` },
    });
  }
  const policies: NetworkPolicy[] = [];
  for (let k = 0; k < policyCount; k++) {
    const ns = k % NAMESPACES;
    const round = Math.floor(k / NAMESPACES);
    policies.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: nsName(ns), name: `pol-${round}` }, spec: policySpec(ns, round) });
  }
  return { namespaces, pods, policies };
}

/** The `round`-th policy of namespace `ns`. */
export function policySpec(ns: number, round: number, variant = 0): NetworkPolicySpec {
  const app = (n: number): { matchLabels: Record<string, string> } => ({ matchLabels: { app: `app-${n % 10}` } });
  const self = app(round + variant);
  switch (round % 7) {
    case 0:
      // The namespace's baseline: every pod isolated, the namespace may talk to itself on 80.
      return round === 0
        ? { podSelector: {}, ingress: [{ from: [{ podSelector: {} }], ports: [{ port: 80 }] }] }
        : { podSelector: self, ingress: [{ from: [{ podSelector: app(round + 1) }] }] };
    case 1:
      return { podSelector: self, ingress: [{ from: [{ podSelector: app(round + 3) }], ports: [{ port: 80 + variant }] }] };
    case 2:
      return {
        podSelector: self,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: `t${(ns + 1) % 10}` } }, podSelector: app(round + 5) }], ports: [{ port: 'http' }] }],
      };
    case 3:
      return {
        podSelector: self,
        policyTypes: ['Egress'],
        egress: [{ to: [{ podSelector: app(round + 2) }], ports: [{ port: 8000, endPort: 8100 + variant }] }, { ports: [{ protocol: 'UDP', port: 53 }] }],
      };
    case 4:
      return {
        podSelector: self,
        ingress: [{ from: [{ ipBlock: { cidr: `10.${(ns + 1) % NAMESPACES}.0.0/16`, except: [`10.${(ns + 1) % NAMESPACES}.0.0/25`] } }], ports: [{ port: 443 + variant }] }],
      };
    case 5:
      // Scraped by the monitoring namespace (ns-00).
      return {
        podSelector: self,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': nsName(0) } }, podSelector: app(round) }], ports: [{ port: 'metrics' }] }],
      };
    default:
      // A shared service in a prod namespace of the same team, on its named port.
      return {
        podSelector: self,
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: { matchLabels: { team: `t${ns % 10}`, env: 'prod' } }, podSelector: app(round + 4) }], ports: [{ port: 'http' }] }],
      };
  }
}
