/**
 * Entry writes as every owner does them: batched where the map has a batch
 * update, one by one otherwise, and never thrown — a refused write goes to
 * the caller's onFail with its key and error, and the rest still goes in.
 *
 * A batch that fails part-way reports how many entries it wrote
 * (BpfError.applied): the failing entry is recorded and the rest retried, so
 * a full map costs one failure per entry that did not fit, not an abandoned
 * round. Deleting a key that is already gone is not a failure.
 */
import { constants } from 'node:os';

/** What an owner needs of a map; TypedMap and IpcacheMap have it, tests fake it. */
export interface MapWriter<K, V> {
  update(key: K, value: V): void;
  /** true when the key was there. */
  delete(key: K): boolean;
  /** Returns how many were written; on failure throws an error whose `applied` says how many were. */
  updateBatch?(entries: ReadonlyArray<readonly [K, V]>): number;
}

/** A map an owner writes and reads back. */
export interface MapStore<K, V> extends MapWriter<K, V> {
  entries(): Iterable<readonly [K, V]>;
}

/** Writes entries, batched when possible; returns how many went in. */
export function upsertAll<K, V>(map: MapWriter<K, V>, entries: readonly (readonly [K, V])[], onFail: (key: K, e: unknown) => void): number {
  let done = 0;
  let at = 0;
  while (at < entries.length) {
    const rest = entries.slice(at);
    if (map.updateBatch === undefined || rest.length < 2) return done + upsertEach(map, rest, onFail);
    try {
      return done + map.updateBatch(rest);
    } catch (e) {
      const applied = appliedOf(e);
      // No count: one write per entry for the rest.
      if (applied === undefined) return done + upsertEach(map, rest, onFail);
      done += applied;
      const failed = rest[applied];
      if (failed !== undefined) onFail(failed[0], e);
      at += applied + 1;
    }
  }
  return done;
}

function upsertEach<K, V>(map: MapWriter<K, V>, entries: readonly (readonly [K, V])[], onFail: (key: K, e: unknown) => void): number {
  let done = 0;
  for (const [k, v] of entries) {
    try {
      map.update(k, v);
      done++;
    } catch (e) {
      onFail(k, e);
    }
  }
  return done;
}

/** Deletes keys one by one (a missing key counts as deleted: someone was first). */
export function deleteAll<K>(map: MapWriter<K, unknown>, keys: readonly K[], onFail: (key: K, e: unknown) => void): number {
  let done = 0;
  for (const k of keys) {
    try {
      map.delete(k);
      done++;
    } catch (e) {
      if (errnoOf(e) === constants.errno.ENOENT) done++;
      else onFail(k, e);
    }
  }
  return done;
}

export function errnoOf(e: unknown): number | undefined {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === 'number' ? n : undefined;
}

function appliedOf(e: unknown): number | undefined {
  const n = (e as { applied?: unknown } | null)?.applied;
  return typeof n === 'number' ? n : undefined;
}
