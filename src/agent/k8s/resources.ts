/**
 * The six resources the agent watches, each with its API path and the shape
 * it is stored in. The stored ("slim") types are what the rest of the agent
 * reads; Pod, Namespace and NetworkPolicy stay assignable to the policy
 * engine's input types (src/policy/k8s-types.ts), so caches hand over as is.
 */
import type { Namespace, NetworkPolicy, Pod } from '../../policy/k8s-types.js';
import { pick, type Shape } from './shape.js';
import type { ValuePool } from './value-pool.js';

export interface SlimMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly uid?: string;
  /** Set while the object is being deleted (a terminating pod still has its IP). */
  readonly deletionTimestamp?: string;
  /** Only the annotations a shape names (a Service: LB_ALGORITHM_ANNOTATION). */
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface SlimObject {
  readonly metadata: SlimMeta;
}

export type SlimPod = Pod & SlimObject & {
  readonly spec?: Pod['spec'] & { readonly nodeName?: string };
};
export type SlimNamespace = Namespace & SlimObject;
export type SlimNetworkPolicy = NetworkPolicy & SlimObject;

export interface NodeAddress {
  readonly type: string;
  readonly address: string;
}

export interface SlimNode extends SlimObject {
  readonly spec?: { readonly podCIDR?: string; readonly podCIDRs?: readonly string[]; readonly taints?: readonly { readonly key?: string }[] };
  readonly status?: { readonly addresses?: readonly NodeAddress[] };
}

export interface SlimServicePort {
  readonly name?: string;
  readonly protocol?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly nodePort?: number;
}

export interface SlimService extends SlimObject {
  readonly spec?: {
    readonly type?: string;
    readonly selector?: Readonly<Record<string, string>>;
    readonly clusterIP?: string;
    readonly clusterIPs?: readonly string[];
    readonly ports?: readonly SlimServicePort[];
    readonly externalIPs?: readonly string[];
    readonly loadBalancerIP?: string;
    readonly sessionAffinity?: string;
    readonly sessionAffinityConfig?: unknown;
    readonly externalTrafficPolicy?: string;
    readonly internalTrafficPolicy?: string;
    readonly healthCheckNodePort?: number;
    readonly ipFamilies?: readonly string[];
  };
  readonly status?: { readonly loadBalancer?: { readonly ingress?: readonly { readonly ip?: string }[] } };
}

export interface SlimEndpoint {
  readonly addresses: readonly string[];
  readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
  readonly nodeName?: string;
  readonly zone?: string;
  /** Topology hints the controller manager writes (trafficDistribution). */
  readonly hints?: { readonly forZones?: readonly { readonly name?: string }[]; readonly forNodes?: readonly { readonly name?: string }[] };
  readonly targetRef?: { readonly kind?: string; readonly namespace?: string; readonly name?: string; readonly uid?: string };
}

export interface SlimEndpointSlice extends SlimObject {
  readonly addressType?: string;
  readonly endpoints?: readonly SlimEndpoint[];
  readonly ports?: readonly { readonly name?: string; readonly protocol?: string; readonly port?: number; readonly appProtocol?: string }[];
}

/** A watched resource: where it lives and how it is stored. */
export interface ResourceType<T extends SlimObject> {
  /** Plural, as in the URL and in metrics labels ("pods"). */
  readonly name: string;
  readonly kind: string;
  /** Cluster-wide list/watch path. */
  readonly path: string;
  /** The slim object, or undefined when the raw object has no usable metadata.name; parts marked shared come from `pool`. */
  slim(raw: unknown, pool?: ValuePool): T | undefined;
}

/** A Service's backend choice for new connections, "maglev" or "random" (else the agent's lb.algorithm). */
export const LB_ALGORITHM_ANNOTATION = 'service.sluice.io/lb-algorithm';

const META: Shape = {
  fields: { name: 'keep', namespace: 'keep', labels: { shared: 'keep' }, uid: 'keep', deletionTimestamp: 'keep' },
};

