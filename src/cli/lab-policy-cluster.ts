/**
 * The cluster a lab's policy is compiled against: the lab's pods (names,
 * addresses and endpoint ids from the lab's state) and the manifests'
 * Namespaces and NetworkPolicies. A lab pod is `default/<name>` labelled
 * `app: <name>`, with no container ports, unless the manifests hold a Pod of
 * that name: then its namespace, labels and container ports (named ports!)
 * are the lab pod's. Such a Pod must name a lab pod, and its status.podIP,
 * if set, must be the lab pod's address. Pure.
 */
import { formatIp, parseIp } from '../policy/cidr.js';
import { assembleCluster, type Cluster } from '../policy/cluster.js';
import { formatIssue } from '../policy/errors.js';
import { parseNamespace, type ClusterNamespace, type ClusterPod } from '../policy/objects.js';

export const LAB_POD_NAMESPACE = 'default';

export interface LabPod {
  readonly name: string;
  readonly ipv4: string;
  readonly endpointId: number;
}

export interface LabCluster {
  readonly cluster: Cluster;
  /** Pod id ("namespace/name") → endpoint id. */
  readonly endpoints: ReadonlyMap<string, number>;
}

export type LabClusterResult = { readonly ok: true; readonly value: LabCluster } | { readonly ok: false; readonly errors: readonly string[] };

/** `manifests` as loaded from the files (its pods describe lab pods). */
export function labCluster(labPods: readonly LabPod[], manifests: Cluster): LabClusterResult {
  const errors: string[] = [];
  const byName = new Map<string, ClusterPod>();
  for (const p of manifests.pods) {
    if (!labPods.some((l) => l.name === p.name)) {
      errors.push(`Pod ${p.id}: the lab has no pod "${p.name}" (pods: ${labPods.map((l) => l.name).join(', ')})`);
      continue;
    }
    const other = byName.get(p.name);
    if (other !== undefined) errors.push(`Pod ${p.id}: lab pod "${p.name}" is already described by Pod ${other.id}`);
    else byName.set(p.name, p);
  }
  const pods: ClusterPod[] = [];
  const endpoints = new Map<string, number>();
  for (const l of labPods) {
    const ip = parseIp(l.ipv4);
    if (typeof ip === 'string') {
      errors.push(`lab pod ${l.name}: ${ip}`);
      continue;
    }
    const described = byName.get(l.name);
    if (described?.ip !== undefined && formatIp(described.ip) !== formatIp(ip)) {
      errors.push(`Pod ${described.id}: status.podIP: ${formatIp(described.ip)} is not the lab pod's address ${l.ipv4}`);
      continue;
    }
    const namespace = described?.namespace ?? LAB_POD_NAMESPACE;
    const pod: ClusterPod = {
      namespace,
      name: l.name,
      id: `${namespace}/${l.name}`,
      labels: described?.labels ?? { app: l.name },
      ip,
      ports: described?.ports ?? [],
    };
    pods.push(pod);
    endpoints.set(pod.id, l.endpointId);
  }
  const namespaces: ClusterNamespace[] = [...manifests.namespaces.values()];
  for (const ns of new Set(pods.map((p) => p.namespace))) {
    if (manifests.namespaces.has(ns)) continue;
    const implied = parseNamespace({ metadata: { name: ns } });
    if (implied.ok) namespaces.push(implied.value);
  }
  if (errors.length > 0) return { ok: false, errors };
  const assembled = assembleCluster(namespaces, pods, manifests.policies);
  if (!assembled.ok) return { ok: false, errors: assembled.errors.map(formatIssue) };
  return { ok: true, value: { cluster: assembled.value, endpoints } };
}
