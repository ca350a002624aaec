/**
 * The load balancer's desired datapath state in names, before ids: per
 * Service port (namespace/name, port name, protocol — what the datapath
 * calls a service), its frontend entries, its serving backends and its
 * backend tables. Pure; the owner (lb.ts) gives it ids and diffs it against
 * the maps.
 *
 *  - Frontends come from src/lb's compile, one entry per lookup the
 *    datapath makes (address, port, protocol, scope): a ClusterIP in the
 *    pod scope only; a NodePort once per address of this node, an external
 *    or load-balancer IP once, each in the pod scope (this node's pods) and
 *    the external scope (traffic from outside the node).
 *  - Which table a frontend uses: internalTrafficPolicy decides for the
 *    ClusterIP, externalTrafficPolicy for the external scope; pods reaching
 *    an external frontend always use the cluster set (kube-proxy sends them
 *    "out to the load balancer and back"). External-scope entries under
 *    externalTrafficPolicy Cluster masquerade (the backend may be on
 *    another node); under Local they keep the client's address.
 *  - Tables: kube-proxy's cluster set and local set (src/lb/select.ts), as
 *    backend keys, for the sets some frontend uses.
 *  - Backends: every serving endpoint of the Service port (ready, or
 *    serving and terminating), selectable or not: one not in any table keeps
 *    its existing connections and UDP flows but takes no new ones. An
 *    endpoint that stops serving leaves the backends, so the datapath moves
 *    its UDP flows (kube-proxy's conntrack cleanup does the same).
 */
import { compileServices, portEndpoints, type Frontend, type FrontendKind } from '../lb/compile.js';
import { maglevTable } from '../lb/maglev.js';
import type { EndpointSlice, L4Protocol, LocalNode, Service, ServicePort } from '../lb/model.js';
import { categorize } from '../lb/select.js';

export type LbScope = 'pod' | 'external';
export type LbSet = 'cluster' | 'local';
export type LbAlgorithm = 'maglev' | 'random';

/** What the owner reads of a round. */
export interface LbDesiredInput {
  readonly services: readonly Service[];
  readonly slices: readonly EndpointSlice[];
  readonly node: LocalNode;
  /** This node's IPv4 addresses: a NodePort answers on each. */
  readonly nodeAddresses: readonly string[];
  readonly algorithm: LbAlgorithm;
  /** Services ("namespace/name") that chose their own algorithm. */
  readonly algorithms?: ReadonlyMap<string, LbAlgorithm>;
  /** Maglev table size (a prime of src/lb/maglev.ts). */
  readonly maglevTableSize: number;
}

export interface DesiredFrontend {
  /** "10.96.0.10:80/TCP pod". */
  readonly key: string;
  readonly kind: FrontendKind;
  readonly address: string;
  readonly port: number;
  readonly protocol: L4Protocol;
  readonly scope: LbScope;
  readonly set: LbSet;
  /** 0: no ClientIP affinity. */
  readonly affinitySeconds: number;
  /** Without a backend: drop (Local policy, endpoints elsewhere) rather than reject. */
  readonly emptyDrop: boolean;
  /** From outside the node under externalTrafficPolicy Cluster: the source becomes the node's address, as kube-proxy's masquerade. */
  readonly masquerade: boolean;
}

export interface DesiredBackend {
  /** "10.0.0.5:8080". */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  /** In some table of its service: new connections may get it. */
  readonly selectable: boolean;
}

export interface DesiredTable {
  /** Backend keys, sorted. */
  readonly backends: readonly string[];
  /** maglev: slot → index into `backends`; random: absent (each backend once). */
  readonly slots?: Uint32Array;
}

export interface DesiredService {
  /** "namespace/name:portName/PROTOCOL" (portName "" for an unnamed port). */
  readonly key: string;
  readonly algorithm: LbAlgorithm;
  readonly frontends: readonly DesiredFrontend[];
  /** By key, sorted. */
  readonly backends: ReadonlyMap<string, DesiredBackend>;
  readonly tables: Partial<Record<LbSet, DesiredTable>>;
}

export interface LbDesired {
  /** By key, in the order of the input's Services. */
  readonly services: ReadonlyMap<string, DesiredService>;
  /** Frontend entries two Service ports want (the first in Service order keeps it), and Services left alone. */
  readonly conflicts: readonly string[];
  readonly ignored: readonly string[];
}

