/**
 * The API objects of a cluster lab, built from the lab's plan and the Pods
 * and Namespaces the user described (`lab up --cluster -f FILE`). Pure.
 *
 * A lab pod is default/<name> labelled app=<name> unless a Pod of that name
 * is in the manifests: then its namespace, labels and containers (and so its
 * named ports) are the lab pod's. Every pod is bound to the lab's Node with
 * spec.nodeName (no scheduler runs); containers without an image get a
 * placeholder (no kubelet pulls it). Pods are created, not applied; their
 * last-applied annotation is the user's manifest (not what was added), so
 * a later `kubectl apply -f` of the same manifests finds nothing to change,
 * and never tries to drop the image or nodeName it did not set.
 */
import { LabError } from '../errors.js';
import type { LabPlan } from '../spec.js';
import { nodeObject, type NodePlan } from './nodes.js';

export const LAB_POD_NAMESPACE = 'default';
export const PLACEHOLDER_IMAGE = 'registry.invalid/sluice-lab:1';

export type KubeObject = Record<string, unknown>;

export interface LabPodObject {
  /** The lab pod (plan.pods[].name). */
  readonly pod: string;
  readonly namespace: string;
  readonly object: KubeObject;
  /**
   * The user's manifest, for the Pod's last-applied annotation: patched in
   * after creation, because `kubectl create` rewrites an annotation it finds
   * to the whole object sent (image and nodeName included).
   */
  readonly lastApplied?: string;
}

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface ClusterObjects {
  /** The first node's Node (the one-node lab's only one). */
  readonly node: KubeObject;
  /** Every node's Node, in order. */
  readonly nodes: readonly KubeObject[];
  /** Namespaces to create (never "default", which exists). */
  readonly namespaces: readonly KubeObject[];
  readonly pods: readonly LabPodObject[];
}

/** The Node of a lab: its name is also the agent's --node-name. */
export function nodeName(lab: string): string {
  return `sluice-${lab}`;
}

/**
 * `nodes`: the lab's nodes (default: the one node of the plan). A Pod's
 * spec.nodeName in the manifests places it; other pods go round-robin, in
 * the plan's order.
 */
export function clusterObjects(plan: LabPlan, manifests: readonly unknown[], nodes?: readonly NodePlan[]): ClusterObjects {
  const described = new Map<string, KubeObject>();
  const namespaces = new Map<string, KubeObject>();
  manifests.forEach((m, i) => {
    const where = `manifest ${i + 1}`;
    if (typeof m !== 'object' || m === null) throw invalid(`${where}: not an object`);
    const o = m as KubeObject;
    const meta = metadata(o, where);
    const name = meta['name'];
    if (typeof name !== 'string') throw invalid(`${where}: metadata.name is missing`);
    if (o['kind'] === 'Namespace') {
      namespaces.set(name, { apiVersion: 'v1', kind: 'Namespace', metadata: pick(meta, ['name', 'labels', 'annotations']) });
    } else if (o['kind'] === 'Pod') {
      if (!plan.pods.some((p) => p.name === name)) {
        throw invalid(`Pod ${name}: the lab has no pod "${name}" (pods: ${plan.pods.map((p) => p.name).join(', ')})`);
      }
      if (described.has(name)) throw invalid(`Pod ${name}: described twice`);
      described.set(name, o);
    } else {
      throw invalid(`${where}: kind ${String(o['kind'])}: lab up takes Pods and Namespaces (apply policies with kubectl)`);
    }
  });

  const nodeNames = nodes?.map((n) => n.name) ?? [nodeName(plan.name)];
  const pods = plan.pods.map((p, i): LabPodObject => {
    const given = described.get(p.name);
    const meta = given ? metadata(given, `Pod ${p.name}`) : {};
    const namespace = typeof meta['namespace'] === 'string' ? meta['namespace'] : LAB_POD_NAMESPACE;
    const spec = given && typeof given['spec'] === 'object' && given['spec'] !== null ? (given['spec'] as KubeObject) : {};
    const containers = Array.isArray(spec['containers']) && spec['containers'].length > 0 ? spec['containers'] : [{ name: 'main' }];
    const annotations = { ...(meta['annotations'] as KubeObject | undefined) };
    const asked = spec['nodeName'];
    if (asked !== undefined && (typeof asked !== 'string' || !nodeNames.includes(asked))) {
      throw invalid(`Pod ${p.name}: spec.nodeName ${JSON.stringify(asked)} is not a node of the lab (${nodeNames.join(', ')})`);
    }
    const node = typeof asked === 'string' ? asked : (nodeNames[i % nodeNames.length] as string);
    return {
      pod: p.name,
      namespace,
      ...(given ? { lastApplied: JSON.stringify({ ...given, metadata: { ...meta, namespace } }) } : {}),
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: p.name,
          namespace,
          labels: meta['labels'] ?? { app: p.name },
          ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        },
        spec: {
          ...spec,
          nodeName: node,
          containers: containers.map((c: unknown) => ({ image: PLACEHOLDER_IMAGE, ...(c as KubeObject) })),
        },
      },
    };
  });
  for (const ns of new Set(pods.map((p) => p.namespace))) {
    if (ns !== LAB_POD_NAMESPACE && !namespaces.has(ns)) namespaces.set(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }
  namespaces.delete(LAB_POD_NAMESPACE);
  const nodeObjects = nodes?.map(nodeObject) ?? [nodeObject({ index: 1, name: nodeName(plan.name), netns: plan.nodeNetns, podCidr: plan.cidr, pinRoot: plan.pinRoot, dir: '' })];
  return {
    node: nodeObjects[0] as KubeObject,
    nodes: nodeObjects,
    namespaces: [...namespaces.values()],
    pods,
  };
}

function metadata(o: KubeObject, where: string): KubeObject {
  const meta = o['metadata'];
  if (typeof meta !== 'object' || meta === null) throw invalid(`${where}: no metadata`);
  return meta as KubeObject;
}

function pick(o: KubeObject, keys: readonly string[]): KubeObject {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

function invalid(message: string): LabError {
  return new LabError('invalid-spec', message, 'manifests');
}
