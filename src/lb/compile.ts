/**
 * Services and all EndpointSlices of each Service (merged, whoever manages
 * them: never filtered on managed-by) → the frontends this node programs,
 * each with the backends kube-proxy would choose. Pure.
 *
 * Per Service port (its name and protocol):
 *  - endpoints: from every IPv4 slice of the Service that has a port of that
 *    name and protocol, at the number that slice gives it — so a named
 *    targetPort resolves per endpoint; an address listed twice counts once,
 *    Ready over not Ready;
 *  - frontends: the ClusterIP (internalTrafficPolicy), the NodePort, every
 *    external IP and load-balancer IP (externalTrafficPolicy), each keyed by
 *    address, port and protocol;
 *  - backends: the local set under policy Local, else the cluster set
 *    (select.ts); an external frontend under Local also carries the cluster
 *    set, which kube-proxy uses for this node's own pods ("as if going out
 *    to the load balancer and back");
 *  - a pod's hostPort (type HostPort, host-ports.ts): its hostIP or every
 *    node address, to the pod;
 *  - no backends: `reject` when the Service has no usable endpoint anywhere
 *    (TCP reset / ICMP port unreachable), `drop` when it has some but policy
 *    Local leaves none here (kube-proxy drops those).
 */
import { ignoredBecause } from './ignore.js';
import type { EndpointSlice, L4Protocol, LocalNode, Service, ServicePort } from './model.js';
import { categorize, type PortEndpoint } from './select.js';

export type FrontendKind = 'ClusterIP' | 'NodePort' | 'ExternalIP' | 'LoadBalancer' | 'HostPort';

export interface Backend {
  readonly ip: string;
  readonly port: number;
  /** Terminating backends serve only as the fallback (no Ready one left). */
  readonly state: 'active' | 'terminating';
}

export interface Frontend {
  /** "10.96.0.10:53/UDP"; a NodePort: "*:30080/TCP" (every node address). */
  readonly key: string;
  readonly kind: FrontendKind;
  /** Absent for a NodePort, and a hostPort without a hostIP (every node address). */
  readonly address?: string;
  readonly port: number;
  readonly protocol: L4Protocol;
  /** "namespace/name" and the Service port's name. */
  readonly service: string;
  readonly portName: string;
  readonly backends: readonly Backend[];
  /** External frontends under externalTrafficPolicy Local: the cluster set, for traffic of this node's pods. */
  readonly clusterBackends?: readonly Backend[];
  /** What happens when `backends` is empty. */
  readonly whenEmpty: 'reject' | 'drop';
  readonly affinitySeconds?: number;
}

export interface LbCompileResult {
  /** By key, sorted. */
  readonly frontends: ReadonlyMap<string, Frontend>;
  /** Services left alone, with why ("namespace/name: type ExternalName"). */
  readonly ignored: readonly string[];
}

