/**
 * In-memory policy maps for applier tests: the three writers over a
 * DatapathState that can be decided with datapath-lookup.ts after every
 * single write, with optional capacities (a full map throws E2BIG, as the
 * kernel does) and injected failures.
 */
import { constants } from 'node:os';
import type { EndpointEntry, IpcacheEntry, IpcacheKey, PolicyEntry, PolicyKey } from '../../src/datapath/generated/abi.js';
import { policyEntryOf, policyKeyOf, slotOfPolicyKey } from '../../src/datapath/maps/policy-key.js';
import { ipcacheEntryOf, ipcacheKeyOf, ipcachePrefixOf, type DatapathState } from '../../src/policy/datapath-state.js';
import type { MapStore } from '../../src/reconcile/map-writes.js';
import type { PolicyMaps } from '../../src/reconcile/policy-group.js';

export type MapName = 'ipcache' | 'endpoints' | 'policy';

export class SimError extends Error {
  constructor(
    message: string,
    readonly errno: number,
    readonly applied?: number,
  ) {
    super(message);
  }
}

export interface SimOptions {
  readonly capacity?: Partial<Record<MapName, number>>;
  /** Called after every write that succeeded. */
  readonly afterWrite?: (map: MapName) => void;
  /** Return true to make this write fail with EIO. */
  readonly failWrite?: (map: MapName, op: 'update' | 'delete') => boolean;
  /** Give the maps a batch update that stops at the first failure and reports `applied`. */
  readonly batch?: boolean;
}

export class SimMaps implements PolicyMaps {
  readonly ipcacheData = new Map<number, number>();
  readonly endpointData = new Map<number, EndpointEntry>();
  readonly policyData = new Map<number, Map<number, number>>();
  readonly ipcache: MapStore<IpcacheKey, IpcacheEntry>;
  readonly endpoints: MapStore<number, EndpointEntry>;
  readonly policy: MapStore<PolicyKey, PolicyEntry>;
  writes = 0;

  constructor(from: DatapathState, private readonly options: SimOptions = {}) {
    for (const [k, v] of from.ipcache) this.ipcacheData.set(k, v);
    for (const [k, v] of from.endpoints) this.endpointData.set(k, v);
    for (const [k, m] of from.policy) this.policyData.set(k, new Map(m));
    this.ipcache = this.writer('ipcache', {
      has: (k) => this.ipcacheData.has(ipcachePrefixOf(k)),
      size: () => this.ipcacheData.size,
      set: (k, v) => this.ipcacheData.set(ipcachePrefixOf(k), v.identity),
      del: (k) => this.ipcacheData.delete(ipcachePrefixOf(k)),
      all: () => [...this.ipcacheData].map(([p, id]) => [ipcacheKeyOf(p), ipcacheEntryOf(id)] as const),
    });
    this.endpoints = this.writer('endpoints', {
      has: (k) => this.endpointData.has(k),
      size: () => this.endpointData.size,
      set: (k, v) => this.endpointData.set(k, v),
      del: (k) => this.endpointData.delete(k),
      all: () => [...this.endpointData],
    });
    const slot = (k: PolicyKey): { epdir: number; packed: number } => {
      const s = slotOfPolicyKey(k);
      if (s === undefined) throw new Error(`applier wrote a key the compiler never makes: ${JSON.stringify(k)}`);
      return s;
    };
    this.policy = this.writer('policy', {
      has: (k) => {
        const s = slot(k);
        return this.policyData.get(s.epdir)?.has(s.packed) ?? false;
      },
      size: () => [...this.policyData.values()].reduce((n, m) => n + m.size, 0),
      set: (k, v) => {
        const s = slot(k);
        let m = this.policyData.get(s.epdir);
        if (m === undefined) this.policyData.set(s.epdir, (m = new Map<number, number>()));
        m.set(s.packed, v.ruleId);
      },
      del: (k) => {
        const s = slot(k);
        const m = this.policyData.get(s.epdir);
        const had = m?.delete(s.packed) ?? false;
        if (m !== undefined && m.size === 0) this.policyData.delete(s.epdir);
        return had;
      },
      all: () => [...this.policyData].flatMap(([epdir, m]) => [...m].map(([packed, rule]) => [policyKeyOf(epdir, packed), policyEntryOf(rule)] as const)),
    });
  }

  get state(): DatapathState {
    return { ipcache: this.ipcacheData, endpoints: this.endpointData, policy: this.policyData };
  }

  private writer<K, V>(
    map: MapName,
    ops: { has(k: K): boolean; size(): number; set(k: K, v: V): void; del(k: K): boolean; all(): (readonly [K, V])[] },
  ): MapStore<K, V> {
    const update = (k: K, v: V): void => {
      if (this.options.failWrite?.(map, 'update') === true) throw new SimError(`${map}: injected failure`, constants.errno.EIO);
      const cap = this.options.capacity?.[map];
      if (cap !== undefined && !ops.has(k) && ops.size() >= cap) throw new SimError(`${map}: full (${cap})`, constants.errno.E2BIG);
      ops.set(k, v);
      this.writes++;
      this.options.afterWrite?.(map);
    };
    const w: MapStore<K, V> = {
      entries: () => ops.all(),
      update,
      delete: (k) => {
        if (this.options.failWrite?.(map, 'delete') === true) throw new SimError(`${map}: injected failure`, constants.errno.EIO);
        const had = ops.del(k);
        if (!had) throw new SimError(`${map}: no such key`, constants.errno.ENOENT);
        this.writes++;
        this.options.afterWrite?.(map);
        return had;
      },
    };
    if (this.options.batch !== true) return w;
    return {
      ...w,
      updateBatch: (entries) => {
        let applied = 0;
        for (const [k, v] of entries) {
          try {
            update(k, v);
          } catch (e) {
            throw new SimError((e as Error).message, (e as SimError).errno, applied);
          }
          applied++;
        }
        return applied;
      },
    };
  }
}
