/**
 * Owner of the load balancer's maps (src/datapath/maps/lb-*.ts, bpf/lib/lb.h):
 * frontends sl_lb_svc_v1, backends sl_lb_be_v1 and backend tables
 * sl_lb_tbl_v1; of the datapath's ClientIP affinities sl_lb_aff_v1 it
 * deletes a deleted service's. Desired state: lb-desired.ts from the round's
 * Services, EndpointSlices and node.
 *
 * Ids. A service (one Service port) has a service id, a backend (one
 * serving endpoint of one service) a backend id; both are read back from
 * the maps, so they stay what they were across rounds and across an agent
 * restart: a service keeps the id its frontends carry in sl_lb_svc_v1, a
 * backend the id under which sl_lb_be_v1 holds its service, address and
 * port. New ones count up from the highest id seen: within a run a freed
 * id is not reused until the counter wraps (after a restart, ids freed
 * above the highest one left may be; the datapath checks a conntrack
 * entry's backend against its service, address and port anyway).
 *
 * Cost. While the maps hold what the last round made, the owner keeps
 * that state (its maps) and each Service port's entries, and a round looks
 * only at the Service ports the planner says changed (lb-desired.ts):
 * their old and new entries are diffed against the maps and the kept state
 * is updated in place, so one change costs that Service's entries, not
 * every Service's. A read-back (start, failure) recomputes all ids from the
 * maps and diffs everything; table contents are kept by inner array id, so
 * it reads only tables it has not seen or written (one batch lookup each),
 * and prefetch() reads them ahead in slices that leave the event loop free.
 *
 * Writes, in the order the datapath needs (a packet never sees a table
 * naming a backend not yet written, or a frontend whose table is not):
 * PUBLISH backends → tables (a whole new inner array swapped in, lb-tables)
 * → frontends; RETIRE frontends → tables → backends → affinities of
 * services gone. A write that fails (a full map: E2BIG) stops the rest of
 * that service's writes this round, so what is in place keeps working and
 * nothing half-written is reachable; the failure is reported, the owner
 * reads the maps back and the round is retried.
 */
