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
import { formatIp, type IpAddress } from '../policy/cidr.js';
import { assembleCluster, type Cluster } from '../policy/cluster.js';
import { formatIssue, type PolicyIssue, type PolicyWarning } from '../policy/errors.js';
import type { ClusterNamespace, ClusterPod } from '../policy/objects.js';
import type { Policy } from '../policy/policy-types.js';
import type { EndpointRecord } from '../endpoint/contract.js';
import type { ReadonlyStore } from './k8s/store.js';
import {
  objectKey, type SlimEndpointSlice, type SlimNamespace, type SlimNetworkPolicy, type SlimNode, type SlimPod, type SlimService,
} from './k8s/resources.js';
import { hostPortsOf, lbInputFrom, lbServicesOf, lbSlicesOf, type LbInput } from './lb-input.js';
import { SnapshotCache } from './snapshot-cache.js';

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
  /** The load balancer's input (lb-input.ts); the same object while nodes, Services and slices are unchanged. */
  readonly lb: LbInput;
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
  /** Parse results kept between snapshots (unchanged objects come out as the same objects). Default: none kept. */
  readonly parsed?: SnapshotCache;
}

export type SnapshotResult =
  | { readonly ok: true; readonly snapshot: AgentSnapshot; readonly problems: readonly ObjectProblem[] }
  | { readonly ok: false; readonly problems: readonly ObjectProblem[] };

export function buildSnapshot(src: SnapshotSources): SnapshotResult {
  const problems: ObjectProblem[] = [];
  const report = (kind: string, name: string, severity: ProblemSeverity, message: string): void => {
    problems.push({ kind, name, severity, message });
  };

  const parsed = src.parsed ?? new SnapshotCache();
  const namespaces = new Map<string, ClusterNamespace>();
  for (const raw of src.namespaces.values()) {
    const r = parsed.namespace(raw);
    if (r.ok) namespaces.set(r.value.name, r.value);
    else reportIssues(report, 'Namespace', objectKey(raw), 'error', r.errors);
  }

  // The pods part depends on these alone; a policy change reuses it whole (same objects, same problems).
  const podInputs = [src.nodeName, ...namespaces.keys(), '', ...src.pods.values(), '', ...src.endpoints];
  const podPart = parsed.derive('pods', podInputs, () => clusterPods(src, namespaces, parsed));
  problems.push(...podPart.problems);
  const { pods, localPods } = podPart;

  const policies: Policy[] = [];
  for (const raw of src.networkPolicies.values()) {
    const name = objectKey(raw);
    const r = parsed.policy(raw);
    if (!r.ok) {
      reportIssues(report, 'NetworkPolicy', name, 'error', r.errors);
      continue;
    }
    if (!namespaces.has(r.value.namespace)) {
      report('NetworkPolicy', name, 'error', `namespace "${r.value.namespace}" is not known (yet): left out until it is`);
      continue;
    }
    reportIssues(report, 'NetworkPolicy', name, 'warning', r.warnings);
    policies.push(r.value);
  }

  // Pods and policies are cross-checked and indexed apart: the pod half (5,000 pods: maps by id and
  // IP, the sorted list) is made again only when namespaces or pods change, not for a policy change.
  const namespaceList = [...namespaces.values()];
  const podHalf = parsed.derive('cluster-pods', [...namespaceList, podPart], () => assembleCluster(namespaceList, pods, []));
  const policyHalf = assembleCluster(namespaceList, [], policies);
  if (!podHalf.ok || !policyHalf.ok) {
    // Everything assembleCluster checks was screened above; reaching this is a bug, reported as such.
    for (const e of [...(podHalf.ok ? [] : podHalf.errors), ...(policyHalf.ok ? [] : policyHalf.errors)]) {
      report('Cluster', e.object ?? '', 'error', formatIssue(e));
    }
    return { ok: false, problems };
  }
  const cluster: Cluster = { ...podHalf.value, policies: policyHalf.value.policies, policiesByNamespace: policyHalf.value.policiesByNamespace };

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

  const nodes = parsed.sorted(src.nodes);
  const services = parsed.sorted(src.services);
  const endpointSlices = parsed.sorted(src.endpointSlices);
  // Made again apart: a slice change reuses the Services part (and its algorithms map, which the planner compares by identity).
  const lbParsers = { service: (r: SlimService) => parsed.lbService(r), slice: (r: SlimEndpointSlice) => parsed.lbSlice(r) };
  const lbServices = parsed.derive('lb-services', [services], () => lbServicesOf(services, lbParsers));
  const lbSlices = parsed.derive('lb-slices', [endpointSlices], () => lbSlicesOf(endpointSlices, lbParsers));
  // The pods' hostPorts: kept as the same object while the mappings are the same, so that a pod change
  // without one leaves the load balancer's input alone.
  const hostPorts = parsed.keepEqual('lb-host-ports', parsed.derive('lb-host-ports-raw', [podPart], () => hostPortsOf(src.pods.values(), src.nodeName)));
  const lb = parsed.derive('lb', [src.nodeName, nodes, lbServices, lbSlices, hostPorts], () => lbInputFrom(src.nodeName, nodes, lbServices, lbSlices, hostPorts));
  problems.push(...lb.problems);

  return {
    ok: true,
    problems,
    snapshot: { nodeName: src.nodeName, cluster, localPods, localEndpoints, nodes, services, endpointSlices, lb: lb.input },
  };
}

