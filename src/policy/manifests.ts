/**
 * Kubernetes manifests (text) → a cluster snapshot, for the CLI and the lab:
 * multi-document YAML or JSON, `List` objects (kind List or any *List with
 * `items`), holding Namespaces, Pods and NetworkPolicies. Pure: the caller
 * reads the files and passes their text.
 *
 * Every problem names where it is: the file, the document (when a file has
 * several), the item of a List, the object and the field path —
 * `x.yaml: document 2: NetworkPolicy x/deny: spec.ingress[0].ports[0].port: ...`.
 * Objects of other kinds (Deployments, Services) are skipped with a warning,
 * since manifests often carry them alongside; a namespace that pods or
 * policies use without a Namespace object is assumed, with only its name
 * label, and a warning (namespaceSelectors on other labels will not match it)
 * unless it is "default", which every cluster has.
 */
import { parseAllDocuments } from 'yaml';
import { formatIp } from './cidr.js';
import { assembleCluster, type Cluster } from './cluster.js';
import { formatIssue, type Checked } from './errors.js';
import { describe, isObject } from './fields.js';
import { parseNamespace, parsePod, type ClusterNamespace, type ClusterPod, type ObjectOptions } from './objects.js';
import { policyId, type Policy } from './policy-types.js';
import { validateNetworkPolicy } from './validate.js';
import type { Namespace, Pod } from './k8s-types.js';

export interface ManifestSource {
  /** Shown in messages: a path, or "<stdin>". */
  readonly file: string;
  readonly text: string;
}

export interface ManifestOptions {
  /** Namespace of objects without one. Default "default". */
  readonly defaultNamespace?: string;
}

export interface LoadedManifests {
  readonly cluster: Cluster;
  /** One line each, with location. */
  readonly warnings: readonly string[];
}

export type ManifestResult =
  | { readonly ok: true; readonly value: LoadedManifests; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[]; readonly warnings: readonly string[] };

/** Where an object came from: "x.yaml: document 2: items[3]". */
type Where = string;

interface Collected {
  readonly namespaces: [ClusterNamespace, Where][];
  readonly pods: [ClusterPod, Where][];
  readonly policies: [Policy, Where][];
}

/** Parses, validates and cross-checks every object of `sources`; all problems are reported together. */
export function loadManifests(sources: readonly ManifestSource[], options: ManifestOptions = {}): ManifestResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const collected: Collected = { namespaces: [], pods: [], policies: [] };
  const objectOptions: ObjectOptions = options.defaultNamespace === undefined ? {} : { defaultNamespace: options.defaultNamespace };
  for (const source of sources) {
    const docs = parseAllDocuments(source.text);
    const many = docs.length > 1;
    docs.forEach((doc, i) => {
      const where = many ? `${source.file}: document ${i + 1}` : source.file;
      if (doc.errors.length > 0) {
        for (const e of doc.errors) errors.push(`${where}: not valid YAML/JSON: ${e.message.split('\n')[0] ?? e.message}`);
        return;
      }
      const value: unknown = doc.toJS();
      if (value === null || value === undefined) return; // an empty document ("---" at the end)
      collect(value, where, objectOptions, collected, errors, warnings);
    });
  }
  const cluster = crossCheck(collected, errors, warnings);
  if (errors.length > 0 || cluster === undefined) return { ok: false, errors, warnings };
  return { ok: true, value: { cluster, warnings }, warnings };
}

