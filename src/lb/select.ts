/**
 * kube-proxy's endpoint selection for one Service port (CategorizeEndpoints,
 * pkg/proxy/topology.go, v1.33+), exactly:
 *
 *  - cluster set: Ready endpoints the topology mode keeps; when there are
 *    none, every serving-and-terminating endpoint, with no topology filter
 *    (the terminating fallback, KEP-1669);
 *  - local set (internal/externalTrafficPolicy Local): this node's Ready
 *    endpoints, or when it has none, its serving-and-terminating ones —
 *    decided independently of the cluster set;
 *  - hasAny: some endpoint anywhere is Ready or serving-and-terminating.
 *
 * Topology mode, from the hints of the Ready endpoints only: PreferSameNode
 * when every Ready endpoint has node hints and one names this node; else
 * PreferSameZone when every Ready endpoint has zone hints and one names this
 * node's zone; else none. One Ready endpoint without a hint turns the mode off.
 */
import type { L4Protocol, LocalNode, SliceEndpoint } from './model.js';

/** A Service port's endpoint: one address and the port number its slice gives the port's name. */
export type PortEndpoint = Omit<SliceEndpoint, 'addresses'> & {
  readonly ip: string;
  readonly port: number;
  readonly protocol: L4Protocol;
};

export type TopologyMode = 'none' | 'PreferSameNode' | 'PreferSameZone';

export interface Categorized {
  readonly cluster: readonly PortEndpoint[];
  readonly local: readonly PortEndpoint[];
  readonly hasAny: boolean;
  readonly topology: TopologyMode;
}

const servingTerminating = (e: PortEndpoint): boolean => e.serving && e.terminating;

export function topologyMode(endpoints: readonly PortEndpoint[], node: LocalNode): TopologyMode {
  let allNode = true;
  let forNode = false;
  let allZone = true;
  let forZone = false;
  for (const e of endpoints) {
    if (!e.ready) continue;
    const nodes = e.hints?.forNodes ?? [];
    const zones = e.hints?.forZones ?? [];
    if (nodes.length === 0) allNode = false;
    else if (nodes.includes(node.name)) forNode = true;
    if (zones.length === 0) allZone = false;
    else if (node.zone !== undefined && zones.includes(node.zone)) forZone = true;
  }
  if (allNode && forNode) return 'PreferSameNode';
  if (allZone && forZone) return 'PreferSameZone';
  return 'none';
}

function available(e: PortEndpoint, mode: TopologyMode, node: LocalNode): boolean {
  if (mode === 'PreferSameNode') return e.hints?.forNodes.includes(node.name) === true;
  if (mode === 'PreferSameZone') return node.zone !== undefined && e.hints?.forZones.includes(node.zone) === true;
  return true;
}

export function categorize(endpoints: readonly PortEndpoint[], node: LocalNode): Categorized {
  const mode = topologyMode(endpoints, node);
  let cluster = endpoints.filter((e) => e.ready && available(e, mode, node));
  if (cluster.length === 0) cluster = endpoints.filter(servingTerminating);
  const mine = endpoints.filter((e) => e.nodeName === node.name);
  let local = mine.filter((e) => e.ready);
  if (local.length === 0) local = mine.filter(servingTerminating);
  return { cluster, local, hasAny: endpoints.some((e) => e.ready || servingTerminating(e)), topology: mode };
}
