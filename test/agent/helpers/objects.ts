/** Raw API objects for agent tests, in the JSON shape the API server serves. */
import type { EndpointRecord, EndpointSpec } from '../../../src/endpoint/contract.js';

export function namespace(name: string, labels: Record<string, string> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } };
}

export interface PodOptions {
  readonly ip?: string;
  readonly node?: string;
  readonly labels?: Record<string, string>;
  readonly deleting?: boolean;
  readonly hostNetwork?: boolean;
}

export function pod(ns: string, name: string, o: PodOptions = {}): Record<string, unknown> {
  const metadata: Record<string, unknown> = { name, namespace: ns, labels: o.labels ?? { app: name } };
  if (o.deleting === true) metadata['deletionTimestamp'] = '2026-01-01T00:00:00Z';
  const spec: Record<string, unknown> = { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }] };
  if (o.node !== undefined) spec['nodeName'] = o.node;
  if (o.hostNetwork === true) spec['hostNetwork'] = true;
  const status: Record<string, unknown> = { phase: 'Running' };
  if (o.ip !== undefined) {
    status['podIP'] = o.ip;
    status['podIPs'] = [{ ip: o.ip }];
  }
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec, status };
}

export function denyAll(ns: string, name = 'deny-all'): Record<string, unknown> {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: ns },
    spec: { podSelector: {}, policyTypes: ['Ingress'] },
  };
}

export function node(name: string, podCIDR = '10.9.0.0/24'): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { podCIDR }, status: { addresses: [{ type: 'InternalIP', address: '192.0.2.1' }] } };
}

/** One registration as the CNI sends it. */
export const ENDPOINT_SPEC: EndpointSpec = {
  containerId: 'c0ffee', ifname: 'eth0', netns: '/var/run/netns/pod1', podNamespace: 'default', podName: 'web',
  ip: '10.9.0.5', hostIfname: 'lxc1', hostIfindex: 21,
};

export function endpointRecord(id: number, ns: string, podName: string, ip: string): EndpointRecord {
  return {
    containerId: `c${id}`, ifname: 'eth0', netns: `/var/run/netns/p${id}`, podNamespace: ns, podName, ip,
    hostIfname: `lxc${id}`, hostIfindex: 100 + id, endpointId: id, createdAt: '2026-01-01T00:00:00.000Z',
  };
}

/** The resource paths the informers list and watch. */
export const PATHS = {
  pods: '/api/v1/pods',
  namespaces: '/api/v1/namespaces',
  nodes: '/api/v1/nodes',
  networkPolicies: '/apis/networking.k8s.io/v1/networkpolicies',
  services: '/api/v1/services',
  endpointSlices: '/apis/discovery.k8s.io/v1/endpointslices',
} as const;
