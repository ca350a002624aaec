/**
 * The agent's six informers, created together over one transport, with a
 * combined view of their sync state for readiness and the sync loop.
 */
import { Informer, type InformerOptions, type InformerStatus } from './informer.js';
import {
  ENDPOINT_SLICES, NAMESPACES, NETWORK_POLICIES, NODES, PODS, SERVICES, type SlimEndpointSlice, type SlimNamespace,
  type SlimNetworkPolicy, type SlimNode, type SlimObject, type SlimPod, type SlimService,
} from './resources.js';

export interface ClusterInformers {
  readonly pods: Informer<SlimPod>;
  readonly namespaces: Informer<SlimNamespace>;
  readonly nodes: Informer<SlimNode>;
  readonly networkPolicies: Informer<SlimNetworkPolicy>;
  readonly services: Informer<SlimService>;
  readonly endpointSlices: Informer<SlimEndpointSlice>;
}

export function createInformers(options: InformerOptions): ClusterInformers {
  return {
    pods: new Informer(PODS, options),
    namespaces: new Informer(NAMESPACES, options),
    nodes: new Informer(NODES, options),
    networkPolicies: new Informer(NETWORK_POLICIES, options),
    services: new Informer(SERVICES, options),
    endpointSlices: new Informer(ENDPOINT_SLICES, options),
  };
}

export function informerList(set: ClusterInformers): Informer<SlimObject>[] {
  return [set.pods, set.namespaces, set.nodes, set.networkPolicies, set.services, set.endpointSlices];
}

export function allSynced(set: ClusterInformers): boolean {
  return informerList(set).every((i) => i.hasSynced());
}

export function informerStatuses(set: ClusterInformers): InformerStatus[] {
  return informerList(set).map((i) => i.status());
}
