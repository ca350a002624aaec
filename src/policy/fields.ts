/**
 * Reading untrusted object trees (parsed YAML/JSON, or client-node objects)
 * field by field: every read names its path, unknown keys are reported rather
 * than skipped, and `null`/`undefined` both mean "absent" as they do for the
 * Go API server (client-node class instances carry unset fields as own
 * properties holding undefined).
 */
import type { IssueList } from './errors.js';

export type Obj = Readonly<Record<string, unknown>>;

export function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isAbsent(v: unknown): v is null | undefined {
  return v === null || v === undefined;
}

/** "spec.ingress" + 0 → "spec.ingress[0]"; "spec" + "podSelector" → "spec.podSelector". */
export function at(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/**
 * Reports every present key of `obj` that is not in `known`. Keys whose value
 * is absent are ignored: they carry nothing, and client-node objects have them.
 */
export function checkKnownFields(obj: Obj, known: readonly string[], path: string, issues: IssueList): void {
  for (const [key, value] of Object.entries(obj)) {
    if (isAbsent(value) || known.includes(key)) continue;
    issues.error('unknown-field', at(path, key), `unknown field "${key}" (known: ${known.join(', ')})`);
  }
}

/** An object-valued field, or undefined when absent; reports a wrong type. */
export function objectField(obj: Obj, key: string, path: string, issues: IssueList): Obj | undefined {
  const v = obj[key];
  if (isAbsent(v)) return undefined;
  if (!isObject(v)) {
    issues.error('invalid', at(path, key), `must be an object, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** An array-valued field, or undefined when absent; reports a wrong type. */
export function arrayField(obj: Obj, key: string, path: string, issues: IssueList): readonly unknown[] | undefined {
  const v = obj[key];
  if (isAbsent(v)) return undefined;
  if (!Array.isArray(v)) {
    issues.error('invalid', at(path, key), `must be a list, got ${describe(v)}`);
    return undefined;
  }
  return v as readonly unknown[];
}

/** A string-valued field, or undefined when absent; reports a wrong type. */
export function stringField(obj: Obj, key: string, path: string, issues: IssueList): string | undefined {
  const v = obj[key];
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'string') {
    issues.error('invalid', at(path, key), `must be a string, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

/** A map of string to string (labels, matchLabels); reports wrong types per entry. */
export function stringMapField(
  obj: Obj,
  key: string,
  path: string,
  issues: IssueList,
): Readonly<Record<string, string>> | undefined {
  const m = objectField(obj, key, path, issues);
  if (m === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined) continue;
    if (typeof v !== 'string') {
      issues.error('invalid', `${at(path, key)}["${k}"]`, `must be a string, got ${describe(v)}`);
      continue;
    }
    out[k] = v;
  }
  return out;
}

/** A short description of a value's type for messages ("a number (80)"). */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return `a string ("${v}")`;
    case 'number':
    case 'boolean':
      return `a ${typeof v} (${String(v)})`;
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}
