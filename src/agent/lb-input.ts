/**
 * The informer caches' Services, EndpointSlices and this node's Node → the
 * load balancer's input (src/lb/model.ts), field by field as kube-proxy reads
 * them. The slim objects carry their JSON values verbatim (k8s/shape.ts), so
 * every field read is checked here: a Service that cannot be used is left
 * out and named as a problem; the rest is unaffected.
 *
 *  - Service: type (default ClusterIP), spec.clusterIPs (else
 *    spec.clusterIP), ports (protocol default TCP, name default ""),
 *    externalIPs, status.loadBalancer.ingress[].ip, ClientIP affinity with
 *    sessionAffinityConfig.clientIP.timeoutSeconds (default 10800), traffic
 *    policies (Local, else Cluster), spec.healthCheckNodePort.
 *  - EndpointSlice: the Service it belongs to is its
 *    kubernetes.io/service-name label (a slice without one belongs to no
 *    Service and is skipped, as kube-proxy does); whoever manages it. Ports
 *    without a number are skipped. Conditions as kube-proxy reads them:
 *    ready and serving nil mean true, terminating nil means false.
 *  - A Service's service.sluice.io/lb-algorithm annotation (maglev or
 *    random) picks its backend choice; another value is reported and the
 *    agent's default used.
 *  - Node: this node's topology.kubernetes.io/zone label, and its InternalIP
 *    and ExternalIP addresses (where its NodePorts answer).
 *  - Pods on this node: their containers' hostPorts (hostPortsOf()), which
 *    the load balancer serves as Services of type HostPort (src/lb/host-ports.ts).
 */
import { isIP } from 'node:net';
import type { EndpointSlice, L4Protocol, LocalNode, Service, ServicePort, ServiceType, SliceEndpoint, SlicePort, TrafficPolicy } from '../lb/model.js';
import type { LbAlgorithm } from '../reconcile/lb-desired.js';
import { hostPortServices, type HostPortMapping } from '../lb/host-ports.js';
import { LB_ALGORITHM_ANNOTATION, objectKey, type SlimEndpointSlice, type SlimNode, type SlimPod, type SlimService } from './k8s/resources.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** The API's default for sessionAffinityConfig.clientIP.timeoutSeconds. */
export const DEFAULT_AFFINITY_SECONDS = 10800;

const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const PROTOCOLS: readonly L4Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** What the load balancer compiles, and the objects it could not use. */
export interface LbInput {
  readonly services: readonly Service[];
  readonly slices: readonly EndpointSlice[];
  readonly node: LocalNode;
  /** This node's InternalIP and ExternalIP addresses (status.addresses): a NodePort answers on each. */
  readonly nodeAddresses: readonly string[];
  /** Services ("namespace/name") whose LB_ALGORITHM_ANNOTATION chose their algorithm. */
  readonly algorithms: ReadonlyMap<string, LbAlgorithm>;
}

