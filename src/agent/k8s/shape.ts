/**
 * Keeping only the fields Sluice reads of an API object. A Shape names the
 * fields to keep at each level; everything else (managedFields, annotations
 * such as kubectl's last-applied-configuration, pod conditions, container
 * images and env) is dropped before the object reaches a cache, which is
 * what bounds the agent's memory per cluster object.
 *
 * Values of kept fields are copied verbatim, never coerced: a malformed value
 * must still reach the validators so that they can name it.
 */
import type { ValuePool } from './value-pool.js';

export type Shape =
  /** Keep the value as it is. */
  | 'keep'
  /** An object: keep only these fields, each with its own shape. */
  | { readonly fields: Readonly<Record<string, Shape>> }
  /** A list: apply the shape to every element. */
  | { readonly items: Shape }
  /** Apply the shape, then take the pool's instance of the result (value-pool.ts): for parts many objects repeat. */
  | { readonly shared: Shape };

export function pick(value: unknown, shape: Shape, pool?: ValuePool): unknown {
  if (shape === 'keep') return value;
  if ('shared' in shape) {
    const v = pick(value, shape.shared, pool);
    return pool === undefined ? v : pool.share(v);
  }
  if ('items' in shape) return Array.isArray(value) ? value.map((v: unknown) => pick(v, shape.items, pool)) : value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const src = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(shape.fields)) {
    const v = src[key];
    if (v !== undefined) out[key] = pick(v, sub, pool);
  }
  return out;
}

/** Structural equality of JSON-like values (objects, arrays, primitives). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v: unknown, i) => jsonEqual(v, b[i]));
  }
  const ak = Object.keys(a);
  const bo = b as Record<string, unknown>;
  if (ak.length !== Object.keys(bo).length) return false;
  const ao = a as Record<string, unknown>;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && jsonEqual(ao[k], bo[k]));
}