const isIpv4 = (s: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(s);

/** The endpoints of one Service port over the Service's slices. */
export function portEndpoints(port: ServicePort, slices: readonly EndpointSlice[]): PortEndpoint[] {
  const byAddress = new Map<string, PortEndpoint>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4') continue;
    const sp = slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
    if (sp === undefined) continue;
    for (const e of slice.endpoints) {
      const ip = e.addresses[0];
      if (ip === undefined || !isIpv4(ip)) continue;
      const pe: PortEndpoint = {
        ip, port: sp.port, protocol: port.protocol, ready: e.ready, serving: e.serving, terminating: e.terminating,
        ...(e.nodeName !== undefined ? { nodeName: e.nodeName } : {}),
        ...(e.zone !== undefined ? { zone: e.zone } : {}),
        ...(e.hints !== undefined ? { hints: e.hints } : {}),
      };
      const key = `${ip}:${sp.port}`;
      const seen = byAddress.get(key);
      if (seen === undefined || (!seen.ready && pe.ready)) byAddress.set(key, pe);
    }
  }
  return [...byAddress.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
}

function backendsOf(endpoints: readonly PortEndpoint[]): Backend[] {
  return endpoints.map((e) => ({ ip: e.ip, port: e.port, state: e.ready ? 'active' : 'terminating' }));
}

export function compileServices(services: readonly Service[], slices: readonly EndpointSlice[], node: LocalNode): LbCompileResult {
  const slicesOf = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const key = `${s.namespace}/${s.serviceName}`;
    const list = slicesOf.get(key);
    if (list === undefined) slicesOf.set(key, [s]);
    else list.push(s);
  }
  const frontends: Frontend[] = [];
  const ignored: string[] = [];
  for (const svc of services) {
    const id = `${svc.namespace}/${svc.name}`;
    const why = ignoredBecause(svc);
    if (why !== undefined) {
      ignored.push(`${id}: ${why}`);
      continue;
    }
    if (svc.type === 'HostPort') {
      frontends.push(...hostPortFrontends(svc, slicesOf.get(id) ?? [], node));
      continue;
    }
    const clusterIP = svc.clusterIPs.find(isIpv4);
    if (clusterIP === undefined) {
      ignored.push(`${id}: no IPv4 clusterIP`);
      continue;
    }
    for (const port of svc.ports) {
      const eps = categorize(portEndpoints(port, slicesOf.get(id) ?? []), node);
      const common = {
        port: port.port, protocol: port.protocol, service: id, portName: port.name,
        ...(svc.affinitySeconds !== undefined ? { affinitySeconds: svc.affinitySeconds } : {}),
      };
      const choose = (policy: 'Cluster' | 'Local'): { backends: Backend[]; whenEmpty: 'reject' | 'drop' } => {
        const set = policy === 'Local' ? eps.local : eps.cluster;
        return { backends: backendsOf(set), whenEmpty: eps.hasAny ? 'drop' : 'reject' };
      };
      frontends.push({ key: `${clusterIP}:${port.port}/${port.protocol}`, kind: 'ClusterIP', address: clusterIP, ...common, ...choose(svc.internalTrafficPolicy) });
      const external = (kind: FrontendKind, address: string | undefined, p: number): void => {
        const chosen = choose(svc.externalTrafficPolicy);
        frontends.push({
          key: `${address ?? '*'}:${p}/${port.protocol}`, kind, ...(address !== undefined ? { address } : {}), ...common, port: p, ...chosen,
          ...(svc.externalTrafficPolicy === 'Local' ? { clusterBackends: backendsOf(eps.cluster) } : {}),
        });
      };
      if ((svc.type === 'NodePort' || svc.type === 'LoadBalancer') && port.nodePort !== undefined) external('NodePort', undefined, port.nodePort);
      for (const ip of svc.externalIPs.filter(isIpv4)) external('ExternalIP', ip, port.port);
      if (svc.type === 'LoadBalancer') for (const ip of svc.loadBalancerIPs.filter(isIpv4)) external('LoadBalancer', ip, port.port);
    }
  }
  frontends.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { frontends: new Map(frontends.map((f) => [f.key, f])), ignored };
}

/**
 * A pod's hostPort (host-ports.ts): one frontend per port on its hostIP (the
 * Service's one external IP) or, without one, every node address; the
 * backend is the pod, on this node. The client's address is kept, as the CNI
 * portmap plugin's DNAT keeps it.
 */
function hostPortFrontends(svc: Service, slices: readonly EndpointSlice[], node: LocalNode): Frontend[] {
  const address = svc.externalIPs.find(isIpv4);
  return svc.ports.map((port) => {
    const eps = categorize(portEndpoints(port, slices), node);
    return {
      key: `${address ?? '*'}:${port.port}/${port.protocol}`, kind: 'HostPort', ...(address !== undefined ? { address } : {}), port: port.port,
      protocol: port.protocol, service: `${svc.namespace}/${svc.name}`, portName: port.name, backends: backendsOf(eps.local), whenEmpty: 'reject',
    };
  });
}