const isIpv4 = (s: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(s);

export function serviceKey(service: string, portName: string, protocol: L4Protocol): string {
  return `${service}:${portName}/${protocol}`;
}

/** Maglev permutations come from "ip:port/PROTOCOL", so every node builds the same table for a backend set. */
function tableOf(keys: readonly string[], protocol: L4Protocol, algorithm: LbAlgorithm, size: number): DesiredTable {
  if (algorithm === 'random' || keys.length === 0) return { backends: keys };
  return { backends: keys, slots: maglevTable(keys.map((k) => `${k}/${protocol}`), size) };
}

interface ServiceResult {
  readonly services: readonly DesiredService[];
  readonly ignored: readonly string[];
}

/** One Service (all its slices) → its Service ports' desired state; frontend entries not yet checked against other Services'. */
function serviceDesired(svc: Service, slices: readonly EndpointSlice[], input: LbDesiredInput, nodeAddresses: readonly string[]): ServiceResult {
  const compiled = compileServices([svc], slices, input.node);
  const frontendsOf = new Map<string, Frontend[]>();
  for (const f of compiled.frontends.values()) {
    const key = serviceKey(f.service, f.portName, f.protocol);
    const list = frontendsOf.get(key);
    if (list === undefined) frontendsOf.set(key, [f]);
    else list.push(f);
  }
  const id = `${svc.namespace}/${svc.name}`;
  const algorithm = input.algorithms?.get(id) ?? input.algorithm;
  const services: DesiredService[] = [];
  for (const [key, fronts] of frontendsOf) {
    const first = fronts[0] as Frontend;
    const port = svc.ports.find((p) => p.name === first.portName && p.protocol === first.protocol) as ServicePort;
    const endpoints = portEndpoints(port, slices);
    const eps = categorize(endpoints, input.node);
    const frontends: DesiredFrontend[] = [];
    const add = (f: Frontend, address: string, scope: LbScope, set: LbSet): void => {
      frontends.push({
        key: `${address}:${f.port}/${f.protocol} ${scope}`, kind: f.kind, address, port: f.port, protocol: f.protocol, scope, set,
        affinitySeconds: f.affinitySeconds ?? 0, emptyDrop: f.whenEmpty === 'drop', masquerade: scope === 'external' && set === 'cluster',
      });
    };
    for (const f of fronts) {
      if (f.kind === 'ClusterIP') {
        add(f, f.address ?? '', 'pod', svc.internalTrafficPolicy === 'Local' ? 'local' : 'cluster');
        continue;
      }
      const external: LbSet = svc.externalTrafficPolicy === 'Local' ? 'local' : 'cluster';
      for (const address of f.kind === 'NodePort' ? nodeAddresses : [f.address ?? '']) {
        add(f, address, 'pod', 'cluster');
        add(f, address, 'external', external);
      }
    }
    if (frontends.length === 0) continue;
    const tables: Partial<Record<LbSet, DesiredTable>> = {};
    const selectable = new Set<string>();
    for (const set of ['cluster', 'local'] as const) {
      if (!frontends.some((f) => f.set === set)) continue;
      const keys = [...new Set((set === 'cluster' ? eps.cluster : eps.local).map((e) => `${e.ip}:${e.port}`))].sort();
      for (const k of keys) selectable.add(k);
      tables[set] = tableOf(keys, first.protocol, algorithm, input.maglevTableSize);
    }
    const backends = new Map<string, DesiredBackend>();
    for (const e of endpoints) {
      const bkey = `${e.ip}:${e.port}`;
      if (!(e.ready || e.serving) && !selectable.has(bkey)) continue;
      backends.set(bkey, { key: bkey, ip: e.ip, port: e.port, selectable: selectable.has(bkey) });
    }
    services.push({ key, algorithm, frontends, backends: new Map([...backends].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))), tables });
  }
  return { services, ignored: compiled.ignored };
}

/**
 * The desired state, kept per Service between rounds: a Service whose
 * object, slices and algorithm are the same objects as last time keeps its
 * result (its Maglev tables are not built again), so one change costs one
 * Service's compile, not every Service's. Node, node addresses or table
 * size changing starts afresh.
 */
export class LbPlanner {
  private kept = new Map<string, { readonly inputs: readonly unknown[]; readonly result: ServiceResult }>();
  private globals = '';

  desired(input: LbDesiredInput): LbDesired {
    const nodeAddresses = [...new Set(input.nodeAddresses.filter(isIpv4))].sort();
    const globals = JSON.stringify([input.node.name, input.node.zone ?? '', nodeAddresses, input.maglevTableSize]);
    if (globals !== this.globals) this.kept = new Map();
    this.globals = globals;
    const slicesOf = new Map<string, EndpointSlice[]>();
    for (const s of input.slices) {
      const id = `${s.namespace}/${s.serviceName}`;
      const list = slicesOf.get(id);
      if (list === undefined) slicesOf.set(id, [s]);
      else list.push(s);
    }
    const kept = new Map<string, { readonly inputs: readonly unknown[]; readonly result: ServiceResult }>();
    const taken = new Map<string, string>();
    const conflicts: string[] = [];
    const ignored: string[] = [];
    const services = new Map<string, DesiredService>();
    for (const svc of input.services) {
      const id = `${svc.namespace}/${svc.name}`;
      const slices = slicesOf.get(id) ?? [];
      const inputs = [svc, input.algorithms?.get(id) ?? input.algorithm, ...slices];
      const last = this.kept.get(id);
      const result = last !== undefined && last.inputs.length === inputs.length && last.inputs.every((x, i) => x === inputs[i])
        ? last.result : serviceDesired(svc, slices, input, nodeAddresses);
      kept.set(id, { inputs, result });
      ignored.push(...result.ignored);
      for (const d of result.services) {
        // Two Service ports wanting one frontend entry: the first in Service order keeps it.
        const mine = d.frontends.filter((f) => {
          const owner = taken.get(f.key);
          if (owner === undefined) {
            taken.set(f.key, d.key);
            return true;
          }
          conflicts.push(`${f.key}: wanted by ${owner} and ${d.key}; ${owner} keeps it`);
          return false;
        });
        if (mine.length === d.frontends.length) services.set(d.key, d);
        else if (mine.length > 0) services.set(d.key, { ...d, frontends: mine });
      }
    }
    this.kept = kept;
    return { services, conflicts, ignored };
  }
}

/** The desired state of `input`, with nothing kept from an earlier round. */
export function lbDesired(input: LbDesiredInput): LbDesired {
  return new LbPlanner().desired(input);
}