/** An object left out of the load balancer's input, or used with a caveat. */
export interface LbInputProblem {
  readonly kind: 'Service' | 'EndpointSlice' | 'Pod';
  /** "namespace/name". */
  readonly name: string;
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

export type Adapted<T> = { readonly ok: true; readonly value: T; readonly warnings: readonly string[] } | { readonly ok: false; readonly error: string };

class FieldError extends Error {}

/** The valid IPv4 and IPv6 addresses of `list` (and "None" where `keepNone`); each other one becomes a warning naming its field. */
function addressesOf(list: readonly string[], fieldAt: (i: number) => string, warnings: string[], keepNone = false): string[] {
  return list.filter((a, i) => {
    if (isIP(a) !== 0 || (keepNone && a === 'None')) return true;
    warnings.push(`${fieldAt(i)}: ${JSON.stringify(a)} is not an IP address: left out`);
    return false;
  });
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new FieldError(`${field}: want a list of strings`);
  return v;
}

function portNumber(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new FieldError(`${field}: want a port 1..65535, got ${JSON.stringify(v)}`);
  return v;
}

function protocolOf(v: unknown, field: string): L4Protocol {
  if (v === undefined || v === null) return 'TCP';
  if (typeof v !== 'string' || !(PROTOCOLS as readonly string[]).includes(v)) throw new FieldError(`${field}: want one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(v)}`);
  return v as L4Protocol;
}

function nameOf(v: unknown, field: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new FieldError(`${field}: want a string`);
  return v;
}

function policyOf(v: unknown): TrafficPolicy {
  return v === 'Local' ? 'Local' : 'Cluster';
}

function affinityOf(spec: NonNullable<SlimService['spec']>): number | undefined {
  if (spec.sessionAffinity !== 'ClientIP') return undefined;
  const config = spec.sessionAffinityConfig;
  const clientIP = isRecord(config) ? config.clientIP : undefined;
  const t = isRecord(clientIP) ? clientIP.timeoutSeconds : undefined;
  if (t === undefined || t === null) return DEFAULT_AFFINITY_SECONDS;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 86400) {
    throw new FieldError(`spec.sessionAffinityConfig.clientIP.timeoutSeconds: want 1..86400, got ${JSON.stringify(t)}`);
  }
  return t;
}

/** spec.healthCheckNodePort; a value that is no port becomes a warning (the Service is load-balanced without a health check). */
function healthCheckPortOf(v: unknown, warnings: string[]): number | undefined {
  if (v === undefined || v === null || v === 0) return undefined;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535) return v;
  warnings.push(`spec.healthCheckNodePort: want a port 1..65535, got ${JSON.stringify(v)}: no health check is served`);
  return undefined;
}

