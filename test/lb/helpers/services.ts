/**
 * Services and their EndpointSlices through a real API server, for the
 * Service tests: apply a Service, read the endpoints every slice of a Service
 * holds (whoever manages them), and wait until they are what a test expects.
 */
import { until } from '../../agent/helpers/wait.js';

/** kubectl with a cluster's kubeconfig (ClusterLab.kubectl); resolves with stdout. */
export type Kubectl = (args: readonly string[], input?: string) => Promise<string>;

/** One endpoint of a Service, flattened from its slices. */
export interface SliceEndpoint {
  readonly address: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName?: string;
  /** The Pod it stands for (targetRef), when it is one. */
  readonly pod?: string;
  /** The zones the controller manager hinted it for (trafficDistribution), when it did. */
  readonly zoneHints?: readonly string[];
}

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: 'TCP' | 'UDP' | 'SCTP';
}

/** A ClusterIP Service selecting pods by labels (an empty selector list: a Service without a selector). */
export function clusterIpService(name: string, selector: Readonly<Record<string, string>> | undefined, ports: readonly ServicePort[], namespace = 'default'): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { type: 'ClusterIP', ...(selector !== undefined ? { selector } : {}), ports: ports.map((p) => ({ protocol: 'TCP', ...p })) },
  };
}

/** Applies the objects; resolves with the Service's allocated ClusterIP. */
export async function applyService(kubectl: Kubectl, service: Record<string, unknown>): Promise<string> {
  const meta = service['metadata'] as { name: string; namespace?: string };
  await kubectl(['apply', '-f', '-'], JSON.stringify(service));
  const ip = (await kubectl(['get', 'service', meta.name, '-n', meta.namespace ?? 'default', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) throw new Error(`Service ${meta.name}: no ClusterIP (${JSON.stringify(ip)})`);
  return ip;
}

interface RawSlice {
  endpoints?: {
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    nodeName?: string;
    targetRef?: { kind?: string; name?: string };
    hints?: { forZones?: { name: string }[] };
  }[];
}

/** Every endpoint of every EndpointSlice of the Service, sorted by address. */
export async function sliceEndpoints(kubectl: Kubectl, service: string, namespace = 'default'): Promise<SliceEndpoint[]> {
  const out = await kubectl(['get', 'endpointslices', '-n', namespace, '-l', `kubernetes.io/service-name=${service}`, '-o', 'json']);
  const slices = (JSON.parse(out) as { items: RawSlice[] }).items;
  return slices
    .flatMap((s) => s.endpoints ?? [])
    .flatMap((e) => e.addresses.map((address): SliceEndpoint => ({
      address,
      // The API's meaning of an absent condition: ready and serving unknown → true, terminating → false.
      ready: e.conditions?.ready ?? true,
      serving: e.conditions?.serving ?? e.conditions?.ready ?? true,
      terminating: e.conditions?.terminating ?? false,
      ...(e.nodeName !== undefined ? { nodeName: e.nodeName } : {}),
      ...(e.targetRef?.kind === 'Pod' && e.targetRef.name !== undefined ? { pod: e.targetRef.name } : {}),
      ...(e.hints?.forZones !== undefined ? { zoneHints: e.hints.forZones.map((z) => z.name) } : {}),
    })))
    .sort((a, b) => a.address.localeCompare(b.address));
}

/** Waits until `check` accepts the Service's endpoints; resolves with them. */
export function waitEndpoints(
  kubectl: Kubectl,
  service: string,
  what: string,
  check: (eps: readonly SliceEndpoint[]) => boolean,
  timeoutMs = 20_000,
  namespace = 'default',
): Promise<SliceEndpoint[]> {
  return until(`EndpointSlices of ${namespace}/${service}: ${what}`, async () => {
    const eps = await sliceEndpoints(kubectl, service, namespace);
    return check(eps) ? eps : undefined;
  }, timeoutMs);
}

/** The endpoints as "address ready/serving/terminating" lines, for assertions and messages. */
export function describeEndpoints(eps: readonly SliceEndpoint[]): string[] {
  return eps.map((e) => `${e.address} ready=${String(e.ready)} serving=${String(e.serving)} terminating=${String(e.terminating)}`);
}