import {
  lbTableKeyCodec, SluiceLbAlgorithm, SluiceLbBackendFlags, SluiceLbScope, SluiceLbSet, SluiceLbSvcFlags,
  type LbAffinityKey, type LbBackend, type LbSvcEntry, type LbSvcKey, type LbTableKey,
} from '../datapath/generated/abi.js';
import { formatIpv4, parseIpv4 } from '../datapath/maps/ipv4.js';
import { frontendRef, type GoneUdpBackend } from '../datapath/maps/lb-sock.js';
import { u32Codec } from '../datapath/maps/layout.js';
import { IP_PROTOCOL, ipProtocolName } from '../policy/protocols.js';
import { LbPlanner, type DesiredFrontend, type DesiredService, type LbAlgorithm, type LbDesired, type LbDesiredInput, type LbSet } from './lb-desired.js';
import { deleteAll, upsertAll, type MapStore } from './map-writes.js';
import { MapView } from './map-view.js';
import { Phase, type Reconciler, type StepFailure, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';

/** The backend tables as the owner writes them (LbTables of lb-tables.ts; tests may fake it). */
export interface LbTablesStore {
  /** The outer map: a key's value read back is its inner array's id. */
  readonly raw: { lookup(key: Buffer): Buffer | undefined };
  replace(key: LbTableKey, backendIds: ArrayLike<number>): void;
  /** Several tables, one outer-map batch (one kernel RCU wait) per chunk; throws when one fails, without saying which. */
  replaceMany(tables: ReadonlyArray<readonly [LbTableKey, ArrayLike<number>]>): void;
  read(key: LbTableKey): Uint32Array | undefined;
  /** Several tables, one outer-map batch (one kernel RCU wait) per chunk; returns the keys refused with their errors (a missing table is removed). */
  deleteMany(keys: readonly LbTableKey[]): readonly { readonly key: LbTableKey; readonly error: unknown }[];
  keys(): LbTableKey[];
}

/** Closes the node's connected UDP sockets whose backend left its Service (sock-lb.ts HostUdpSockets; tests may fake it). */
export interface HostUdpSocketCloser {
  /** Returns how many sockets it closed; throws when the kernel refuses. */
  terminate(gone: readonly GoneUdpBackend[]): number;
}

export interface LbOwnerMaps {
  readonly services: MapStore<LbSvcKey, LbSvcEntry>;
  readonly backends: MapStore<number, LbBackend>;
  readonly tables: LbTablesStore;
  readonly affinity: MapStore<LbAffinityKey, unknown>;
}

/** What the round gives the owner: the Services, slices and node (the agent's LbInput); absent: nothing to do. */
export interface LbRoundInput {
  readonly lb?: Omit<LbDesiredInput, 'algorithm' | 'maglevTableSize'>;
}

export interface LbOwnerOptions {
  /** Default true. false: the owner desires no Service (another proxy implements them) and removes what the maps hold. */
  readonly enabled?: boolean;
  /** Default random. */
  readonly algorithm?: LbAlgorithm;
  /** Default 16381 (src/lb/maglev.ts). */
  readonly maglevTableSize?: number;
}

/** The maps' contents (read back, or what the owner made and keeps up to date while they hold it). */
export interface LbState {
  /** By frontendId(). */
  readonly frontends: ReadonlyMap<string, readonly [LbSvcKey, LbSvcEntry]>;
  readonly backends: ReadonlyMap<number, LbBackend>;
  /** By tableId(). */
  readonly tables: ReadonlyMap<string, readonly [LbTableKey, Uint32Array]>;
}

/** The state the owner made: its own maps, changed in place by the next steady round. */
interface MadeState extends LbState {
  readonly frontends: Map<string, readonly [LbSvcKey, LbSvcEntry]>;
  readonly backends: Map<number, LbBackend>;
  readonly tables: Map<string, readonly [LbTableKey, Uint32Array]>;
}

/** A round's writes, before they are steps. */
interface LbDelta {
  readonly backendUpserts: (readonly [number, LbBackend])[];
  readonly tableReplaces: (readonly [LbTableKey, Uint32Array])[];
  readonly frontendUpserts: (readonly [LbSvcKey, LbSvcEntry])[];
  readonly frontendDeletes: (readonly [LbSvcKey, LbSvcEntry])[];
  readonly tableDeletes: LbTableKey[];
  readonly backendDeletes: (readonly [number, LbBackend])[];
  /** Services with ClientIP affinity that are gone from every map. */
  readonly affinityGone: ReadonlySet<number>;
}

const MAP = { services: 'lb-services', backends: 'lb-backends', tables: 'lb-tables', affinity: 'lb-affinity', sockets: 'lb-sock' } as const;
const MAX_ID = 0xffff_ffff;
/** Tables per replaceMany call. */
const TABLE_BATCH = 256;

const frontendId = (k: LbSvcKey): string => `${k.addr}:${k.port}:${k.protocol}:${k.scope}`;
const tableId = (k: LbTableKey): string => `${k.serviceId}:${k.backendSet}`;
const backendIdentity = (serviceId: number, addr: number, port: number): string => `${serviceId}/${addr}:${port}`;
const formatFrontendKey = (k: LbSvcKey): string =>
  `${formatIpv4(k.addr)}:${k.port}/${ipProtocolName(k.protocol)} ${k.scope === SluiceLbScope.EXTERNAL ? 'external' : 'pod'}`;

const setOf = (s: LbSet): number => (s === 'local' ? SluiceLbSet.LOCAL : SluiceLbSet.CLUSTER);

function frontendKey(f: DesiredFrontend): LbSvcKey {
  return {
    addr: parseIpv4(f.address), port: f.port, protocol: IP_PROTOCOL[f.protocol],
    scope: f.scope === 'external' ? SluiceLbScope.EXTERNAL : SluiceLbScope.POD,
  };
}

/** One Service port's entries, as the last plan made them. */
interface Bundle {
  readonly desired: DesiredService;
  readonly serviceId: number;
  readonly frontends: readonly (readonly [string, readonly [LbSvcKey, LbSvcEntry]])[];
  readonly backends: readonly (readonly [number, LbBackend])[];
  readonly tables: readonly (readonly [string, readonly [LbTableKey, Uint32Array]])[];
}

function sameEntry(a: LbSvcEntry | undefined, b: LbSvcEntry): boolean {
  return a === b || a !== undefined && a.serviceId === b.serviceId && a.affinityTimeoutS === b.affinityTimeoutS &&
    a.backendSet === b.backendSet && a.algorithm === b.algorithm && a.flags === b.flags;
}

function sameBackend(a: LbBackend | undefined, b: LbBackend): boolean {
  return a === b || a !== undefined && a.addr === b.addr && a.port === b.port && a.flags === b.flags && a.serviceId === b.serviceId;
}

function sameIds(a: Uint32Array | undefined, b: Uint32Array): boolean {
  if (a === b) return true;
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Ids counting up from the highest seen, skipping those in use, wrapping to 1 after 2^32-1. */
class IdCounter {
  private next = 1;

  /** Moves past `id` (seen in the maps or handed out). */
  see(id: number): void {
    if (id >= this.next) this.next = id === MAX_ID ? 1 : id + 1;
  }

  take(inUse: { has(id: number): boolean }): number {
    for (let tries = 0; tries < MAX_ID; tries++) {
      const id = this.next;
      this.next = id === MAX_ID ? 1 : id + 1;
      if (!inUse.has(id)) return id;
    }
    throw new RangeError('lb: every id is in use');
  }
}

export class LbOwner implements Reconciler<LbRoundInput> {
  readonly name = 'lb';
  private readonly view: MapView<LbState>;
  private readonly algorithm: LbAlgorithm;
  private readonly tableSize: number;
  private readonly enabled: boolean;
  /** The input a disabled owner plans from: the round's node, no Services, no slices (one object per node input, so rounds stay "the same"). */
  private disabledInput: { readonly from: NonNullable<LbRoundInput['lb']>; readonly input: NonNullable<LbRoundInput['lb']> } | undefined;
  private readonly planner = new LbPlanner();
  /** A Maglev table's elements by its slots and its backends' ids: the same array while neither changes (10,000 tables of 16381 would otherwise be rebuilt for every change). */
  private readonly elements = new WeakMap<Uint32Array, { readonly ids: string; readonly elements: Uint32Array }>();
  private readonly serviceIds = new IdCounter();
  private readonly backendIds = new IdCounter();
  /** Service key → id handed out (kept while the service is wanted; the maps confirm it). */
  private assigned = new Map<string, number>();
  /** The ids in `assigned`. */
  private assignedIds = new Set<number>();
  /** Service key → its entries, as the last plan made them. */
  private bundles = new Map<string, Bundle>();
  /** The state the last plan made (the union of `bundles`); the view while the maps hold it. */
  private made: MadeState | undefined;
  private lastInput: LbRoundInput['lb'];
  private lastDesired: LbDesired | undefined;
  private problems: readonly string[] = [];
  /**
   * Contents of the inner arrays read so far, by inner map id. An inner
   * array is never written once in place (a change is a new array), and the
   * kernel hands out map ids cyclically, so an id read again names the same
   * contents: a read-back reads only the tables that are new since the last
   * one.
   */
  private tableContents = new Map<number, Uint32Array>();
  /** The inner array id of each table (by tableId) whose contents are kept. */
  private tableInner = new Map<string, number>();
  /** The maps as prefetch() read them, for the next read-back; rounds since (settle) make it stale. */
  private prefetched: LbState | undefined;
  private rounds = 0;
  /** The node's sockets balanced by the socket load balancer, once it is attached (useHostSockets). */
  private hostSockets: HostUdpSocketCloser | undefined;

  constructor(private readonly maps: LbOwnerMaps, options: LbOwnerOptions = {}) {
    this.algorithm = options.algorithm ?? 'random';
    this.tableSize = options.maglevTableSize ?? 16381;
    this.enabled = options.enabled ?? true;
    this.view = new MapView(() => this.read());
  }

  current(): LbState {
    return this.view.current();
  }

  /**
   * From now on, a round that deletes a UDP backend also closes the node's
   * sockets the socket load balancer connected to it (their connect() chose
   * the backend itself, so nothing else would move them). Set at start,
   * once the socket load balancer is attached.
   */
  useHostSockets(sockets: HostUdpSocketCloser | undefined): void {
    this.hostSockets = sockets;
  }

  /** Frontend entries the desired state could not have (two Service ports wanting one), from the last plan. */
  conflicts(): readonly string[] {
    return this.problems;
  }

  plan(input: LbRoundInput): readonly WriteStep[] {
    if (input.lb === undefined) return [];
    const lb = this.enabled ? input.lb : this.nothingOf(input.lb);
    const from = this.current();
    const same = lb === this.lastInput;
    let desired = this.lastDesired;
    // Service ports whose desired state changed since the last plan; undefined: any may have.
    let changed: ReadonlySet<string> | undefined;
    if (!same || desired === undefined) {
      desired = this.planner.desired({ ...lb, algorithm: this.algorithm, maglevTableSize: this.tableSize });
      changed = this.planner.changed();
      this.lastDesired = desired;
      this.lastInput = lb;
    }
    this.problems = desired.conflicts;
    // The maps hold what the same desired state asked for last time: nothing to do.
    if (same && from === this.made) {
      this.view.ask(from);
      return [];
    }
    const delta = this.made !== undefined && from === this.made ? this.steady(desired, changed, this.made) : this.rebuild(desired, from);
    this.view.ask(this.made as MadeState);
    return this.steps(delta);
  }

  settle(complete: boolean): void {
    this.rounds++;
    this.prefetched = undefined;
    this.view.settle(complete);
  }

  invalidate(): void {
    this.view.invalidate();
  }

  entries(): Readonly<Record<string, number>> {
    const held = this.view.known();
    return { [MAP.services]: held?.frontends.size ?? 0, [MAP.backends]: held?.backends.size ?? 0, [MAP.tables]: held?.tables.size ?? 0 };
  }

  /**
   * Reads the maps ahead of the read-back the next plan needs (at agent
   * start: a new owner knows nothing), in slices of about `sliceMs` of work
   * with the event loop free in between, so that reading 10,000 tables
   * does not stall it; given the round's input, compiles its Services the
   * same way (LbPlanner.prime). The next plan uses what it read unless a
   * round ran meanwhile; without a read-back to come it does nothing.
   */
  async prefetch(input: LbRoundInput = {}, sliceMs = 20): Promise<void> {
    if (this.view.known() !== undefined) return;
    const rounds = this.rounds;
    let sliceStart = performance.now();
    const pause = async (): Promise<void> => {
      if (performance.now() - sliceStart < sliceMs) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    };
    const frontends = new Map<string, readonly [LbSvcKey, LbSvcEntry]>();
    for (const [k, v] of this.maps.services.entries()) {
      frontends.set(frontendId(k), [k, v]);
      await pause();
    }
    const backends = new Map<number, LbBackend>();
    for (const [id, b] of this.maps.backends.entries()) {
      backends.set(id, b);
      await pause();
    }
    const tables = new Map<string, readonly [LbTableKey, Uint32Array]>();
    const contents = new Map<number, Uint32Array>();
    const innerOf = new Map<string, number>();
    for (const k of this.maps.tables.keys()) {
      const t = this.readTable(k, this.tableContents);
      if (t !== undefined) {
        contents.set(t.innerId, t.ids);
        innerOf.set(tableId(k), t.innerId);
        tables.set(tableId(k), [k, t.ids]);
      }
      await pause();
    }
    if (rounds !== this.rounds || this.view.known() !== undefined) return;
    this.tableContents = contents;
    this.tableInner = innerOf;
    this.prefetched = { frontends, backends, tables };
    if (input.lb !== undefined) {
      const lb = this.enabled ? input.lb : this.nothingOf(input.lb);
      await this.planner.prime({ ...lb, algorithm: this.algorithm, maglevTableSize: this.tableSize }, pause);
    }
  }

  private read(): LbState {
    const ahead = this.prefetched;
    this.prefetched = undefined;
    if (ahead !== undefined) return ahead;
    const frontends = new Map<string, readonly [LbSvcKey, LbSvcEntry]>();
    for (const [k, v] of this.maps.services.entries()) frontends.set(frontendId(k), [k, v]);
    const backends = new Map<number, LbBackend>();
    for (const [id, b] of this.maps.backends.entries()) backends.set(id, b);
    const tables = new Map<string, readonly [LbTableKey, Uint32Array]>();
    const contents = new Map<number, Uint32Array>();
    const innerOf = new Map<string, number>();
    for (const k of this.maps.tables.keys()) {
      const t = this.readTable(k, this.tableContents);
      if (t === undefined) continue;
      contents.set(t.innerId, t.ids);
      innerOf.set(tableId(k), t.innerId);
      tables.set(tableId(k), [k, t.ids]);
    }
    this.tableContents = contents;
    this.tableInner = innerOf;
    return { frontends, backends, tables };
  }

  /** Key's table: its inner array's id and contents (from `known` when that id was read or written before). */
  private readTable(k: LbTableKey, known: ReadonlyMap<number, Uint32Array>): { readonly innerId: number; readonly ids: Uint32Array } | undefined {
    const inner = this.maps.tables.raw.lookup(lbTableKeyCodec.encode(k));
    if (inner === undefined) return undefined;
    const innerId = u32Codec.decode(inner);
    const ids = known.get(innerId) ?? this.maps.tables.read(k);
    return ids === undefined ? undefined : { innerId, ids };
  }

  /** What a disabled owner plans from: `lb` without its Services and slices (the same object while `lb`'s node part is unchanged). */
  private nothingOf(lb: NonNullable<LbRoundInput['lb']>): NonNullable<LbRoundInput['lb']> {
    const last = this.disabledInput;
    if (last !== undefined && (last.from === lb || (last.from.node === lb.node && last.from.nodeAddresses === lb.nodeAddresses))) return last.input;
    const input = { ...lb, services: [], slices: [] };
    this.disabledInput = { from: lb, input };
    return input;
  }

  /**
   * While the maps hold what the last plan made: only the Service ports in
   * `changed` (all when undefined) are looked at. One whose desired state is
   * the same object keeps its entries; a changed one takes its ids from its
   * own last entries; their old and new entries are diffed against `made`,
   * which is updated in place to what this round asks for.
   */
  private steady(desired: LbDesired, changed: ReadonlySet<string> | undefined, made: MadeState): LbDelta {
    const keys = changed ?? new Set([...desired.services.keys(), ...this.bundles.keys()]);
    const olds: Bundle[] = [];
    const news: Bundle[] = [];
    for (const key of keys) {
      const svc = desired.services.get(key);
      const last = this.bundles.get(key);
      if (last !== undefined && last.desired === svc) continue;
      if (last !== undefined) olds.push(last);
      if (svc === undefined) {
        this.bundles.delete(key);
        const id = this.assigned.get(key);
        this.assigned.delete(key);
        if (id !== undefined) this.assignedIds.delete(id);
        continue;
      }
      let serviceId = this.assigned.get(key);
      if (serviceId === undefined) {
        serviceId = this.serviceIds.take(this.assignedIds);
        this.assigned.set(key, serviceId);
        this.assignedIds.add(serviceId);
      }
      const own = new Map<string, number>();
      if (last !== undefined && last.serviceId === serviceId) for (const [id, b] of last.backends) own.set(backendIdentity(serviceId, b.addr, b.port), id);
      const bundle = this.bundle(svc, serviceId, own, made);
      this.bundles.set(key, bundle);
      news.push(bundle);
    }
    return this.applyBundles(made, olds, news);
  }

  /** Replaces the entries of `olds` by those of `news` in `made`; returns the writes that takes. */
  private applyBundles(made: MadeState, olds: readonly Bundle[], news: readonly Bundle[]): LbDelta {
    const fronts = new Map<string, readonly [LbSvcKey, LbSvcEntry] | undefined>();
    const backs = new Map<number, LbBackend | undefined>();
    const tabs = new Map<string, readonly [LbTableKey, Uint32Array] | undefined>();
    for (const b of olds) {
      for (const [id] of b.frontends) fronts.set(id, undefined);
      for (const [id] of b.backends) backs.set(id, undefined);
      for (const [id] of b.tables) tabs.set(id, undefined);
    }
    for (const b of news) {
      for (const [id, f] of b.frontends) fronts.set(id, f);
      for (const [id, be] of b.backends) backs.set(id, be);
      for (const [id, t] of b.tables) tabs.set(id, t);
    }
    const delta = emptyDelta();
    for (const [id, f] of fronts) {
      const prev = made.frontends.get(id);
      if (f === undefined) {
        if (prev === undefined) continue;
        delta.frontendDeletes.push(prev);
        made.frontends.delete(id);
      } else {
        if (!sameEntry(prev?.[1], f[1])) delta.frontendUpserts.push(f);
        made.frontends.set(id, f);
      }
    }
    for (const [id, b] of backs) {
      const prev = made.backends.get(id);
      if (b === undefined) {
        if (prev === undefined) continue;
        delta.backendDeletes.push([id, prev]);
        made.backends.delete(id);
      } else {
        if (!sameBackend(prev, b)) delta.backendUpserts.push([id, b]);
        made.backends.set(id, b);
      }
    }
    delta.backendUpserts.sort(([a], [b]) => a - b);
    for (const [id, t] of tabs) {
      const prev = made.tables.get(id);
      if (t === undefined) {
        if (prev === undefined) continue;
        delta.tableDeletes.push(prev[0]);
        made.tables.delete(id);
      } else {
        if (!sameIds(prev?.[1], t[1])) delta.tableReplaces.push(t);
        made.tables.set(id, t);
      }
    }
    for (const b of olds) {
      if (!this.assignedIds.has(b.serviceId) && b.frontends.some(([, [, e]]) => e.affinityTimeoutS > 0)) delta.affinityGone.add(b.serviceId);
    }
    return delta;
  }

  /** After a read-back: every Service port's entries, ids from the maps where they have them; the whole diff. */
  private rebuild(desired: LbDesired, from: LbState): LbDelta {
    const assigned = new Map<string, number>();
    const usedServiceIds = new Set<number>();
    for (const [, e] of from.frontends.values()) usedServiceIds.add(e.serviceId);
    for (const b of from.backends.values()) usedServiceIds.add(b.serviceId);
    for (const [k] of from.tables.values()) usedServiceIds.add(k.serviceId);
    for (const id of usedServiceIds) this.serviceIds.see(id);
    const byIdentity = new Map<string, number>();
    for (const [id, b] of from.backends) {
      this.backendIds.see(id);
      byIdentity.set(backendIdentity(b.serviceId, b.addr, b.port), id);
    }
    // Service ids: the one handed out before, else the one its frontends carry in the maps, else a new one.
    const pending: string[] = [];
    const taken = new Set<number>();
    for (const [key, svc] of desired.services) {
      const candidates = [this.assigned.get(key), ...svc.frontends.map((f) => from.frontends.get(frontendId(frontendKey(f)))?.[1].serviceId)];
      const id = candidates.find((c): c is number => c !== undefined && !taken.has(c));
      if (id === undefined) {
        pending.push(key);
        continue;
      }
      assigned.set(key, id);
      taken.add(id);
    }
    const inUse = new Set([...usedServiceIds, ...taken]);
    for (const key of pending) {
      const id = this.serviceIds.take(inUse);
      assigned.set(key, id);
      inUse.add(id);
    }
    const bundles = new Map<string, Bundle>();
    for (const [key, svc] of desired.services) bundles.set(key, this.bundle(svc, assigned.get(key) as number, byIdentity, from));
    this.assigned = assigned;
    this.assignedIds = new Set(assigned.values());
    this.bundles = bundles;

    const made: MadeState = { frontends: new Map(), backends: new Map(), tables: new Map() };
    for (const b of bundles.values()) {
      for (const [id, f] of b.frontends) made.frontends.set(id, f);
      for (const [id, be] of b.backends) made.backends.set(id, be);
      for (const [id, t] of b.tables) made.tables.set(id, t);
    }
    this.made = made;
    return fullDelta(from, made);
  }

  /** One Service port's entries; a backend's id from `ids` (by backendIdentity), else a new one not in `from`. */
  private bundle(svc: DesiredService, serviceId: number, ids: ReadonlyMap<string, number>, from: LbState): Bundle {
    const idOf = new Map<string, number>();
    const backends: (readonly [number, LbBackend])[] = [];
    for (const b of svc.backends.values()) {
      const addr = parseIpv4(b.ip);
      let id = ids.get(backendIdentity(serviceId, addr, b.port));
      if (id === undefined) id = this.backendIds.take(from.backends);
      idOf.set(b.key, id);
      backends.push([id, { addr, port: b.port, flags: b.selectable ? SluiceLbBackendFlags.NONE : SluiceLbBackendFlags.NOT_SELECTABLE, serviceId }]);
    }
    const tables: (readonly [string, readonly [LbTableKey, Uint32Array]])[] = [];
    for (const set of ['cluster', 'local'] as const) {
      const t = svc.tables[set];
      if (t === undefined || t.backends.length === 0) continue; // no table: no usable backend (the frontend's flags decide)
      const elementIds = t.backends.map((k) => idOf.get(k) ?? 0);
      const tk: LbTableKey = { serviceId, backendSet: setOf(set) };
      const elements = t.slots !== undefined ? this.maglevElements(t.slots, elementIds, from.tables.get(tableId(tk))?.[1]) : Uint32Array.from(elementIds);
      tables.push([tableId(tk), [tk, elements]]);
    }
    const algorithm = svc.algorithm === 'maglev' ? SluiceLbAlgorithm.MAGLEV : SluiceLbAlgorithm.RANDOM;
    const frontends = svc.frontends.map((f): readonly [string, readonly [LbSvcKey, LbSvcEntry]] => {
      const k = frontendKey(f);
      return [frontendId(k), [k, {
        serviceId, affinityTimeoutS: f.affinitySeconds, backendSet: setOf(f.set), algorithm,
        flags: (f.emptyDrop ? SluiceLbSvcFlags.EMPTY_DROP : 0) | (f.masquerade ? SluiceLbSvcFlags.MASQUERADE : 0),
      }]];
    });
    return { desired: svc, serviceId, frontends, backends, tables };
  }

  /** A table just written (or deleted: undefined): its contents under its new inner array's id, so a read-back need not read it. */
  private remember(key: LbTableKey, ids: Uint32Array | undefined): void {
    const id = tableId(key);
    const old = this.tableInner.get(id);
    if (old !== undefined) this.tableContents.delete(old);
    this.tableInner.delete(id);
    if (ids === undefined) return;
    const inner = this.maps.tables.raw.lookup(lbTableKeyCodec.encode(key));
    if (inner === undefined) return;
    const innerId = u32Codec.decode(inner);
    this.tableContents.set(innerId, ids);
    this.tableInner.set(id, innerId);
  }

  /** slots mapped to backend ids; `held` (the table in the maps) itself when it already says that, so the diff finds it unchanged at once. */
  private maglevElements(slots: Uint32Array, ids: readonly number[], held: Uint32Array | undefined): Uint32Array {
    const key = ids.join(',');
    const hit = this.elements.get(slots);
    if (hit?.ids === key) return hit.elements;
    let elements = held;
    if (elements === undefined || elements.length !== slots.length || !slots.every((b, s) => elements?.[s] === (ids[b] ?? 0))) {
      elements = new Uint32Array(slots.length);
      for (let s = 0; s < slots.length; s++) elements[s] = ids[slots[s] as number] ?? 0;
    }
    this.elements.set(slots, { ids: key, elements });
    return elements;
  }

  private steps(delta: LbDelta): WriteStep[] {
    // Services with a failed write this round: their later writes wait for the next round.
    const failed = new Set<number>();
    const steps: WriteStep[] = [];
    const step = (phase: Phase, kind: string, size: number, run: (fail: (f: StepFailure) => void) => number): void => {
      if (size > 0) steps.push({ phase, kind, size, run: (_fc, fail) => run(fail) });
    };

    const { backendUpserts, tableReplaces, frontendUpserts, frontendDeletes, tableDeletes, backendDeletes } = delta;
    step(Phase.PUBLISH, 'lb-backend-upsert', backendUpserts.length, (fail) => {
      const serviceOf = new Map(backendUpserts.map(([id, b]) => [id, b.serviceId]));
      return upsertAll(this.maps.backends, backendUpserts, (id, e) => {
        const serviceId = serviceOf.get(id);
        if (serviceId !== undefined) failed.add(serviceId);
        fail(stepFailure('lb-backend-upsert', MAP.backends, `backend ${id}`, e));
      });
    });

    step(Phase.PUBLISH, 'lb-table-replace', tableReplaces.length, (fail) => {
      const ready = tableReplaces.filter(([k]) => !failed.has(k.serviceId));
      let n = 0;
      // Every update of a map of maps waits for an RCU grace period: tables go in batches, one at a time only
      // to find the one that failed.
      for (let at = 0; at < ready.length; at += TABLE_BATCH) {
        const chunk = ready.slice(at, at + TABLE_BATCH);
        try {
          this.maps.tables.replaceMany(chunk);
          n += chunk.length;
          for (const [k, ids] of chunk) this.remember(k, ids);
          continue;
        } catch {
          // Which table failed is unknown: each again on its own.
        }
        for (const [k, ids] of chunk) {
          try {
            this.maps.tables.replace(k, ids);
            n++;
            this.remember(k, ids);
          } catch (e) {
            failed.add(k.serviceId);
            fail(stepFailure('lb-table-replace', MAP.tables, `service ${k.serviceId} set ${k.backendSet}`, e));
          }
        }
      }
      return n;
    });

    step(Phase.PUBLISH, 'lb-frontend-upsert', frontendUpserts.length, (fail) => {
      const ready = frontendUpserts.filter(([, e]) => !failed.has(e.serviceId));
      const entryOf = new Map(ready.map(([k, e]) => [k, e]));
      return upsertAll(this.maps.services, ready, (k, e) => {
        const serviceId = entryOf.get(k)?.serviceId;
        if (serviceId !== undefined) failed.add(serviceId);
        fail(stepFailure('lb-frontend-upsert', MAP.services, formatFrontendKey(k), e));
      });
    });

    step(Phase.RETIRE, 'lb-frontend-delete', frontendDeletes.length, (fail) => {
      const serviceOf = new Map(frontendDeletes.map(([k, e]) => [k, e.serviceId]));
      return deleteAll(this.maps.services, frontendDeletes.filter(([, e]) => !failed.has(e.serviceId)).map(([k]) => k), (k, e) => {
        const serviceId = serviceOf.get(k);
        if (serviceId !== undefined) failed.add(serviceId);
        fail(stepFailure('lb-frontend-delete', MAP.services, formatFrontendKey(k), e));
      });
    });

    step(Phase.RETIRE, 'lb-table-delete', tableDeletes.length, (fail) => {
      // In batches, as replaced: a Service's table delete waits for an RCU grace period.
      const ready = tableDeletes.filter((k) => !failed.has(k.serviceId));
      const refused = this.maps.tables.deleteMany(ready);
      const kept = new Set<LbTableKey>();
      for (const { key, error } of refused) {
        kept.add(key);
        failed.add(key.serviceId);
        fail(stepFailure('lb-table-delete', MAP.tables, `service ${key.serviceId} set ${key.backendSet}`, error));
      }
      for (const k of ready) if (!kept.has(k)) this.remember(k, undefined);
      return ready.length - refused.length;
    });

    step(Phase.RETIRE, 'lb-backend-delete', backendDeletes.length, (fail) => {
      const serviceOf = new Map(backendDeletes.map(([id, b]) => [id, b.serviceId]));
      return deleteAll(this.maps.backends, backendDeletes.filter(([, b]) => !failed.has(b.serviceId)).map(([id]) => id), (id, e) => {
        const serviceId = serviceOf.get(id);
        if (serviceId !== undefined) failed.add(serviceId);
        fail(stepFailure('lb-backend-delete', MAP.backends, `backend ${id}`, e));
      });
    });

    // After the backends are gone from the maps (no new socket can get them): the node's connected UDP sockets
    // that still send to one of them.
    const sockets = this.hostSockets;
    step(Phase.RETIRE, 'lb-host-udp-close', sockets !== undefined ? backendDeletes.length : 0, (fail) => {
      const gone = goneUdpBackends(delta, this.made?.frontends.values() ?? [], failed);
      if (sockets === undefined || gone.length === 0) return 0;
      try {
        return sockets.terminate(gone);
      } catch (e) {
        fail(stepFailure('lb-host-udp-close', MAP.sockets, gone.map((g) => `${formatIpv4(g.addr)}:${g.port}`).join(','), e));
        return 0;
      }
    });

    // Services with ClientIP affinity gone from every map: their clients' affinities go too. (Only those: finding
    // them scans the whole LRU map; another service's ids never had entries, and a stale entry only ever names a
    // backend the datapath checks against the service.)
    const gone = delta.affinityGone;
    step(Phase.RETIRE, 'lb-affinity-flush', gone.size, (fail) => {
      const flush = new Set([...gone].filter((id) => !failed.has(id)));
      if (flush.size === 0) return 0;
      const keys: LbAffinityKey[] = [];
      try {
        for (const [k] of this.maps.affinity.entries()) if (flush.has(k.serviceId)) keys.push(k);
      } catch (e) {
        fail(stepFailure('lb-affinity-flush', MAP.affinity, `services ${[...flush].join(',')}`, e));
        return 0;
      }
      return deleteAll(this.maps.affinity, keys, (k, e) => fail(stepFailure('lb-affinity-flush', MAP.affinity, `service ${k.serviceId} client ${formatIpv4(k.clientAddr)}`, e)));
    });
    return steps;
  }
}

/**
 * The UDP backends a round deletes (of services without a failed write), each with its service's frontends: those
 * it keeps (`frontends`, the state the round makes) or loses (the delta's deletes).
 */
function goneUdpBackends(delta: LbDelta, frontends: Iterable<readonly [LbSvcKey, LbSvcEntry]>, failed: ReadonlySet<number>): GoneUdpBackend[] {
  const frontendsOf = new Map<number, Set<string>>();
  const add = ([k, e]: readonly [LbSvcKey, LbSvcEntry]): void => {
    if (k.protocol !== IP_PROTOCOL.UDP) return;
    const set = frontendsOf.get(e.serviceId) ?? new Set<string>();
    set.add(frontendRef(k.addr, k.port));
    frontendsOf.set(e.serviceId, set);
  };
  for (const f of delta.frontendDeletes) add(f);
  for (const f of frontends) add(f);
  return delta.backendDeletes.flatMap(([, b]) => {
    const of = frontendsOf.get(b.serviceId);
    return of === undefined || failed.has(b.serviceId) ? [] : [{ addr: b.addr, port: b.port, frontends: of }];
  });
}

function emptyDelta(): LbDelta & { readonly affinityGone: Set<number> } {
  return { backendUpserts: [], tableReplaces: [], frontendUpserts: [], frontendDeletes: [], tableDeletes: [], backendDeletes: [], affinityGone: new Set() };
}

/** Everything that differs between two whole states. */
function fullDelta(from: LbState, to: LbState): LbDelta {
  const wantedIds = new Set<number>();
  for (const [, e] of to.frontends.values()) wantedIds.add(e.serviceId);
  for (const b of to.backends.values()) wantedIds.add(b.serviceId);
  const affinityGone = new Set<number>();
  for (const [, e] of from.frontends.values()) if (e.affinityTimeoutS > 0 && !wantedIds.has(e.serviceId)) affinityGone.add(e.serviceId);
  return {
    backendUpserts: [...to.backends].filter(([id, b]) => !sameBackend(from.backends.get(id), b)).sort(([a], [b]) => a - b),
    tableReplaces: [...to.tables].filter(([id, [, ids]]) => !sameIds(from.tables.get(id)?.[1], ids)).map(([, t]) => t),
    frontendUpserts: [...to.frontends].filter(([id, [, e]]) => !sameEntry(from.frontends.get(id)?.[1], e)).map(([, f]) => f),
    frontendDeletes: [...from.frontends].filter(([id]) => !to.frontends.has(id)).map(([, f]) => f),
    tableDeletes: [...from.tables].filter(([id]) => !to.tables.has(id)).map(([, [k]]) => k),
    backendDeletes: [...from.backends].filter(([id]) => !to.backends.has(id)),
    affinityGone,
  };
}
