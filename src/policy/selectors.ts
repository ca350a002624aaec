/**
 * Label selectors (meta/v1 LabelSelector): parsing with field-path errors,
 * a canonical form, and matching.
 *
 * Semantics, as the API defines them:
 * - every requirement must hold (AND); matchLabels `k: v` is `k In (v)`;
 * - In: the key is present with one of the values; NotIn: the key is absent
 *   or its value is none of the values; Exists / DoesNotExist: presence;
 * - the empty selector `{}` matches everything; an absent (null) selector
 *   matches nothing — callers that give "absent" another meaning (a peer's
 *   podSelector, the policy's own podSelector) decide that before matching.
 */
import { IssueList, type Checked } from './errors.js';
import { arrayField, at, checkKnownFields, describe, isAbsent, isObject, stringMapField, type Obj } from './fields.js';
import type { LabelSelector } from './k8s-types.js';
import { checkLabelKey, checkLabelValue } from './names.js';

export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type SelectorOperator = (typeof SELECTOR_OPERATORS)[number];

export interface Requirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Sorted and unique; empty for Exists / DoesNotExist. */
  readonly values: readonly string[];
}

export interface Selector {
  /** Sorted by key, operator, values; duplicates removed. Empty = everything. */
  readonly requirements: readonly Requirement[];
  /**
   * Canonical text in kubectl's syntax ("ns in (x,y),pod=b,!tier"); equal
   * texts select the same sets, so it serves as a cache key. "" = everything.
   */
  readonly text: string;
}

/** The empty selector `{}`. */
export const EVERYTHING: Selector = { requirements: [], text: '' };

/** Builds the canonical selector from requirements (any order, duplicates allowed). */
export function makeSelector(requirements: readonly Requirement[]): Selector {
  const byText = new Map<string, Requirement>();
  for (const r of requirements) {
    const values = [...new Set(r.values)].sort();
    const norm: Requirement = { key: r.key, operator: r.operator, values };
    byText.set(requirementText(norm), norm);
  }
  const sorted = [...byText.entries()].sort(([ta, a], [tb, b]) => compare(a.key, b.key) || compare(ta, tb));
  return { requirements: sorted.map(([, r]) => r), text: sorted.map(([t]) => t).join(',') };
}

/** True when `labels` satisfy every requirement. An absent selector matches nothing. */
export function matchesSelector(selector: Selector | null | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === null || selector === undefined) return false;
  return selector.requirements.every((r) => matchesRequirement(r, labels));
}

export function matchesRequirement(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.operator) {
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'In':
      return has && r.values.includes(labels[r.key] ?? '');
    case 'NotIn':
      return !has || !r.values.includes(labels[r.key] ?? '');
  }
}

/** For messages: the canonical text, or "{} (everything)". */
export function describeSelector(selector: Selector): string {
  return selector.text === '' ? '{} (everything)' : selector.text;
}

/**
 * Parses a LabelSelector found at `path`. Returns null when the field is
 * absent, undefined when it is invalid (the reasons are in `issues`).
 */
export function parseSelector(raw: unknown, path: string, issues: IssueList): Selector | null | undefined {
  if (isAbsent(raw)) return null;
  if (!isObject(raw)) {
    issues.error('invalid', path, `must be a label selector object, got ${describe(raw)}`);
    return undefined;
  }
  const before = issues.errorCount;
  checkKnownFields(raw, ['matchLabels', 'matchExpressions'], path, issues);
  const requirements: Requirement[] = [];

  const matchLabels = stringMapField(raw, 'matchLabels', path, issues) ?? {};
  for (const [key, value] of Object.entries(matchLabels)) {
    const field = `${at(path, 'matchLabels')}["${key}"]`;
    const badKey = checkLabelKey(key);
    if (badKey !== undefined) issues.error('invalid', field, badKey);
    const badValue = checkLabelValue(value);
    if (badValue !== undefined) issues.error('invalid', field, badValue);
    requirements.push({ key, operator: 'In', values: [value] });
  }

  const expressions = arrayField(raw, 'matchExpressions', path, issues) ?? [];
  expressions.forEach((item, i) => {
    const r = parseRequirement(item, at(at(path, 'matchExpressions'), i), issues);
    if (r !== undefined) requirements.push(r);
  });

  return issues.errorCount > before ? undefined : makeSelector(requirements);
}

function parseRequirement(raw: unknown, path: string, issues: IssueList): Requirement | undefined {
  if (!isObject(raw)) {
    issues.error('invalid', path, `must be an object {key, operator, values}, got ${describe(raw)}`);
    return undefined;
  }
  checkKnownFields(raw, ['key', 'operator', 'values'], path, issues);
  const key = requiredString(raw, 'key', path, issues);
  if (key !== undefined) {
    const bad = checkLabelKey(key);
    if (bad !== undefined) issues.error('invalid', at(path, 'key'), bad);
  }
  const operator = requiredString(raw, 'operator', path, issues);
  const values = parseValues(raw, path, issues);
  if (operator === undefined || key === undefined || values === undefined) return undefined;

  if (!(SELECTOR_OPERATORS as readonly string[]).includes(operator)) {
    issues.error('invalid', at(path, 'operator'), `"${operator}" is not a selector operator (want ${SELECTOR_OPERATORS.join(', ')})`);
    return undefined;
  }
  const op = operator as SelectorOperator;
  if ((op === 'In' || op === 'NotIn') && values.length === 0) {
    issues.error('required', at(path, 'values'), `operator ${op} needs at least one value`);
    return undefined;
  }
  if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) {
    issues.error('invalid', at(path, 'values'), `operator ${op} takes no values, got ${values.length}`);
    return undefined;
  }
  return { key, operator: op, values };
}

function parseValues(raw: Obj, path: string, issues: IssueList): string[] | undefined {
  const list = arrayField(raw, 'values', path, issues);
  if (list === undefined) return isAbsent(raw['values']) ? [] : undefined;
  const out: string[] = [];
  let ok = true;
  list.forEach((v, i) => {
    const field = at(at(path, 'values'), i);
    if (typeof v !== 'string') {
      issues.error('invalid', field, `must be a string, got ${describe(v)}`);
      ok = false;
      return;
    }
    const bad = checkLabelValue(v);
    if (bad !== undefined) {
      issues.error('invalid', field, bad);
      ok = false;
    }
    out.push(v);
  });
  return ok ? out : undefined;
}

function requiredString(raw: Obj, key: string, path: string, issues: IssueList): string | undefined {
  const v = raw[key];
  if (isAbsent(v) || v === '') {
    issues.error('required', at(path, key), `${key} is required`);
    return undefined;
  }
  if (typeof v !== 'string') {
    issues.error('invalid', at(path, key), `must be a string, got ${describe(v)}`);
    return undefined;
  }
  return v;
}

function requirementText(r: Requirement): string {
  switch (r.operator) {
    case 'Exists':
      return r.key;
    case 'DoesNotExist':
      return `!${r.key}`;
    case 'In':
      return r.values.length === 1 ? `${r.key}=${r.values[0] ?? ''}` : `${r.key} in (${r.values.join(',')})`;
    case 'NotIn':
      return `${r.key} notin (${r.values.join(',')})`;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * For typed callers (client-node objects, fixtures): parses a selector that
 * is not part of a larger object. null = the selector is absent.
 */
export function compileSelector(raw: LabelSelector | null | undefined, path = 'selector'): Checked<Selector | null> {
  const issues = new IssueList();
  const selector = parseSelector(raw, path, issues);
  return issues.result(selector ?? null);
}