function collect(value: unknown, where: Where, options: ObjectOptions, out: Collected, errors: string[], warnings: string[]): void {
  if (!isObject(value)) {
    errors.push(`${where}: want a Kubernetes object (a mapping with kind), got ${describe(value)}`);
    return;
  }
  const kind = value['kind'];
  if (typeof kind !== 'string' || kind === '') {
    errors.push(`${where}: kind: required (Namespace, Pod, NetworkPolicy or a List of them)`);
    return;
  }
  const take = <T>(r: Checked<T>): T | undefined => {
    for (const w of r.warnings) warnings.push(`${where}: ${formatIssue(w)}`);
    if (r.ok) return r.value;
    for (const e of r.errors) errors.push(`${where}: ${formatIssue(e)}`);
    return undefined;
  };
  switch (kind) {
    case 'Namespace': {
      const ns = take(parseNamespace(value as Namespace));
      if (ns !== undefined) out.namespaces.push([ns, where]);
      return;
    }
    case 'Pod': {
      const pod = take(parsePod(value as Pod, options));
      if (pod !== undefined && pod !== null) out.pods.push([pod, where]);
      return;
    }
    case 'NetworkPolicy': {
      const policy = take(validateNetworkPolicy(value, options));
      if (policy !== undefined) out.policies.push([policy, where]);
      return;
    }
  }
  if (kind.endsWith('List')) {
    const items = value['items'];
    if (items === null || items === undefined) return;
    if (!Array.isArray(items)) {
      errors.push(`${where}: ${kind}: items: must be a list, got ${describe(items)}`);
      return;
    }
    items.forEach((item, i) => collect(item, `${where}: items[${i}]`, options, out, errors, warnings));
    return;
  }
  const meta = isObject(value['metadata']) ? value['metadata'] : {};
  const name = typeof meta['name'] === 'string' ? ` ${meta['name']}` : '';
  warnings.push(`${where}: ${kind}${name}: skipped (policy reads Namespaces, Pods and NetworkPolicies)`);
}

/** Duplicates (naming both places), implied namespaces, then the cluster's own checks. */
function crossCheck(c: Collected, errors: string[], warnings: string[]): Cluster | undefined {
  const firstSeen = new Map<string, Where>();
  const unique = <T>(list: [T, Where][], id: (t: T) => string): T[] => {
    const out: T[] = [];
    for (const [obj, where] of list) {
      const key = id(obj);
      const first = firstSeen.get(key);
      if (first !== undefined) {
        errors.push(`${where}: ${key}: defined twice (first in ${first})`);
        continue;
      }
      firstSeen.set(key, where);
      out.push(obj);
    }
    return out;
  };
  const namespaces = unique(c.namespaces, (n) => `Namespace ${n.name}`);
  const pods = unique(c.pods, (p) => `Pod ${p.id}`);
  const policies = unique(c.policies, (p) => `NetworkPolicy ${policyId(p)}`);

  const known = new Set(namespaces.map((n) => n.name));
  const used: [string, Where][] = [
    ...c.pods.map(([p, w]) => [p.namespace, w] as [string, Where]),
    ...c.policies.map(([p, w]) => [p.namespace, w] as [string, Where]),
  ];
  for (const [name, where] of used) {
    if (known.has(name)) continue;
    known.add(name);
    // Every cluster has "default"; any other namespace would need its object.
    if (name !== 'default') warnings.push(`${where}: namespace "${name}" has no Namespace object: assumed, labelled only kubernetes.io/metadata.name=${name}`);
    const implied = parseNamespace({ metadata: { name } });
    if (implied.ok) namespaces.push(implied.value);
  }

  const ipOwner = new Map<string, ClusterPod>();
  for (const pod of pods) {
    if (pod.ip === undefined) continue;
    const ip = formatIp(pod.ip);
    const other = ipOwner.get(ip);
    if (other !== undefined) errors.push(`${firstSeen.get(`Pod ${pod.id}`) ?? '?'}: Pod ${pod.id}: status.podIP: ${ip} is also the IP of Pod ${other.id} (${firstSeen.get(`Pod ${other.id}`) ?? '?'})`);
    else ipOwner.set(ip, pod);
  }
  if (errors.length > 0) return undefined;
  const assembled = assembleCluster(namespaces, pods, policies);
  if (!assembled.ok) {
    for (const e of assembled.errors) errors.push(`${(e.object !== undefined ? firstSeen.get(e.object) : undefined) ?? 'input'}: ${formatIssue(e)}`);
    return undefined;
  }
  return assembled.value;
}
