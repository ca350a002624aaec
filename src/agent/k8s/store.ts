/**
 * An informer's cache: slim objects by key ("namespace/name" or "name").
 * Readers get the read-only view; only the informer writes. A write reports
 * whether anything Sluice stores actually changed, so that a pod status
 * update touching only fields we dropped does not wake the sync loop.
 */
import { objectKey, type SlimObject } from './resources.js';
import { jsonEqual } from './shape.js';

export interface ReadonlyStore<T extends SlimObject> {
  get(key: string): T | undefined;
  values(): IterableIterator<T>;
  readonly size: number;
}

export type StoreChange<T> =
  | { readonly type: 'added'; readonly key: string; readonly object: T }
  | { readonly type: 'updated'; readonly key: string; readonly object: T; readonly previous: T }
  | { readonly type: 'deleted'; readonly key: string; readonly previous: T };

export class ObjectStore<T extends SlimObject> implements ReadonlyStore<T> {
  private readonly objects = new Map<string, T>();

  get size(): number {
    return this.objects.size;
  }

  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  values(): IterableIterator<T> {
    return this.objects.values();
  }

  /** Inserts or replaces; undefined when the stored form did not change. */
  upsert(object: T): StoreChange<T> | undefined {
    const key = objectKey(object);
    const previous = this.objects.get(key);
    if (previous !== undefined && jsonEqual(previous, object)) return undefined;
    this.objects.set(key, object);
    return previous === undefined ? { type: 'added', key, object } : { type: 'updated', key, object, previous };
  }

  remove(key: string): StoreChange<T> | undefined {
    const previous = this.objects.get(key);
    if (previous === undefined) return undefined;
    this.objects.delete(key);
    return { type: 'deleted', key, previous };
  }

  /**
   * Replaces the whole content with a fresh list (after a relist) and
   * returns what changed: objects gone from the list count as deleted, the
   * case a watch that missed a DELETED event (410, outage) must recover.
   */
  replace(objects: readonly T[]): StoreChange<T>[] {
    const changes: StoreChange<T>[] = [];
    const seen = new Set<string>();
    for (const o of objects) {
      seen.add(objectKey(o));
      const c = this.upsert(o);
      if (c !== undefined) changes.push(c);
    }
    for (const key of [...this.objects.keys()]) {
      if (seen.has(key)) continue;
      const c = this.remove(key);
      if (c !== undefined) changes.push(c);
    }
    return changes;
  }
}
