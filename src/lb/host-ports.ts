/**
 * Pods' hostPorts (spec.containers[].ports[].hostPort) as the load balancer
 * serves them: each mapping of a pod on this node becomes a Service of type
 * HostPort with one EndpointSlice naming the pod, so that the frontends,
 * backends and tables of src/lb and the datapath serve it like any Service
 * (as Cilium's HostPort services): traffic to the node's address (or the
 * mapping's hostIP) and the hostPort reaches the pod's containerPort, from
 * other nodes, from outside, from this node's pods and from the node itself
 * (the socket load balancer; also on 127.0.0.1 without a hostIP, as the CNI
 * portmap plugin maps localhost). Pure.
 *
 * The Service's name is "hostport:<pod>:<hostIP or *>:<hostPort>/<protocol>":
 * never a Kubernetes name (":" is not allowed in one), so it cannot meet a
 * real Service; the real one wins a frontend both want (its Services come
 * first).
 */
import type { EndpointSlice, L4Protocol, Service } from './model.js';

export interface HostPortMapping {
  readonly namespace: string;
  readonly pod: string;
  readonly podIP: string;
  /** "" : every node address. */
  readonly hostIP: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: L4Protocol;
}

export const HOST_PORT_NAME_PREFIX = 'hostport:';

export function hostPortServiceName(m: HostPortMapping): string {
  return `${HOST_PORT_NAME_PREFIX}${m.pod}:${m.hostIP === '' ? '*' : m.hostIP}:${m.hostPort}/${m.protocol}`;
}

/** The Services and slices of this node's mappings (one each per mapping). */
export function hostPortServices(mappings: readonly HostPortMapping[], nodeName: string): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (const m of mappings) {
    const name = hostPortServiceName(m);
    services.push({
      namespace: m.namespace, name, labels: {}, type: 'HostPort', clusterIPs: [], ports: [{ name: '', protocol: m.protocol, port: m.hostPort }],
      externalIPs: m.hostIP === '' ? [] : [m.hostIP], loadBalancerIPs: [], externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Cluster',
    });
    slices.push({
      namespace: m.namespace, name, serviceName: name, addressType: 'IPv4', ports: [{ name: '', protocol: m.protocol, port: m.containerPort }],
      endpoints: [{ addresses: [m.podIP], ready: true, serving: true, terminating: false, nodeName }],
    });
  }
  return { services, slices };
}
