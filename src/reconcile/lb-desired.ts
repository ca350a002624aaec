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
 *  - A pod's hostPort (type HostPort): its hostIP, or every address of
 *    this node and 127.0.0.1, in both scopes (127.0.0.1 in the pod scope
 *    only, for the node's own sockets), on the local set, never masqueraded.
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
  /** By key, in the order of the input's Services (from an LbPlanner, a Service port added since it started comes last). */
  readonly services: ReadonlyMap<string, DesiredService>;
  /** Frontend entries two Service ports want (the first in Service order keeps it), and Services left alone. */
  readonly conflicts: readonly string[];
  readonly ignored: readonly string[];
}

const isIpv4 = (s: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(s);
const LOOPBACK = '127.0.0.1';

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
      if (f.kind === 'HostPort') {
        // The pod is on this node: the local set, the client's address kept; without a hostIP also on
        // 127.0.0.1, which only the node's own sockets can reach (the socket load balancer).
        for (const address of f.address !== undefined ? [f.address] : [...nodeAddresses, LOOPBACK]) {
          add(f, address, 'pod', 'local');
          if (address !== LOOPBACK) add(f, address, 'external', 'local');
        }
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

const serviceIdOf = (s: Service): string => `${s.namespace}/${s.name}`;
const sliceServiceOf = (s: EndpointSlice): string => `${s.namespace}/${s.serviceName}`;

/**
 * Ids (of `idOf`) of the objects that differ between two lists, by
 * identity. Lists of one length are compared position by position (an
 * object replaced in place, as an informer's update leaves it, costs one
 * comparison per position and no allocation); otherwise as sets.
 */
function changedIds<T>(before: readonly T[], after: readonly T[], idOf: (x: T) => string, into: Set<string>): void {
  if (before === after) return;
  if (before.length === after.length) {
    for (let i = 0; i < after.length; i++) {
      const a = before[i] as T;
      const b = after[i] as T;
      if (a === b) continue;
      into.add(idOf(a));
      into.add(idOf(b));
    }
    return;
  }
  const was = new Set(before);
  const is = new Set(after);
  for (const x of before) if (!is.has(x)) into.add(idOf(x));
  for (const x of after) if (!was.has(x)) into.add(idOf(x));
}

/** A planner's input by Service id: its object, and its slices in input order (the planner updates both in place). */
interface InputIndex {
  readonly services: Map<string, Service>;
  readonly slices: Map<string, readonly EndpointSlice[]>;
}

function indexOf(input: { readonly services: readonly Service[]; readonly slices: readonly EndpointSlice[] }): InputIndex {
  return { services: servicesById(input.services), slices: slicesByService(input.slices) };
}

function servicesById(services: readonly Service[]): Map<string, Service> {
  return new Map(services.map((svc) => [serviceIdOf(svc), svc]));
}

function slicesByService(slices: readonly EndpointSlice[]): Map<string, EndpointSlice[]> {
  const out = new Map<string, EndpointSlice[]>();
  for (const s of slices) {
    const id = sliceServiceOf(s);
    const list = out.get(id);
    if (list === undefined) out.set(id, [s]);
    else list.push(s);
  }
  return out;
}

interface Kept {
  readonly inputs: readonly unknown[];
  readonly result: ServiceResult;
}

/**
 * The desired state, kept per Service between rounds: a Service whose
 * object, slices and algorithm are the same objects as last time keeps its
 * result (its Maglev tables are not built again), and only Services whose
 * inputs changed are looked at, so one change costs one Service's compile
 * plus a scan by identity of the input lists (no allocation while their
 * lengths stay). changed() names the Service ports whose desired state the
 * last call changed. Frontend entries two Service ports want are settled
 * over every Service (the first in Service order keeps it) while any such
 * conflict exists. Node, node addresses, default algorithm or table size
 * changing starts afresh.
 */
export class LbPlanner {
  private kept = new Map<string, Kept>();
  private globals = '';
  private last: { readonly input: LbInputLists; readonly desired: LbDesired } | undefined;
  /** Frontend entry key → the Service ports that want it (before conflicts are settled). */
  private claims = new Map<string, string[]>();
  private contested = 0;
  private lastChanged: ReadonlySet<string> | undefined;
  /** The last input's Services by id and slices by Service id (in input order), kept up to date from the objects that change. */
  private index: InputIndex | undefined;
  /** The services map of the last result: the planner's own, updated in place by a change (settle() makes a new one). */
  private services = new Map<string, DesiredService>();

  /**
   * The Service ports ("namespace/name:port/PROTOCOL") whose entry in the
   * last desired() result is not the object the call before gave (added,
   * changed or gone); undefined when the last call planned everything
   * afresh (the first one, or node, addresses, algorithm or table size
   * changed).
   */
  changed(): ReadonlySet<string> | undefined {
    return this.lastChanged;
  }

  /**
   * Compiles every Service of `input` ahead of the first desired() (at
   * agent start), awaiting `pause` after each, so that the first round finds
   * their results kept instead of compiling 10,000 Services (or 1,000
   * Maglev tables) in one stretch. Does nothing once desired() has run.
   */
  async prime(input: LbDesiredInput, pause: () => Promise<void>): Promise<void> {
    if (this.last !== undefined) return;
    const nodeAddresses = this.useGlobals(input);
    const slicesOf = slicesByService(input.slices);
    for (const svc of input.services) {
      const id = serviceIdOf(svc);
      this.keep(id, svc, slicesOf.get(id) ?? [], input, nodeAddresses);
      await pause();
    }
  }

  /**
   * The desired state of `input`. A change updates the services map of the
   * last result in place (one change among 10,000 Services copies nothing):
   * a result's map is current until the next call, and a caller that keeps a
   * result across calls must copy what it needs. Each call that changed
   * something returns a new result object; one that did not, the last one.
   */
  desired(input: LbDesiredInput): LbDesired {
    const globals = this.globals;
    const nodeAddresses = this.useGlobals(input);
    const last = this.last;
    if (globals !== this.globals || last === undefined) return this.afresh(input, nodeAddresses);
    const dirty = new Set<string>();
    const index = this.indexed(last.input, input, dirty);
    if (last.input.algorithms !== input.algorithms) {
      for (const id of new Set([...(last.input.algorithms?.keys() ?? []), ...(input.algorithms?.keys() ?? [])])) {
        if (last.input.algorithms?.get(id) !== input.algorithms?.get(id)) dirty.add(id);
      }
    }
    this.last = { input: refOf(input), desired: last.desired };
    if (dirty.size === 0) {
      this.lastChanged = new Set();
      return last.desired;
    }

    const changed = new Set<string>();
    let ignoredChanged = false;
    const contestedBefore = this.contested;
    for (const id of dirty) {
      const before = this.kept.get(id);
      const svc = index.services.get(id);
      const after = svc === undefined ? undefined : this.keep(id, svc, index.slices.get(id) ?? [], input, nodeAddresses);
      if (before?.result === after?.result) continue;
      if (svc === undefined) this.kept.delete(id);
      for (const d of before?.result.services ?? []) {
        changed.add(d.key);
        for (const f of d.frontends) this.unclaim(f.key, d.key);
      }
      for (const d of after?.result.services ?? []) {
        changed.add(d.key);
        for (const f of d.frontends) this.claim(f.key, d.key);
      }
      if ((before?.result.ignored.length ?? 0) > 0 || (after?.result.ignored.length ?? 0) > 0) ignoredChanged = true;
    }
    if (contestedBefore > 0 || this.contested > 0) {
      // Some frontend entry is wanted twice: settled again over every Service, in order.
      const desired = this.settle(input.services);
      this.lastChanged = changedBetween(last.desired.services, desired.services);
      this.last = { input: refOf(input), desired };
      return desired;
    }
    const now = new Map<string, DesiredService>();
    for (const id of dirty) for (const d of this.kept.get(id)?.result.services ?? []) now.set(d.key, d);
    const services = this.services;
    for (const key of changed) {
      const d = now.get(key);
      if (d === undefined) services.delete(key);
      else services.set(key, d);
    }
    const ignored = ignoredChanged ? input.services.flatMap((svc) => this.kept.get(serviceIdOf(svc))?.result.ignored ?? []) : last.desired.ignored;
    const desired: LbDesired = { services, conflicts: [], ignored };
    this.lastChanged = changed;
    this.last = { input: refOf(input), desired };
    return desired;
  }

  /**
   * The index of `input`, from last call's by the objects that differ
   * (their Services' ids go into `dirty`). Lists of one length are compared
   * position by position, and an object replaced in place (an informer's
   * update) is replaced in the index: one change costs a scan by identity,
   * not a regrouping of 10,000 slices. Otherwise, or when a slice moved to
   * another Service, that half is indexed again.
   */
  private indexed(before: LbInputLists, input: LbDesiredInput, dirty: Set<string>): InputIndex {
    const index = this.index;
    if (index === undefined) {
      changedIds(before.services, input.services, serviceIdOf, dirty);
      changedIds(before.slices, input.slices, sliceServiceOf, dirty);
      return (this.index = indexOf(input));
    }
    let { services, slices } = index;
    if (before.services !== input.services) {
      if (before.services.length !== input.services.length) {
        changedIds(before.services, input.services, serviceIdOf, dirty);
        services = servicesById(input.services);
      } else {
        for (let i = 0; i < input.services.length; i++) {
          const a = before.services[i] as Service;
          const b = input.services[i] as Service;
          if (a === b) continue;
          dirty.add(serviceIdOf(a));
          dirty.add(serviceIdOf(b));
          if (services.get(serviceIdOf(a)) === a) services.delete(serviceIdOf(a));
          services.set(serviceIdOf(b), b);
        }
      }
    }
    if (before.slices !== input.slices) {
      let regroup = before.slices.length !== input.slices.length;
      if (regroup) changedIds(before.slices, input.slices, sliceServiceOf, dirty);
      else {
        for (let i = 0; i < input.slices.length; i++) {
          const a = before.slices[i] as EndpointSlice;
          const b = input.slices[i] as EndpointSlice;
          if (a === b) continue;
          const id = sliceServiceOf(b);
          dirty.add(sliceServiceOf(a));
          dirty.add(id);
          const list = slices.get(id);
          const at = list?.indexOf(a) ?? -1;
          if (list === undefined || at < 0 || sliceServiceOf(a) !== id) {
            regroup = true;
            continue;
          }
          // A new array: the kept result of the Service compares its slices by identity, element by element.
          slices.set(id, list.map((x, j) => (j === at ? b : x)));
        }
      }
      if (regroup) slices = slicesByService(input.slices);
    }
    return (this.index = { services, slices });
  }

  /** This node's addresses as a NodePort uses them; what is kept is dropped when node, addresses, default algorithm or table size changed. */
  private useGlobals(input: LbDesiredInput): string[] {
    const nodeAddresses = [...new Set(input.nodeAddresses.filter(isIpv4))].sort();
    const globals = JSON.stringify([input.node.name, input.node.zone ?? '', nodeAddresses, input.maglevTableSize, input.algorithm]);
    if (globals !== this.globals) {
      this.globals = globals;
      this.kept = new Map();
    }
    return nodeAddresses;
  }

  /** Every Service planned again (results kept under the same globals reused while their inputs are the same objects). */
  private afresh(input: LbDesiredInput, nodeAddresses: readonly string[]): LbDesired {
    this.index = indexOf(input);
    const slicesOf = this.index.slices;
    const previous = this.kept;
    this.kept = new Map();
    this.claims = new Map();
    this.contested = 0;
    for (const svc of input.services) {
      const id = serviceIdOf(svc);
      const result = this.keep(id, svc, slicesOf.get(id) ?? [], input, nodeAddresses, previous).result;
      for (const d of result.services) for (const f of d.frontends) this.claim(f.key, d.key);
    }
    const desired = this.settle(input.services);
    this.lastChanged = undefined;
    this.last = { input: refOf(input), desired };
    return desired;
  }

  /** Service `id`'s result: the kept one while its inputs are the same objects, else compiled; kept for next time. */
  private keep(id: string, svc: Service, slices: readonly EndpointSlice[], input: LbDesiredInput, nodeAddresses: readonly string[],
    from: ReadonlyMap<string, Kept> = this.kept): Kept {
    const inputs = [svc, input.algorithms?.get(id) ?? input.algorithm, ...slices];
    const last = from.get(id);
    const kept = last !== undefined && last.inputs.length === inputs.length && last.inputs.every((x, i) => x === inputs[i])
      ? last : { inputs, result: serviceDesired(svc, slices, input, nodeAddresses) };
    this.kept.set(id, kept);
    return kept;
  }

  private claim(frontend: string, servicePort: string): void {
    const list = this.claims.get(frontend);
    if (list === undefined) {
      this.claims.set(frontend, [servicePort]);
      return;
    }
    list.push(servicePort);
    if (list.length === 2) this.contested++;
  }

  private unclaim(frontend: string, servicePort: string): void {
    const list = this.claims.get(frontend);
    if (list === undefined) return;
    const at = list.indexOf(servicePort);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 1 && at >= 0) this.contested--;
    if (list.length === 0) this.claims.delete(frontend);
  }

  /** The kept results of `services`, in order; a frontend entry two Service ports want goes to the first. */
  private settle(services: readonly Service[]): LbDesired {
    const taken = new Map<string, string>();
    const conflicts: string[] = [];
    const ignored: string[] = [];
    const out = new Map<string, DesiredService>();
    for (const svc of services) {
      const result = this.kept.get(serviceIdOf(svc))?.result;
      if (result === undefined) continue;
      ignored.push(...result.ignored);
      for (const d of result.services) {
        const mine = d.frontends.filter((f) => {
          const owner = taken.get(f.key);
          if (owner === undefined) {
            taken.set(f.key, d.key);
            return true;
          }
          conflicts.push(`${f.key}: wanted by ${owner} and ${d.key}; ${owner} keeps it`);
          return false;
        });
        if (mine.length === d.frontends.length) out.set(d.key, d);
        else if (mine.length > 0) out.set(d.key, this.filtered(d, mine));
      }
    }
    this.services = out;
    return { services: out, conflicts, ignored };
  }

  /** Which kept result each Service port that lost a frontend entry was made from. */
  private readonly filteredFrom = new WeakMap<DesiredService, DesiredService>();

  /** d with only `frontends`: last call's object while it was made from d and kept the same ones (so it counts as unchanged). */
  private filtered(d: DesiredService, frontends: readonly DesiredFrontend[]): DesiredService {
    const previous = this.last?.desired.services.get(d.key);
    if (previous !== undefined && this.filteredFrom.get(previous) === d && previous.frontends.length === frontends.length &&
      previous.frontends.every((f, i) => f === frontends[i])) return previous;
    const out = { ...d, frontends };
    this.filteredFrom.set(out, d);
    return out;
  }
}

/** The input lists a planner compares by identity next time. */
interface LbInputLists {
  readonly services: readonly Service[];
  readonly slices: readonly EndpointSlice[];
  readonly algorithms: ReadonlyMap<string, LbAlgorithm> | undefined;
}

const refOf = (input: LbDesiredInput): LbInputLists => ({ services: input.services, slices: input.slices, algorithms: input.algorithms });

/** Keys whose entry is not the same object in both. */
function changedBetween(before: ReadonlyMap<string, DesiredService>, after: ReadonlyMap<string, DesiredService>): Set<string> {
  const out = new Set<string>();
  for (const [k, d] of after) if (before.get(k) !== d) out.add(k);
  for (const k of before.keys()) if (!after.has(k)) out.add(k);
  return out;
}

/** The desired state of `input`, with nothing kept from an earlier round. */
export function lbDesired(input: LbDesiredInput): LbDesired {
  return new LbPlanner().desired(input);
}
