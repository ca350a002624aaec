/**
 * Informer caches + this node's endpoints → the snapshot the compiler
 * consumes (a src/policy Cluster plus what the lb and node parts need).
 *
 * Every object is checked on its own. One that cannot be used (a policy
 * with a field Sluice cannot enforce, a pod whose namespace is not known
 * yet, two pods claiming one IP) is left out and reported as a problem
 * naming it; the rest of the cluster is unaffected. Problems are data here;
 * problems.ts turns them into log lines and metrics.
 */
import { formatIp, parseIp } from '../policy/cidr.js';
import { assembleCluster, type Cluster } from '../policy/cluster.js';
import { formatIssue, type PolicyIssue, type PolicyWarning } from '../policy/errors.js';
import { parseNamespace, parsePod, type ClusterNamespace, type ClusterPod } from '../policy/objects.js';
import type { Policy } from '../policy/policy-types.js';
import { validateNetworkPolicy } from '../policy/validate.js';
import type { EndpointRecord } from './endpoints/types.js';
import type { ReadonlyStore } from './k8s/store.js';
import {
  objectKey, type SlimEndpointSlice, type SlimNamespace, type SlimNetworkPolicy, type SlimNode, type SlimPod, type SlimService,
} from './k8s/resources.js';

export type ProblemSeverity = 'error' | 'warning';

/** Something wrong with one object; `error` = the object was left out, `warning` = used with a caveat. */
export interface ObjectProblem {
  /** Pod, Namespace, NetworkPolicy, Endpoint. */
  readonly kind: string;
  /** "namespace/name" or "name" (an endpoint: "containerId/ifname"). */
  readonly name: string;
  readonly severity: ProblemSeverity;
  readonly message: string;
}

/** A CNI-registered endpoint with its pod as the API server describes it (absent when not known yet). */
export interface LocalEndpoint {
  readonly endpoint: EndpointRecord;
  readonly pod?: ClusterPod;
}

export interface AgentSnapshot {
  readonly nodeName: string;
  readonly cluster: Cluster;
  /** Ids ("namespace/name") of pod-network pods bound to this node. */
  readonly localPods: ReadonlySet<string>;
  /** Sorted by endpoint id. */
  readonly localEndpoints: readonly LocalEndpoint[];
  readonly nodes: readonly SlimNode[];
  readonly services: readonly SlimService[];
  readonly endpointSlices: readonly SlimEndpointSlice[];
}

export interface SnapshotSources {
  readonly nodeName: string;
  readonly namespaces: ReadonlyStore<SlimNamespace>;
  readonly pods: ReadonlyStore<SlimPod>;
  readonly networkPolicies: ReadonlyStore<SlimNetworkPolicy>;
  readonly nodes: ReadonlyStore<SlimNode>;
  readonly services: ReadonlyStore<SlimService>;
  readonly endpointSlices: ReadonlyStore<SlimEndpointSlice>;
  readonly endpoints: readonly EndpointRecord[];
}

export type SnapshotResult =
  | { readonly ok: true; readonly snapshot: AgentSnapshot; readonly problems: readonly ObjectProblem[] }
  | { readonly ok: false; readonly problems: readonly ObjectProblem[] };