const SHAPES = {
  pod: {
    fields: {
      // A pod's controller names its workload in flows (policy/workload.ts); a ReplicaSet's pods share one copy.
      metadata: { fields: { ...META.fields, ownerReferences: { shared: { items: { fields: { kind: 'keep', name: 'keep', controller: 'keep' } } } } } },
      spec: {
        fields: {
          nodeName: 'keep',
          hostNetwork: 'keep',
          // The pods of a ReplicaSet repeat these: one copy each (value-pool.ts).
          containers: { shared: { items: { fields: { name: 'keep', ports: 'keep' } } } },
        },
      },
      status: { fields: { phase: 'keep', podIP: 'keep', podIPs: 'keep' } },
    },
  },
  namespace: { fields: { metadata: META } },
  node: {
    fields: {
      metadata: META,
      // Taints: only their keys (the proxy's healthz drains a node tainted for removal).
      spec: { fields: { podCIDR: 'keep', podCIDRs: 'keep', taints: { items: { fields: { key: 'keep' } } } } },
      status: { fields: { addresses: 'keep' } },
    },
  },
  // The whole spec: the validator must see every field to reject what Sluice cannot enforce.
  networkPolicy: { fields: { metadata: META, spec: 'keep' } },
  service: {
    fields: {
      metadata: { fields: { ...META.fields, annotations: { fields: { [LB_ALGORITHM_ANNOTATION]: 'keep' } } } },
      spec: {
        fields: {
          type: 'keep', selector: 'keep', clusterIP: 'keep', clusterIPs: 'keep', ports: 'keep', externalIPs: 'keep',
          loadBalancerIP: 'keep', sessionAffinity: 'keep', sessionAffinityConfig: 'keep', externalTrafficPolicy: 'keep',
          internalTrafficPolicy: 'keep', healthCheckNodePort: 'keep', ipFamilies: 'keep',
        },
      },
      status: { fields: { loadBalancer: 'keep' } },
    },
  },
  endpointSlice: {
    fields: {
      metadata: META,
      addressType: 'keep',
      endpoints: {
        items: {
          fields: {
            addresses: 'keep', conditions: { shared: 'keep' }, nodeName: 'keep', zone: 'keep', hints: { shared: 'keep' },
            targetRef: { fields: { kind: 'keep', namespace: 'keep', name: 'keep', uid: 'keep' } },
          },
        },
      },
      ports: 'keep',
    },
  },
} satisfies Record<string, Shape>;

/**
 * Applies a shape and checks the one thing every cache relies on: a
 * non-empty string metadata.name. The cast is the boundary where untyped
 * JSON becomes a slim type; the policy and lb parsers re-check every field
 * they read, so a wrongly typed value is reported there, by name.
 */
function slimmer<T extends SlimObject>(shape: Shape): (raw: unknown, pool?: ValuePool) => T | undefined {
  return (raw, pool) => {
    const out = pick(raw, shape, pool);
    if (typeof out !== 'object' || out === null) return undefined;
    const meta = (out as { metadata?: unknown }).metadata;
    if (typeof meta !== 'object' || meta === null) return undefined;
    const name = (meta as { name?: unknown }).name;
    return typeof name === 'string' && name !== '' ? (out as T) : undefined;
  };
}

export const PODS: ResourceType<SlimPod> = { name: 'pods', kind: 'Pod', path: '/api/v1/pods', slim: slimmer(SHAPES.pod) };
export const NAMESPACES: ResourceType<SlimNamespace> = {
  name: 'namespaces', kind: 'Namespace', path: '/api/v1/namespaces', slim: slimmer(SHAPES.namespace),
};
export const NODES: ResourceType<SlimNode> = { name: 'nodes', kind: 'Node', path: '/api/v1/nodes', slim: slimmer(SHAPES.node) };
export const NETWORK_POLICIES: ResourceType<SlimNetworkPolicy> = {
  name: 'networkpolicies', kind: 'NetworkPolicy', path: '/apis/networking.k8s.io/v1/networkpolicies',
  slim: slimmer(SHAPES.networkPolicy),
};
export const SERVICES: ResourceType<SlimService> = {
  name: 'services', kind: 'Service', path: '/api/v1/services', slim: slimmer(SHAPES.service),
};
export const ENDPOINT_SLICES: ResourceType<SlimEndpointSlice> = {
  name: 'endpointslices', kind: 'EndpointSlice', path: '/apis/discovery.k8s.io/v1/endpointslices',
  slim: slimmer(SHAPES.endpointSlice),
};

/** The cache key: "namespace/name" for namespaced objects, "name" otherwise. */
export function objectKey(obj: SlimObject): string {
  const ns = obj.metadata.namespace;
  return ns === undefined || ns === '' ? obj.metadata.name : `${ns}/${obj.metadata.name}`;
}

/** metadata.resourceVersion of a raw object, or undefined. */
export function resourceVersionOf(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const meta = (raw as { metadata?: unknown }).metadata;
  if (typeof meta !== 'object' || meta === null) return undefined;
  const rv = (meta as { resourceVersion?: unknown }).resourceVersion;
  return typeof rv === 'string' && rv !== '' ? rv : undefined;
}
