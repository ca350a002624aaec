/**
 * The Services whose health kube-proxy serves on a node, and what it
 * answers for each (pkg/proxy/healthcheck, service_health.go; pure).
 *
 * A Service gets a health check when it is externally reachable (type
 * NodePort or LoadBalancer, or with externalIPs), its
 * externalTrafficPolicy is Local and it has a spec.healthCheckNodePort (the
 * API server allocates one for a LoadBalancer under Local). Its count is the
 * number of distinct addresses of this node's Ready endpoints over all of the
 * Service's ports (EndpointsMap.LocalReadyEndpoints): serving-but-terminating
 * endpoints do not count, so a node whose only local endpoint is terminating
 * reports none while it still serves that endpoint's traffic, and a load
 * balancer stops sending new clients there (e2e "should fail health check
 * node port if there are only terminating endpoints"). The server answers 200
 * when the count is not 0 (and the proxy is healthy), else 503.
 */
import { portEndpoints } from './compile.js';
import { ignoredBecause } from './ignore.js';
import type { EndpointSlice, LocalNode, Service } from './model.js';

export interface HealthCheck {
  readonly namespace: string;
  readonly name: string;
  /** spec.healthCheckNodePort. */
  readonly port: number;
  /** This node's Ready endpoint addresses, each once. */
  readonly localEndpoints: number;
}

const isIpv4 = (s: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(s);

function externallyReachable(svc: Service): boolean {
  return svc.type === 'NodePort' || svc.type === 'LoadBalancer' || svc.externalIPs.length > 0;
}

/** The health checks this node serves, by port (sorted); two Services claiming one port: the first by namespace/name keeps it. */
export function healthChecks(services: readonly Service[], slices: readonly EndpointSlice[], node: LocalNode): HealthCheck[] {
  const checked = services
    .filter((svc) => svc.healthCheckNodePort !== undefined && svc.externalTrafficPolicy === 'Local' && externallyReachable(svc)
      && ignoredBecause(svc) === undefined && svc.clusterIPs.some(isIpv4))
    .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  if (checked.length === 0) return [];
  const wanted = new Set(checked.map((svc) => `${svc.namespace}/${svc.name}`));
  const slicesOf = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const key = `${s.namespace}/${s.serviceName}`;
    if (!wanted.has(key)) continue;
    const list = slicesOf.get(key);
    if (list === undefined) slicesOf.set(key, [s]);
    else list.push(s);
  }
  const byPort = new Map<number, HealthCheck>();
  for (const svc of checked) {
    const port = svc.healthCheckNodePort as number;
    if (byPort.has(port)) continue;
    const local = new Set<string>();
    for (const p of svc.ports) {
      for (const e of portEndpoints(p, slicesOf.get(`${svc.namespace}/${svc.name}`) ?? [])) {
        if (e.ready && e.nodeName === node.name) local.add(e.ip);
      }
    }
    byPort.set(port, { namespace: svc.namespace, name: svc.name, port, localEndpoints: local.size });
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}
