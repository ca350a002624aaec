/**
 * Namespaces and Pods → the facts policy needs about them: labels, the pod's
 * IPv4 address and its named container ports. Unlike NetworkPolicies these
 * objects carry many fields policy does not use, so only the fields read are
 * checked; pods that are not endpoints of the pod network (host network,
 * finished) are left out, with a warning.
 */
import { workloadOf, type OwnerReference, type Workload } from './workload.js';
import { parseIp, type IpAddress } from './cidr.js';
import { IssueList, type Checked } from './errors.js';
import { arrayField, at, describe, isAbsent, isObject, objectField, stringField, stringMapField, type Obj } from './fields.js';
import type { Namespace, Pod } from './k8s-types.js';
import { checkDnsLabel, checkDnsSubdomain, checkLabelKey, checkLabelValue, checkPortName } from './names.js';
import { PROTOCOLS, type Protocol } from './policy-types.js';

/** The label the API server puts on every namespace (immutable, = its name). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface ClusterNamespace {
  readonly name: string;
  /** Includes kubernetes.io/metadata.name, as the API server guarantees. */
  readonly labels: Readonly<Record<string, string>>;
}

export interface ContainerPortInfo {
  readonly name?: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface ClusterPod {
  readonly namespace: string;
  readonly name: string;
  /** "namespace/name". */
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The pod's IPv4 address; undefined before one is assigned (or IPv6-only). */
  readonly ip?: IpAddress;
  /** Every container port, for resolving named ports. */
  readonly ports: readonly ContainerPortInfo[];
  /** The Deployment, StatefulSet, … it belongs to (workload.ts); absent without a controller. */
  readonly workload?: Workload;
}

export interface ObjectOptions {
  /** Namespace of an object whose metadata has none. Default "default". */
  readonly defaultNamespace?: string;
}

/** Checks a Namespace; its kubernetes.io/metadata.name label is filled in when absent. */
export function parseNamespace(obj: Namespace): Checked<ClusterNamespace> {
  const issues = new IssueList();
  const head = readHead(obj, 'Namespace', issues);
  if (head === undefined) return issues.fail();
  const { meta, name } = head;
  issues.object = `Namespace ${name}`;
  const bad = checkDnsLabel(name);
  if (bad !== undefined) issues.error('invalid', 'metadata.name', bad);
  const labels = parseLabels(meta, issues);
  const own = labels[NAMESPACE_NAME_LABEL];
  if (own !== undefined && own !== name) {
    issues.error('invalid', `metadata.labels["${NAMESPACE_NAME_LABEL}"]`, `must be the namespace's name "${name}" (the API server sets it), got "${own}"`);
  }
  return issues.result({ name, labels: { ...labels, [NAMESPACE_NAME_LABEL]: name } });
}

/**
 * Checks a Pod. The value is null for a pod that is not a pod-network
 * endpoint: spec.hostNetwork (it has the node's address and no veth of its
 * own) or a finished phase (Succeeded/Failed: its address may already belong
 * to another pod).
 */
export function parsePod(obj: Pod, options: ObjectOptions = {}): Checked<ClusterPod | null> {
  const issues = new IssueList();
  const head = readHead(obj, 'Pod', issues);
  if (head === undefined) return issues.fail();
  const { raw, meta, name } = head;
  let namespace = stringField(meta, 'namespace', 'metadata', issues);
  if (namespace === undefined || namespace === '') namespace = options.defaultNamespace ?? 'default';
  const id = `${namespace}/${name}`;
  issues.object = `Pod ${id}`;
  const badName = checkDnsSubdomain(name);
  if (badName !== undefined) issues.error('invalid', 'metadata.name', badName);
  const badNs = checkDnsLabel(namespace);
  if (badNs !== undefined) issues.error('invalid', 'metadata.namespace', badNs);
  const labels = parseLabels(meta, issues);

  const spec = objectField(raw, 'spec', '', issues) ?? {};
  const status = objectField(raw, 'status', '', issues) ?? {};
  if (spec['hostNetwork'] === true) {
    issues.warn('spec.hostNetwork', 'a host-network pod is not a pod-network endpoint: left out of policy');
    return issues.result(null);
  }
  const phase = stringField(status, 'phase', 'status', issues);
  if (phase === 'Succeeded' || phase === 'Failed') {
    issues.warn('status.phase', `a ${phase} pod has no network: left out of policy`);
    return issues.result(null);
  }
  const ports = parseContainerPorts(spec, issues);
  const ip = parsePodIp(status, issues);
  const workload = workloadOf(ownerReferences(meta), labels);
  const pod: ClusterPod = {
    namespace, name, id, labels, ports, ...(ip !== undefined ? { ip } : {}), ...(workload !== undefined ? { workload } : {}),
  };
  return issues.result(pod);
}

/** metadata.ownerReferences, the well-formed entries only (a workload is a label for flows, not policy input). */
function ownerReferences(meta: Obj): OwnerReference[] {
  const list = meta['ownerReferences'];
  if (!Array.isArray(list)) return [];
  const out: OwnerReference[] = [];
  for (const o of list as unknown[]) {
    if (!isObject(o) || typeof o['kind'] !== 'string' || typeof o['name'] !== 'string') continue;
    out.push({ kind: o['kind'], name: o['name'], ...(o['controller'] === true ? { controller: true } : {}) });
  }
  return out;
}

/** The object, its metadata and its name; undefined (with the reason recorded) when it has no name. */
function readHead(obj: unknown, kind: 'Namespace' | 'Pod', issues: IssueList): { raw: Obj; meta: Obj; name: string } | undefined {
  if (!isObject(obj)) {
    issues.error('invalid', '', `a ${kind} must be an object, got ${describe(obj)}`);
    return undefined;
  }
  const v = stringField(obj, 'apiVersion', '', issues);
  if (v !== undefined && v !== 'v1') issues.error('unsupported', 'apiVersion', `"${v}" is not supported (want v1)`);
  const k = stringField(obj, 'kind', '', issues);
  if (k !== undefined && k !== kind) issues.error('invalid', 'kind', `"${k}" is not a ${kind}`);
  const meta = objectField(obj, 'metadata', '', issues) ?? {};
  const name = stringField(meta, 'name', 'metadata', issues);
  if (name === undefined || name === '') {
    issues.error('required', 'metadata.name', 'metadata.name is required');
    return undefined;
  }
  return { raw: obj, meta, name };
}

function parseLabels(meta: Obj, issues: IssueList): Record<string, string> {
  const labels = stringMapField(meta, 'labels', 'metadata', issues) ?? {};
  for (const [k, v] of Object.entries(labels)) {
    const field = `metadata.labels["${k}"]`;
    const bad = checkLabelKey(k) ?? checkLabelValue(v);
    if (bad !== undefined) issues.error('invalid', field, bad);
  }
  return { ...labels };
}

function parseContainerPorts(spec: Obj, issues: IssueList): ContainerPortInfo[] {
  const out: ContainerPortInfo[] = [];
  const seen = new Map<string, string>();
  (arrayField(spec, 'containers', 'spec', issues) ?? []).forEach((c, ci) => {
    const cpath = at(at('spec', 'containers'), ci);
    if (!isObject(c)) {
      issues.error('invalid', cpath, `must be a container object, got ${describe(c)}`);
      return;
    }
    (arrayField(c, 'ports', cpath, issues) ?? []).forEach((p, pi) => {
      const ppath = at(at(cpath, 'ports'), pi);
      const port = parseContainerPort(p, ppath, issues);
      if (port === undefined) return;
      if (port.name !== undefined) {
        const first = seen.get(port.name);
        if (first !== undefined) {
          issues.error('duplicate', at(ppath, 'name'), `port name "${port.name}" is already used by ${first}`);
          return;
        }
        seen.set(port.name, ppath);
      }
      out.push(port);
    });
  });
  return out;
}

function parseContainerPort(raw: unknown, path: string, issues: IssueList): ContainerPortInfo | undefined {
  if (!isObject(raw)) {
    issues.error('invalid', path, `must be a port object, got ${describe(raw)}`);
    return undefined;
  }
  const n = raw['containerPort'];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    issues.error('invalid', at(path, 'containerPort'), `must be a port number 1..65535, got ${describe(n)}`);
    return undefined;
  }
  const proto = raw['protocol'];
  let protocol: Protocol = 'TCP';
  if (!isAbsent(proto)) {
    if (typeof proto !== 'string' || !(PROTOCOLS as readonly string[]).includes(proto)) {
      issues.error('invalid', at(path, 'protocol'), `unsupported protocol ${describe(proto)}; want ${PROTOCOLS.join(', ')}`);
      return undefined;
    }
    protocol = proto as Protocol;
  }
  const name = stringField(raw, 'name', path, issues);
  if (name === undefined || name === '') return { port: n, protocol };
  const bad = checkPortName(name);
  if (bad !== undefined) {
    issues.error('invalid', at(path, 'name'), bad);
    return undefined;
  }
  return { name, port: n, protocol };
}

/** status.podIP, or the IPv4 entry of status.podIPs on a dual-stack pod. */
function parsePodIp(status: Obj, issues: IssueList): IpAddress | undefined {
  const candidates: [string, string][] = [];
  const primary = stringField(status, 'podIP', 'status', issues);
  if (primary !== undefined && primary !== '') candidates.push(['status.podIP', primary]);
  (arrayField(status, 'podIPs', 'status', issues) ?? []).forEach((entry, i) => {
    const path = at('status.podIPs', i);
    if (!isObject(entry)) {
      issues.error('invalid', path, `must be an object {ip}, got ${describe(entry)}`);
      return;
    }
    const ip = stringField(entry, 'ip', path, issues);
    if (ip !== undefined && ip !== '') candidates.push([at(path, 'ip'), ip]);
  });
  let v6: string | undefined;
  for (const [path, text] of candidates) {
    const ip = parseIp(text);
    if (typeof ip === 'string') {
      issues.error('invalid', path, ip);
      return undefined;
    }
    if (ip.family === 4) return ip;
    v6 = text;
  }
  if (v6 !== undefined) issues.warn('status.podIP', `only an IPv6 address (${v6}): the Sluice datapath carries IPv4 only`);
  return undefined;
}
