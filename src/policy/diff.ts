/**
 * What changes between two datapath states, per map: added, changed (same
 * key, new value) and removed entries. Maps shared by reference between the
 * states (the compiler reuses what a change did not affect) are skipped
 * without a look, so diffing after a small change costs in proportion to it.
 */
import type { EndpointEntry } from '../datapath/generated/abi.js';
import { sameEndpointEntry, type DatapathState } from './datapath-state.js';

export interface MapChanges<K, V> {
  readonly added: readonly (readonly [K, V])[];
  /** [key, new value, old value]. */
  readonly changed: readonly (readonly [K, V, V])[];
  readonly removed: readonly (readonly [K, V])[];
}

/** A policy entry: endpoint-direction (endpointId · 2 + direction) and packed key (datapath-state.ts). */
export interface PolicySlot {
  readonly epdir: number;
  readonly packed: number;
}

export interface DatapathDiff {
  readonly ipcache: MapChanges<number, number>;
  readonly endpoints: MapChanges<number, EndpointEntry>;
  readonly policy: MapChanges<PolicySlot, number>;
}

export function diffDatapath(from: DatapathState, to: DatapathState): DatapathDiff {
  const policy = { added: [] as [PolicySlot, number][], changed: [] as [PolicySlot, number, number][], removed: [] as [PolicySlot, number][] };
  for (const [epdir, next] of to.policy) {
    const prev = from.policy.get(epdir);
    if (prev === next) continue;
    const part = diffMaps(prev ?? EMPTY, next, (a, b) => a === b);
    for (const [packed, v] of part.added) policy.added.push([{ epdir, packed }, v]);
    for (const [packed, v, old] of part.changed) policy.changed.push([{ epdir, packed }, v, old]);
    for (const [packed, old] of part.removed) policy.removed.push([{ epdir, packed }, old]);
  }
  for (const [epdir, prev] of from.policy) {
    if (to.policy.has(epdir)) continue;
    for (const [packed, old] of prev) policy.removed.push([{ epdir, packed }, old]);
  }
  return {
    ipcache: from.ipcache === to.ipcache ? NO_CHANGES : diffMaps(from.ipcache, to.ipcache, (a, b) => a === b),
    endpoints: diffMaps(from.endpoints, to.endpoints, sameEndpointEntry),
    policy,
  };
}

/** Entries written or removed by applying the diff. */
export function diffSize(d: DatapathDiff): number {
  const n = (c: MapChanges<unknown, unknown>): number => c.added.length + c.changed.length + c.removed.length;
  return n(d.ipcache) + n(d.endpoints) + n(d.policy);
}

const EMPTY: ReadonlyMap<number, number> = new Map();
const NO_CHANGES: MapChanges<never, never> = { added: [], changed: [], removed: [] };

function diffMaps<K, V>(from: ReadonlyMap<K, V>, to: ReadonlyMap<K, V>, equal: (a: V, b: V) => boolean): MapChanges<K, V> {
  const added: [K, V][] = [];
  const changed: [K, V, V][] = [];
  const removed: [K, V][] = [];
  if (from === to) return { added, changed, removed };
  for (const [k, v] of to) {
    const old = from.get(k);
    if (old === undefined) added.push([k, v]);
    else if (!equal(old, v)) changed.push([k, v, old]);
  }
  for (const [k, old] of from) if (!to.has(k)) removed.push([k, old]);
  return { added, changed, removed };
}
