/**
 * A cluster snapshot: namespaces, pod-network pods and compiled policies,
 * checked against each other (every pod and policy lives in a known
 * namespace; names and pod IPs are unique) and indexed for the evaluator.
 * Immutable: a change is a new snapshot.
 */
import { formatIp } from './cidr.js';
import { IssueList, type Checked, type PolicyIssue, type PolicyWarning } from './errors.js';
import type { Namespace, NetworkPolicy, Pod } from './k8s-types.js';
import { parseNamespace, parsePod, type ClusterNamespace, type ClusterPod } from './objects.js';
import { policyId, type Policy } from './policy-types.js';
import { validateNetworkPolicy } from './validate.js';

export interface Cluster {
  readonly namespaces: ReadonlyMap<string, ClusterNamespace>;
  /** Sorted by id ("namespace/name"). */
  readonly pods: readonly ClusterPod[];
  readonly podsById: ReadonlyMap<string, ClusterPod>;
  /** Keyed by the formatted address ("10.9.0.1"). */
  readonly podsByIp: ReadonlyMap<string, ClusterPod>;
  /** Sorted by "namespace/name". */
  readonly policies: readonly Policy[];
  readonly policiesByNamespace: ReadonlyMap<string, readonly Policy[]>;
}

export interface ClusterInput {
  readonly namespaces?: readonly Namespace[];
  readonly pods?: readonly Pod[];
  readonly networkPolicies?: readonly NetworkPolicy[];
  /** Namespace of pods and policies whose metadata has none. Default "default". */
  readonly defaultNamespace?: string;
}

/** Parses and cross-checks raw objects into a snapshot; all problems are reported together. */
export function buildCluster(input: ClusterInput): Checked<Cluster> {
  const errors: PolicyIssue[] = [];
  const warnings: PolicyWarning[] = [];
  const collect = <T>(r: Checked<T>): T | undefined => {
    warnings.push(...r.warnings);
    if (r.ok) return r.value;
    errors.push(...r.errors);
    return undefined;
  };
  const options = input.defaultNamespace === undefined ? {} : { defaultNamespace: input.defaultNamespace };
  const namespaces = (input.namespaces ?? []).map((n) => collect(parseNamespace(n)));
  const pods = (input.pods ?? []).map((p) => collect(parsePod(p, options)));
  const policies = (input.networkPolicies ?? []).map((p) => collect(validateNetworkPolicy(p, options)));
  const assembled = assembleCluster(
    namespaces.filter((n) => n !== undefined),
    pods.filter((p) => p !== undefined && p !== null),
    policies.filter((p) => p !== undefined),
  );
  if (!assembled.ok) errors.push(...assembled.errors);
  if (errors.length > 0 || !assembled.ok) return { ok: false, errors, warnings };
  return { ok: true, value: assembled.value, warnings };
}

/** Cross-checks already parsed objects and builds the indexes. */
export function assembleCluster(
  namespaces: readonly ClusterNamespace[],
  pods: readonly ClusterPod[],
  policies: readonly Policy[],
): Checked<Cluster> {
  const issues = new IssueList();
  const nsMap = new Map<string, ClusterNamespace>();
  for (const ns of namespaces) {
    if (nsMap.has(ns.name)) issues.error('duplicate', '', 'defined twice', `Namespace ${ns.name}`);
    nsMap.set(ns.name, ns);
  }

  const podsById = new Map<string, ClusterPod>();
  const podsByIp = new Map<string, ClusterPod>();
  for (const pod of pods) {
    if (!nsMap.has(pod.namespace)) {
      issues.error('not-found', 'metadata.namespace', `namespace "${pod.namespace}" has no Namespace object`, `Pod ${pod.id}`);
    }
    if (podsById.has(pod.id)) issues.error('duplicate', '', 'defined twice', `Pod ${pod.id}`);
    podsById.set(pod.id, pod);
    if (pod.ip !== undefined) {
      const ip = formatIp(pod.ip);
      const other = podsByIp.get(ip);
      if (other !== undefined && other.id !== pod.id) {
        issues.error('duplicate', 'status.podIP', `${ip} is also the IP of Pod ${other.id}`, `Pod ${pod.id}`);
      }
      podsByIp.set(ip, pod);
    }
  }

  const byId = new Map<string, Policy>();
  for (const policy of policies) {
    const id = policyId(policy);
    if (!nsMap.has(policy.namespace)) {
      issues.error('not-found', 'metadata.namespace', `namespace "${policy.namespace}" has no Namespace object`, `NetworkPolicy ${id}`);
    }
    if (byId.has(id)) issues.error('duplicate', '', 'defined twice', `NetworkPolicy ${id}`);
    byId.set(id, policy);
  }
  const sortedPolicies = [...byId.entries()].sort(([a], [b]) => compare(a, b)).map(([, p]) => p);
  const policiesByNamespace = new Map<string, Policy[]>();
  for (const p of sortedPolicies) {
    const list = policiesByNamespace.get(p.namespace) ?? [];
    list.push(p);
    policiesByNamespace.set(p.namespace, list);
  }

  return issues.result<Cluster>({
    namespaces: nsMap,
    pods: [...podsById.values()].sort((a, b) => compare(a.id, b.id)),
    podsById,
    podsByIp,
    policies: sortedPolicies,
    policiesByNamespace,
  });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
