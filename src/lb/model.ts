/**
 * What the load balancer reads of the cluster, in its own terms (pure: the
 * agent adapts its informer caches to these). Only what kube-proxy itself
 * reads of Services, EndpointSlices and Nodes is here.
 */

export type L4Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface ServicePort {
  /** "" for the single unnamed port. */
  readonly name: string;
  readonly protocol: L4Protocol;
  readonly port: number;
  readonly nodePort?: number;
}

/** Kubernetes' Service types, and HostPort: a pod's hostPort on this node, which the load balancer serves as a Service of its own (host-ports.ts). */
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName' | 'HostPort';
export type TrafficPolicy = 'Cluster' | 'Local';

export interface Service {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly type: ServiceType;
  /** spec.clusterIPs ("None" for a headless Service); IPv4 ones are programmed. */
  readonly clusterIPs: readonly string[];
  readonly ports: readonly ServicePort[];
  readonly externalIPs: readonly string[];
  /** status.loadBalancer.ingress[].ip */
  readonly loadBalancerIPs: readonly string[];
  /** ClientIP affinity and its timeout; absent: none. */
  readonly affinitySeconds?: number;
  readonly externalTrafficPolicy: TrafficPolicy;
  readonly internalTrafficPolicy: TrafficPolicy;
  /** spec.healthCheckNodePort (the API server allocates one for a LoadBalancer under externalTrafficPolicy Local). */
  readonly healthCheckNodePort?: number;
}

/** One endpoint of a slice; nil conditions of the API mean true. */
export interface SliceEndpoint {
  /** The first address is the one kube-proxy uses. */
  readonly addresses: readonly string[];
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
  readonly zone?: string;
  /** Topology hints written by the controller manager. */
  readonly hints?: { readonly forZones: readonly string[]; readonly forNodes: readonly string[] };
}

export interface SlicePort {
  /** "" for an unnamed port. */
  readonly name: string;
  readonly protocol: L4Protocol;
  readonly port: number;
}

/** An EndpointSlice of a Service (label kubernetes.io/service-name), whoever manages it. */
export interface EndpointSlice {
  readonly namespace: string;
  readonly name: string;
  /** kubernetes.io/service-name */
  readonly serviceName: string;
  /** IPv4 slices are programmed. */
  readonly addressType: string;
  readonly ports: readonly SlicePort[];
  readonly endpoints: readonly SliceEndpoint[];
}

/** The node the agent programs, as endpoint selection needs it. */
export interface LocalNode {
  readonly name: string;
  /** topology.kubernetes.io/zone of the Node. */
  readonly zone?: string;
}