/** A Service as the load balancer reads it, or why it cannot be used. */
export function serviceOf(raw: SlimService): Adapted<Service> {
  try {
    const spec = raw.spec ?? {};
    const type = spec.type ?? 'ClusterIP';
    if (!(SERVICE_TYPES as readonly string[]).includes(type)) throw new FieldError(`spec.type: want one of ${SERVICE_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
    const warnings: string[] = [];
    const clusterIPs = spec.clusterIPs !== undefined ? addressesOf(stringList(spec.clusterIPs, 'spec.clusterIPs'), (i) => `spec.clusterIPs[${i}]`, warnings, true)
      : typeof spec.clusterIP === 'string' && spec.clusterIP !== '' ? addressesOf([spec.clusterIP], () => 'spec.clusterIP', warnings, true) : [];
    if (spec.ports !== undefined && !Array.isArray(spec.ports)) throw new FieldError('spec.ports: want a list');
    const ports: ServicePort[] = (spec.ports ?? []).map((p: unknown, i) => {
      const at = `spec.ports[${i}]`;
      if (!isRecord(p)) throw new FieldError(`${at}: want an object`);
      return {
        name: nameOf(p.name, `${at}.name`), protocol: protocolOf(p.protocol, `${at}.protocol`), port: portNumber(p.port, `${at}.port`),
        ...(p.nodePort !== undefined && p.nodePort !== null && p.nodePort !== 0 ? { nodePort: portNumber(p.nodePort, `${at}.nodePort`) } : {}),
      };
    });
    const ingress = raw.status?.loadBalancer?.ingress;
    if (ingress !== undefined && !Array.isArray(ingress)) throw new FieldError('status.loadBalancer.ingress: want a list');
    const externalIPs = addressesOf(stringList(spec.externalIPs, 'spec.externalIPs'), (i) => `spec.externalIPs[${i}]`, warnings);
    const loadBalancerIPs = (ingress ?? []).flatMap((g: unknown, i) => {
      const ip = isRecord(g) ? g.ip : undefined;
      return typeof ip === 'string' && ip !== '' ? addressesOf([ip], () => `status.loadBalancer.ingress[${i}].ip`, warnings) : [];
    });
    const affinitySeconds = affinityOf(spec);
    const healthCheckNodePort = healthCheckPortOf(spec.healthCheckNodePort, warnings);
    return {
      ok: true,
      warnings,
      value: {
        namespace: raw.metadata.namespace ?? '',
        name: raw.metadata.name,
        labels: raw.metadata.labels ?? {},
        type: type as ServiceType,
        clusterIPs,
        ports,
        externalIPs,
        loadBalancerIPs,
        ...(affinitySeconds !== undefined ? { affinitySeconds } : {}),
        externalTrafficPolicy: policyOf(spec.externalTrafficPolicy),
        internalTrafficPolicy: policyOf(spec.internalTrafficPolicy),
        ...(healthCheckNodePort !== undefined ? { healthCheckNodePort } : {}),
      },
    };
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, error: e.message };
    throw e;
  }
}

function hintNames(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new FieldError(`${field}: want a list`);
  return v.flatMap((h: unknown) => (isRecord(h) && typeof h.name === 'string' && h.name !== '' ? [h.name] : []));
}

function endpointOf(e: unknown, at: string, warnings: string[]): SliceEndpoint {
  if (!isRecord(e)) throw new FieldError(`${at}: want an object`);
  const c: Record<string, unknown> = isRecord(e.conditions) ? e.conditions : {};
  const bool = (v: unknown, whenNil: boolean, field: string): boolean => {
    if (v === undefined || v === null) return whenNil;
    if (typeof v !== 'boolean') throw new FieldError(`${at}.conditions.${field}: want a boolean`);
    return v;
  };
  const hints = isRecord(e.hints)
    ? { forZones: hintNames(e.hints.forZones, `${at}.hints.forZones`), forNodes: hintNames(e.hints.forNodes, `${at}.hints.forNodes`) }
    : undefined;
  return {
    addresses: addressesOf(stringList(e.addresses, `${at}.addresses`), (i) => `${at}.addresses[${i}]`, warnings),
    ready: bool(c.ready, true, 'ready'),
    serving: bool(c.serving, true, 'serving'),
    terminating: bool(c.terminating, false, 'terminating'),
    ...(typeof e.nodeName === 'string' && e.nodeName !== '' ? { nodeName: e.nodeName } : {}),
    ...(typeof e.zone === 'string' && e.zone !== '' ? { zone: e.zone } : {}),
    ...(hints !== undefined ? { hints } : {}),
  };
}

/** An EndpointSlice as the load balancer reads it; undefined when it names no Service (no kubernetes.io/service-name label). */
export function sliceOf(raw: SlimEndpointSlice): Adapted<EndpointSlice> | undefined {
  const serviceName = raw.metadata.labels?.[SERVICE_NAME_LABEL];
  if (serviceName === undefined || serviceName === '') return undefined;
  try {
    if (raw.ports !== undefined && raw.ports !== null && !Array.isArray(raw.ports)) throw new FieldError('ports: want a list');
    const warnings: string[] = [];
    const ports: SlicePort[] = [];
    for (const [i, p] of (raw.ports ?? []).entries()) {
      const at = `ports[${i}]`;
      if (!isRecord(p)) throw new FieldError(`${at}: want an object`);
      if (p.port === undefined || p.port === null) {
        warnings.push(`${at}: no port number: skipped`);
        continue;
      }
      ports.push({ name: nameOf(p.name, `${at}.name`), protocol: protocolOf(p.protocol, `${at}.protocol`), port: portNumber(p.port, `${at}.port`) });
    }
    if (raw.endpoints !== undefined && raw.endpoints !== null && !Array.isArray(raw.endpoints)) throw new FieldError('endpoints: want a list');
    const listed: readonly unknown[] = raw.endpoints ?? [];
    const endpoints = listed.map((e, i) => endpointOf(e, `endpoints[${i}]`, warnings));
    return {
      ok: true,
      warnings,
      value: {
        namespace: raw.metadata.namespace ?? '', name: raw.metadata.name, serviceName,
        addressType: typeof raw.addressType === 'string' ? raw.addressType : '', ports, endpoints,
      },
    };
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, error: e.message };
    throw e;
  }
}

/** This node as endpoint selection needs it: its name and its Node's zone label. */
export function localNodeOf(nodeName: string, nodes: readonly SlimNode[]): LocalNode {
  const zone = nodes.find((n) => n.metadata.name === nodeName)?.metadata.labels?.[ZONE_LABEL];
  return { name: nodeName, ...(typeof zone === 'string' && zone !== '' ? { zone } : {}) };
}

/** This node's InternalIP and ExternalIP addresses, in the Node's order, each once. */
export function localNodeAddresses(nodeName: string, nodes: readonly SlimNode[]): string[] {
  const listed: unknown = nodes.find((n) => n.metadata.name === nodeName)?.status?.addresses;
  if (!Array.isArray(listed)) return [];
  const out = new Set<string>();
  for (const a of listed as unknown[]) {
    if (isRecord(a) && (a.type === 'InternalIP' || a.type === 'ExternalIP') && typeof a.address === 'string' && isIP(a.address) !== 0) out.add(a.address);
  }
  return [...out];
}

/** How each object is read (default: serviceOf, sliceOf; the snapshot cache's keep results of unchanged objects). */
export interface LbParsers {
  service(raw: SlimService): Adapted<Service>;
  slice(raw: SlimEndpointSlice): Adapted<EndpointSlice> | undefined;
}

const FRESH: LbParsers = { service: serviceOf, slice: sliceOf };

/** The Services part of the load balancer's input: each usable Service, the algorithms annotations chose, and the problems. */
export interface LbServicesPart {
  readonly services: readonly Service[];
  readonly algorithms: ReadonlyMap<string, LbAlgorithm>;
  readonly problems: readonly LbInputProblem[];
}

/** The EndpointSlices part: each usable slice, and the problems. */
export interface LbSlicesPart {
  readonly slices: readonly EndpointSlice[];
  readonly problems: readonly LbInputProblem[];
}

export function lbServicesOf(services: readonly SlimService[], parse: LbParsers = FRESH): LbServicesPart {
  const problems: LbInputProblem[] = [];
  const out: Service[] = [];
  const algorithms = new Map<string, LbAlgorithm>();
  for (const raw of services) {
    const r = parse.service(raw);
    if (!r.ok) {
      problems.push({ kind: 'Service', name: objectKey(raw), severity: 'error', message: `${r.error}: the Service is not load-balanced` });
      continue;
    }
    out.push(r.value);
    for (const w of r.warnings) problems.push({ kind: 'Service', name: objectKey(raw), severity: 'warning', message: w });
    const chosen: unknown = raw.metadata.annotations?.[LB_ALGORITHM_ANNOTATION];
    if (chosen === 'maglev' || chosen === 'random') algorithms.set(objectKey(raw), chosen);
    else if (chosen !== undefined) {
      problems.push({ kind: 'Service', name: objectKey(raw), severity: 'warning', message: `annotation ${LB_ALGORITHM_ANNOTATION}: want maglev or random, got ${JSON.stringify(chosen)}: the node's default is used` });
    }
  }
  return { services: out, algorithms, problems };
}

