/**
 * Services kube-proxy leaves alone, and so does Sluice: another proxy's
 * (service.kubernetes.io/service-proxy-name set; kube-proxy's own name is
 * empty), headless ones (the service.kubernetes.io/headless label or
 * clusterIP None), and ExternalName (DNS only).
 */
import type { Service } from './model.js';

export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

/** Why the proxy ignores `svc`, or undefined when it programs it. */
export function ignoredBecause(svc: Service): string | undefined {
  if (svc.type === 'HostPort') return undefined; // a pod's hostPort: no clusterIP, never another proxy's
  if (svc.type === 'ExternalName') return 'type ExternalName';
  if (svc.labels[SERVICE_PROXY_NAME_LABEL] !== undefined) return `label ${SERVICE_PROXY_NAME_LABEL}=${svc.labels[SERVICE_PROXY_NAME_LABEL]}`;
  if (svc.labels[HEADLESS_LABEL] !== undefined) return `label ${HEADLESS_LABEL}`;
  if (svc.clusterIPs.length === 0 || svc.clusterIPs.includes('None')) return 'clusterIP None (headless)';
  return undefined;
}
