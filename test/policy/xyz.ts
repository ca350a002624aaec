/**
 * The cluster of the upstream netpol e2e suite as static objects: namespaces
 * x, y, z (labelled ns=<name>; kubernetes.io/metadata.name is left to the
 * engine to default, as the API server would), pods a, b, c in each
 * (labelled pod=<name>), each serving 80 and 81 over TCP, UDP and SCTP on
 * container ports named serve-<port>-<proto>. Pod IPs: 10.9.<ns>.<pod>, with
 * x=0, y=1, z=2 and a=1, b=2, c=3 (x/a = 10.9.0.1, z/c = 10.9.2.3).
 */
import { buildCluster, type Cluster } from '../../src/policy/cluster.js';
import { formatIssue } from '../../src/policy/errors.js';
import type { Container, ContainerPort, LabelSelector, Namespace, NetworkPolicy, NetworkPolicySpec, Pod } from '../../src/policy/k8s-types.js';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const POD_NAMES = ['a', 'b', 'c'] as const;
/** The nine pods in the order the truth tables use (also the sorted order). */
export const PODS: readonly string[] = NAMESPACES.flatMap((ns) => POD_NAMES.map((p) => `${ns}/${p}`));

export function podIp(id: string): string {
  const [ns, pod] = id.split('/') as [string, string];
  return `10.9.${NAMESPACES.indexOf(ns as 'x')}.${POD_NAMES.indexOf(pod as 'a') + 1}`;
}

export interface XyzOptions {
  /** Labels added to a namespace ("y" → {ns2: "updated"}). */
  readonly namespaceLabels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Labels added to a pod ("x/b" → {pod2: "updated"}). */
  readonly podLabels?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Container ports added to a pod, in an extra container. */
  readonly extraPorts?: Readonly<Record<string, readonly ContainerPort[]>>;
}

export function xyzNamespaces(options: XyzOptions = {}): Namespace[] {
  return NAMESPACES.map((name) => ({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { ns: name, ...(options.namespaceLabels?.[name] ?? {}) } },
  }));
}

export function xyzPods(options: XyzOptions = {}): Pod[] {
  return PODS.map((id) => {
    const [namespace, name] = id.split('/') as [string, string];
    const containers: Container[] = [80, 81].flatMap((port) =>
      ['TCP', 'UDP', 'SCTP'].map((protocol) => ({
        name: `cont-${port}-${protocol.toLowerCase()}`,
        ports: [{ name: `serve-${port}-${protocol.toLowerCase()}`, containerPort: port, protocol }],
      })),
    );
    const extra = options.extraPorts?.[id];
    if (extra !== undefined) containers.push({ name: 'extra', ports: extra });
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace, name, labels: { pod: name, ...(options.podLabels?.[id] ?? {}) } },
      spec: { containers },
      status: { phase: 'Running', podIP: podIp(id) },
    };
  });
}

/** The x/y/z cluster with `policies`; throws with every issue when something is invalid. */
export function xyzCluster(policies: readonly NetworkPolicy[], options: XyzOptions = {}): Cluster {
  const built = buildCluster({ namespaces: xyzNamespaces(options), pods: xyzPods(options), networkPolicies: policies });
  if (!built.ok) throw new Error(`invalid fixture:\n${built.errors.map(formatIssue).join('\n')}`);
  return built.value;
}

/** A NetworkPolicy object. */
export function netpol(namespace: string, name: string, spec: NetworkPolicySpec): NetworkPolicy {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec };
}

export const ALL: LabelSelector = {};
export function pod(name: string): LabelSelector {
  return { matchLabels: { pod: name } };
}
export function ns(name: string): LabelSelector {
  return { matchLabels: { ns: name } };
}
/** Selects a namespace by the label the API server sets. */
export function nsName(name: string): LabelSelector {
  return { matchLabels: { 'kubernetes.io/metadata.name': name } };
}
