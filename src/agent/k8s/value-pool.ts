/**
 * One instance per distinct value while it is in use: thousands of cached
 * objects repeat the same small parts (the labels and container ports of a
 * ReplicaSet's pods, an endpoint's conditions), and a pool hands out the
 * instance it was given first instead of keeping a copy per object. Values
 * are keyed by their JSON text, so they must be JSON data (no undefined
 * members, Maps or bigints) and are never mutated once pooled. The pool
 * holds them weakly: a value no cached object uses any more leaves it.
 */
export class ValuePool {
  private readonly byText = new Map<string, WeakRef<object>>();
  private readonly registry = new FinalizationRegistry<string>((text) => {
    if (this.byText.get(text)?.deref() === undefined) this.byText.delete(text);
  });

  /** Distinct values in use (or collected and not swept yet). */
  get size(): number {
    return this.byText.size;
  }

  /** `value`, or an equal one pooled before that is still in use. */
  share<T>(value: T): T {
    if (typeof value !== 'object' || value === null) return value;
    const text = JSON.stringify(value);
    const hit = this.byText.get(text)?.deref();
    if (hit !== undefined) return hit as T;
    this.byText.set(text, new WeakRef(value));
    this.registry.register(value, text);
    return value;
  }
}