export function lbSlicesOf(slices: readonly SlimEndpointSlice[], parse: LbParsers = FRESH): LbSlicesPart {
  const problems: LbInputProblem[] = [];
  const out: EndpointSlice[] = [];
  for (const raw of slices) {
    const r = parse.slice(raw);
    if (r === undefined) continue;
    if (!r.ok) {
      problems.push({ kind: 'EndpointSlice', name: objectKey(raw), severity: 'error', message: `${r.error}: its endpoints are left out` });
      continue;
    }
    for (const w of r.warnings) problems.push({ kind: 'EndpointSlice', name: objectKey(raw), severity: 'warning', message: w });
    out.push(r.value);
  }
  return { slices: out, problems };
}

/**
 * This node's pods' hostPorts, the Services and slices that serve them
 * (made here once, so that an unchanged part gives the planner the same
 * objects every round), and the ports left out.
 */
export interface HostPortsPart {
  readonly mappings: readonly HostPortMapping[];
  readonly services: readonly Service[];
  readonly slices: readonly EndpointSlice[];
  readonly problems: readonly LbInputProblem[];
}

const NO_HOST_PORTS: HostPortsPart = { mappings: [], services: [], slices: [], problems: [] };

/**
 * The hostPorts of the pods on `nodeName` that have an IPv4 address and have
 * not ended (spec.containers[].ports[]: hostPort, hostIP, containerPort,
 * protocol), as the CNI portmap plugin maps them. A host-network pod's
 * ports are its own sockets already. A hostIP "0.0.0.0" (or none) is every
 * node address; an IPv6 one is left out.
 */