type Report = (kind: string, name: string, severity: ProblemSeverity, message: string) => void;

interface PodPart {
  readonly pods: readonly ClusterPod[];
  readonly localPods: ReadonlySet<string>;
  readonly problems: readonly ObjectProblem[];
}

/** The pods that go into the cluster (parsed, in a known namespace, registered IPs filled in, duplicate IPs settled) and this node's. */
function clusterPods(src: SnapshotSources, namespaces: ReadonlyMap<string, ClusterNamespace>, parsed: SnapshotCache): PodPart {
  const problems: ObjectProblem[] = [];
  const report: Report = (kind, name, severity, message) => {
    problems.push({ kind, name, severity, message });
  };
  const endpointsByPod = new Map<string, EndpointRecord[]>();
  for (const e of src.endpoints) {
    const id = `${e.podNamespace}/${e.podName}`;
    endpointsByPod.set(id, [...(endpointsByPod.get(id) ?? []), e]);
  }
  const localPods = new Set<string>();
  const pods: ClusterPod[] = [];
  for (const raw of src.pods.values()) {
    const name = objectKey(raw);
    const r = parsed.pod(raw);
    if (!r.ok) {
      reportIssues(report, 'Pod', name, 'error', r.errors);
      continue;
    }
    if (r.value === null) continue; // host network or finished: not an endpoint, by design
    let pod = r.value;
    if (!namespaces.has(pod.namespace)) {
      report('Pod', name, 'error', `namespace "${pod.namespace}" is not known (yet): left out until it is`);
      continue;
    }
    reportIssues(report, 'Pod', name, 'warning', r.warnings);
    const local = raw.spec?.nodeName === src.nodeName;
    if (local) localPods.add(pod.id);
    pod = withRegisteredIp(pod, local ? endpointsByPod.get(pod.id) : undefined, parsed, report);
    if (pod.ip === undefined) report('Pod', name, 'warning', 'has no IPv4 address yet: left out of the ipcache until it has one');
    pods.push(pod);
  }
  return { pods: resolveDuplicateIps(pods, src.pods, report), localPods, problems };
}

function reportIssues(report: Report, kind: string, name: string, severity: ProblemSeverity, issues: readonly (PolicyIssue | PolicyWarning)[]): void {
  if (issues.length > 0) report(kind, name, severity, issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; '));
}

/**
 * A local pod's address as its endpoint registered it: the CNI registers
 * the endpoint before the kubelet reports status.podIP, and the policy of a
 * new pod must be in the maps before its interface comes up.
 */
function withRegisteredIp(pod: ClusterPod, endpoints: readonly EndpointRecord[] | undefined, parsed: SnapshotCache, report: Report): ClusterPod {
  const registered = endpoints?.[0];
  if (registered === undefined) return pod;
  if (pod.ip === undefined) return parsed.podWithIp(pod, registered.ip);
  if (formatIp(pod.ip) !== registered.ip) {
    report('Pod', pod.id, 'warning',
      `status.podIP ${formatIp(pod.ip)} differs from ${registered.ip} registered by the CNI for endpoint ${registered.endpointId}: using the registered one`);
    return parsed.podWithIp(pod, registered.ip);
  }
  return pod;
}

/**
 * Two pods with one IP (an address reused while the old pod is still being
 * deleted, or an IPAM bug): a pod being deleted yields to one that is not;
 * when that does not settle it, no pod keeps the address, so neither one's
 * policy is applied to the other's traffic.
 */
function resolveDuplicateIps(pods: readonly ClusterPod[], raw: ReadonlyStore<SlimPod>, report: Report): ClusterPod[] {
  // Keyed by the address value (a number for IPv4, a bigint for IPv6: never equal to each other).
  const first = new Map<number | bigint, ClusterPod>();
  let byIp: Map<number | bigint, ClusterPod[]> | undefined;
  for (const p of pods) {
    if (p.ip === undefined) continue;
    const key = p.ip.family === 4 ? Number(p.ip.value) : p.ip.value;
    const other = first.get(key);
    if (other === undefined) {
      first.set(key, p);
      continue;
    }
    byIp ??= new Map();
    const list = byIp.get(key);
    if (list === undefined) byIp.set(key, [other, p]);
    else list.push(p);
  }
  if (byIp === undefined) return [...pods];
  const strip = new Set<string>();
  for (const claimants of byIp.values()) {
    const ip = formatIp((claimants[0] as ClusterPod).ip as IpAddress);
    const live = claimants.filter((p) => raw.get(p.id)?.metadata.deletionTimestamp === undefined);
    const keeper = live.length === 1 ? live[0] : undefined;
    for (const p of claimants) {
      if (p === keeper) continue;
      const others = claimants.filter((o) => o !== p).map((o) => o.id).join(', ');
      const why = keeper === undefined
        ? `IP ${ip} is also claimed by ${others}: no pod keeps it until only one does`
        : `IP ${ip} is also claimed by ${others}, which is not being deleted: this pod yields it`;
      report('Pod', p.id, keeper === undefined ? 'error' : 'warning', why);
      strip.add(p.id);
    }
  }
  return pods.map((p) => {
    if (!strip.has(p.id)) return p;
    const { ip: _ip, ...rest } = p;
    return rest;
  });
}