export function buildSnapshot(src: SnapshotSources): SnapshotResult {
  const problems: ObjectProblem[] = [];
  const report = (kind: string, name: string, severity: ProblemSeverity, message: string): void => {
    problems.push({ kind, name, severity, message });
  };
  const reportIssues = (kind: string, name: string, severity: ProblemSeverity, issues: readonly (PolicyIssue | PolicyWarning)[]): void => {
    if (issues.length > 0) report(kind, name, severity, issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; '));
  };

  const namespaces = new Map<string, ClusterNamespace>();
  for (const raw of src.namespaces.values()) {
    const r = parseNamespace(raw);
    if (r.ok) namespaces.set(r.value.name, r.value);
    else reportIssues('Namespace', objectKey(raw), 'error', r.errors);
  }

  const endpointsByPod = new Map<string, EndpointRecord[]>();
  for (const e of src.endpoints) {
    const id = `${e.podNamespace}/${e.podName}`;
    endpointsByPod.set(id, [...(endpointsByPod.get(id) ?? []), e]);
  }

  const localPods = new Set<string>();
  let pods: ClusterPod[] = [];
  for (const raw of src.pods.values()) {
    const name = objectKey(raw);
    const r = parsePod(raw);
    if (!r.ok) {
      reportIssues('Pod', name, 'error', r.errors);
      continue;
    }
    if (r.value === null) continue; // host network or finished: not an endpoint, by design
    let pod = r.value;
    if (!namespaces.has(pod.namespace)) {
      report('Pod', name, 'error', `namespace "${pod.namespace}" is not known (yet): left out until it is`);
      continue;
    }
    reportIssues('Pod', name, 'warning', r.warnings);
    const local = raw.spec?.nodeName === src.nodeName;
    if (local) localPods.add(pod.id);
    pod = withRegisteredIp(pod, local ? endpointsByPod.get(pod.id) : undefined, report);
    if (pod.ip === undefined) report('Pod', name, 'warning', 'has no IPv4 address yet: left out of the ipcache until it has one');
    pods.push(pod);
  }
  pods = resolveDuplicateIps(pods, src.pods, report);

  const policies: Policy[] = [];
  for (const raw of src.networkPolicies.values()) {
    const name = objectKey(raw);
    const r = validateNetworkPolicy(raw);
    if (!r.ok) {
      reportIssues('NetworkPolicy', name, 'error', r.errors);
      continue;
    }
    if (!namespaces.has(r.value.namespace)) {
      report('NetworkPolicy', name, 'error', `namespace "${r.value.namespace}" is not known (yet): left out until it is`);
      continue;
    }
    reportIssues('NetworkPolicy', name, 'warning', r.warnings);
    policies.push(r.value);
  }

  const assembled = assembleCluster([...namespaces.values()], pods, policies);
  if (!assembled.ok) {
    // Everything assembleCluster checks was screened above; reaching this is a bug, reported as such.
    for (const e of assembled.errors) report('Cluster', e.object ?? '', 'error', formatIssue(e));
    return { ok: false, problems };
  }
  const cluster = assembled.value;

  const localEndpoints: LocalEndpoint[] = [...src.endpoints]
    .sort((a, b) => a.endpointId - b.endpointId)
    .map((endpoint) => {
      const pod = cluster.podsById.get(`${endpoint.podNamespace}/${endpoint.podName}`);
      if (pod === undefined) {
        report('Endpoint', `${endpoint.containerId}/${endpoint.ifname}`, 'warning',
          `pod ${endpoint.podNamespace}/${endpoint.podName} is not known to the API server (yet): the endpoint gets no allow rules until it is`);
        return { endpoint };
      }
      return { endpoint, pod };
    });

  return {
    ok: true,
    problems,
    snapshot: {
      nodeName: src.nodeName,
      cluster,
      localPods,
      localEndpoints,
      nodes: sortedValues(src.nodes),
      services: sortedValues(src.services),
      endpointSlices: sortedValues(src.endpointSlices),
    },
  };
}

type Report = (kind: string, name: string, severity: ProblemSeverity, message: string) => void;

/**
 * A local pod's address as its endpoint registered it: the CNI registers
 * the endpoint before the kubelet reports status.podIP, and the policy of a
 * new pod must be in the maps before its interface comes up.
 */
function withRegisteredIp(pod: ClusterPod, endpoints: readonly EndpointRecord[] | undefined, report: Report): ClusterPod {
  const registered = endpoints?.[0];
  if (registered === undefined) return pod;
  const parsed = parseIp(registered.ip);
  if (typeof parsed === 'string') return pod; // the registry validated it; unreachable
  if (pod.ip === undefined) return { ...pod, ip: parsed };
  if (formatIp(pod.ip) !== registered.ip) {
    report('Pod', pod.id, 'warning',
      `status.podIP ${formatIp(pod.ip)} differs from ${registered.ip} registered by the CNI for endpoint ${registered.endpointId}: using the registered one`);
    return { ...pod, ip: parsed };
  }
  return pod;
}

/**
 * Two pods with one IP (an address reused while the old pod is still being
 * deleted, or an IPAM bug): a pod being deleted yields to one that is not;
 * when that does not settle it, no pod keeps the address, so neither one's
 * policy is applied to the other's traffic.
 */
function resolveDuplicateIps(pods: ClusterPod[], raw: ReadonlyStore<SlimPod>, report: Report): ClusterPod[] {
  const byIp = new Map<string, ClusterPod[]>();
  for (const p of pods) {
    if (p.ip === undefined) continue;
    const ip = formatIp(p.ip);
    byIp.set(ip, [...(byIp.get(ip) ?? []), p]);
  }
  const strip = new Map<string, string>();
  for (const [ip, claimants] of byIp) {
    if (claimants.length < 2) continue;
    const live = claimants.filter((p) => raw.get(p.id)?.metadata.deletionTimestamp === undefined);
    const keeper = live.length === 1 ? live[0] : undefined;
    for (const p of claimants) {
      if (p === keeper) continue;
      const others = claimants.filter((o) => o !== p).map((o) => o.id).join(', ');
      const why = keeper === undefined
        ? `IP ${ip} is also claimed by ${others}: no pod keeps it until only one does`
        : `IP ${ip} is also claimed by ${others}, which is not being deleted: this pod yields it`;
      report('Pod', p.id, keeper === undefined ? 'error' : 'warning', why);
      strip.set(p.id, ip);
    }
  }
  if (strip.size === 0) return pods;
  return pods.map((p) => {
    if (!strip.has(p.id)) return p;
    const { ip: _ip, ...rest } = p;
    return rest;
  });
}

function sortedValues<T extends { metadata: { name: string; namespace?: string } }>(store: ReadonlyStore<T & { metadata: { name: string } }>): T[] {
  return [...store.values()].sort((a, b) => {
    const ka = objectKey(a);
    const kb = objectKey(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}