export function hostPortsOf(pods: Iterable<SlimPod>, nodeName: string): HostPortsPart {
  const mappings: HostPortMapping[] = [];
  const problems: LbInputProblem[] = [];
  for (const pod of pods) {
    const spec = pod.spec;
    const podIP = pod.status?.podIP;
    if (spec?.nodeName !== nodeName || spec.hostNetwork === true || typeof podIP !== 'string' || isIP(podIP) !== 4) continue;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    for (const [ci, c] of (spec.containers ?? []).entries()) {
      for (const [pi, raw] of (c.ports ?? []).entries()) {
        const p: unknown = raw;
        if (!isRecord(p) || p.hostPort === undefined || p.hostPort === null || p.hostPort === 0) continue;
        const at = `spec.containers[${ci}].ports[${pi}]`;
        try {
          const hostIP = typeof p.hostIP === 'string' && p.hostIP !== '0.0.0.0' ? p.hostIP : '';
          if (hostIP !== '' && isIP(hostIP) !== 4) throw new FieldError(`${at}.hostIP: want an IPv4 address, got ${JSON.stringify(p.hostIP)}`);
          mappings.push({
            namespace: pod.metadata.namespace ?? '', pod: pod.metadata.name, podIP, hostIP,
            hostPort: portNumber(p.hostPort, `${at}.hostPort`), containerPort: portNumber(p.containerPort, `${at}.containerPort`),
            protocol: protocolOf(p.protocol, `${at}.protocol`),
          });
        } catch (e) {
          if (!(e instanceof FieldError)) throw e;
          problems.push({ kind: 'Pod', name: objectKey(pod), severity: 'error', message: `${e.message}: the hostPort is not mapped` });
        }
      }
    }
  }
  return mappings.length === 0 && problems.length === 0 ? NO_HOST_PORTS : { mappings, ...hostPortServices(mappings, nodeName), problems };
}

/** The load balancer's whole input from its parts and this node, with the objects it left out or used with a caveat. */
export function lbInputFrom(nodeName: string, nodes: readonly SlimNode[], services: LbServicesPart, slices: LbSlicesPart,
  hostPorts: HostPortsPart = NO_HOST_PORTS): { readonly input: LbInput; readonly problems: readonly LbInputProblem[] } {
  // The hostPorts' Services come after the real ones, which keep a frontend both want.
  const mapped = hostPorts.services.length > 0;
  return {
    input: {
      services: mapped ? [...services.services, ...hostPorts.services] : services.services,
      slices: mapped ? [...slices.slices, ...hostPorts.slices] : slices.slices,
      node: localNodeOf(nodeName, nodes), nodeAddresses: localNodeAddresses(nodeName, nodes),
      algorithms: services.algorithms,
    },
    problems: [...services.problems, ...slices.problems, ...hostPorts.problems],
  };
}
