/**
 * Label selectors: matching semantics of every operator, canonical form,
 * empty vs absent, and validation errors that name the field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IssueList } from '../../src/policy/errors.js';
import {
  compileSelector,
  describeSelector,
  EVERYTHING,
  makeSelector,
  matchesSelector,
  parseSelector,
  type Selector,
} from '../../src/policy/selectors.js';
import type { LabelSelector } from '../../src/policy/k8s-types.js';

function sel(raw: LabelSelector): Selector {
  const r = compileSelector(raw);
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  assert.ok(r.value !== null);
  return r.value;
}

function errorsOf(raw: unknown): string[] {
  const issues = new IssueList();
  const s = parseSelector(raw, 'spec.podSelector', issues);
  assert.equal(s, undefined, 'an invalid selector yields undefined');
  return issues.errors.map((e) => `${e.path}: ${e.message}`);
}

test('the empty selector matches everything, including no labels', () => {
  assert.equal(matchesSelector(sel({}), {}), true);
  assert.equal(matchesSelector(sel({ matchLabels: {}, matchExpressions: [] }), { a: 'b' }), true);
  assert.equal(matchesSelector(EVERYTHING, { pod: 'a' }), true);
});

test('an absent selector matches nothing', () => {
  assert.equal(matchesSelector(null, {}), false);
  assert.equal(matchesSelector(undefined, { pod: 'a' }), false);
  const r = compileSelector(null);
  assert.ok(r.ok);
  assert.equal(r.value, null);
});

test('matchLabels needs every pair', () => {
  const s = sel({ matchLabels: { pod: 'a', tier: 'web' } });
  assert.equal(matchesSelector(s, { pod: 'a', tier: 'web', extra: 'x' }), true);
  assert.equal(matchesSelector(s, { pod: 'a' }), false);
  assert.equal(matchesSelector(s, { pod: 'a', tier: 'db' }), false);
});

test('In, NotIn, Exists, DoesNotExist', () => {
  const inS = sel({ matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'b'] }] });
  assert.equal(matchesSelector(inS, { pod: 'b' }), true);
  assert.equal(matchesSelector(inS, { pod: 'c' }), false);
  assert.equal(matchesSelector(inS, {}), false, 'In needs the key');

  const notIn = sel({ matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['a'] }] });
  assert.equal(matchesSelector(notIn, { pod: 'b' }), true);
  assert.equal(matchesSelector(notIn, { pod: 'a' }), false);
  assert.equal(matchesSelector(notIn, {}), true, 'NotIn matches an absent key');

  const exists = sel({ matchExpressions: [{ key: 'tier', operator: 'Exists' }] });
  assert.equal(matchesSelector(exists, { tier: '' }), true, 'an empty value is present');
  assert.equal(matchesSelector(exists, {}), false);

  const absent = sel({ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist', values: [] }] });
  assert.equal(matchesSelector(absent, {}), true);
  assert.equal(matchesSelector(absent, { tier: 'x' }), false);
});

test('matchLabels and matchExpressions are ANDed', () => {
  const s = sel({ matchLabels: { pod: 'a' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] });
  assert.equal(matchesSelector(s, { pod: 'a', tier: 'x' }), true);
  assert.equal(matchesSelector(s, { pod: 'a' }), false);
  assert.equal(matchesSelector(s, { tier: 'x' }), false);
});

test('a key inherited from Object.prototype is not a label', () => {
  const s = sel({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] });
  assert.equal(matchesSelector(s, {}), false);
});

test('the canonical text is order-independent and merges equivalent spellings', () => {
  const a = sel({ matchLabels: { pod: 'a', ns: 'x' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'db', 'web'] }] });
  const b = sel({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['db', 'web'] }, { key: 'ns', operator: 'In', values: ['x'] }], matchLabels: { pod: 'a' } });
  assert.equal(a.text, 'ns=x,pod=a,tier in (db,web)');
  assert.equal(a.text, b.text);
  assert.deepEqual(a.requirements, b.requirements);
  assert.equal(sel({ matchExpressions: [{ key: 'k', operator: 'NotIn', values: ['v'] }, { key: 'e', operator: 'Exists' }, { key: 'd', operator: 'DoesNotExist' }] }).text, '!d,e,k notin (v)');
  assert.equal(describeSelector(EVERYTHING), '{} (everything)');
  assert.equal(makeSelector([{ key: 'a', operator: 'In', values: ['1'] }, { key: 'a', operator: 'In', values: ['1'] }]).requirements.length, 1);
});

test('In and NotIn need values; Exists and DoesNotExist take none', () => {
  assert.deepEqual(errorsOf({ matchExpressions: [{ key: 'pod', operator: 'In', values: [] }] }), [
    'spec.podSelector.matchExpressions[0].values: operator In needs at least one value',
  ]);
  assert.deepEqual(errorsOf({ matchExpressions: [{ key: 'pod', operator: 'NotIn' }] }), [
    'spec.podSelector.matchExpressions[0].values: operator NotIn needs at least one value',
  ]);
  assert.deepEqual(errorsOf({ matchExpressions: [{ key: 'pod', operator: 'Exists', values: ['a'] }] }), [
    'spec.podSelector.matchExpressions[0].values: operator Exists takes no values, got 1',
  ]);
  assert.deepEqual(errorsOf({ matchExpressions: [{}, { key: 'p', operator: 'DoesNotExist', values: ['a', 'b'] }] }), [
    'spec.podSelector.matchExpressions[0].key: key is required',
    'spec.podSelector.matchExpressions[0].operator: operator is required',
    'spec.podSelector.matchExpressions[1].values: operator DoesNotExist takes no values, got 2',
  ]);
});

test('unknown operators, fields and malformed labels are rejected with their path', () => {
  assert.deepEqual(errorsOf({ matchExpressions: [{ key: 'pod', operator: 'in', values: ['a'] }] }), [
    'spec.podSelector.matchExpressions[0].operator: "in" is not a selector operator (want In, NotIn, Exists, DoesNotExist)',
  ]);
  assert.deepEqual(errorsOf({ matchExpressions: [{ key: 'pod', operator: 'Gt', values: ['1'] }] }).length, 1);
  assert.deepEqual(errorsOf({ matchLabel: { pod: 'a' } }), [
    'spec.podSelector.matchLabel: unknown field "matchLabel" (known: matchLabels, matchExpressions)',
  ]);
  assert.deepEqual(errorsOf({ matchLabels: { 'bad key!': 'a' } }), [
    'spec.podSelector.matchLabels["bad key!"]: label key "bad key!": name must be alphanumerics, "-", "_" or ".", starting and ending with an alphanumeric',
  ]);
  assert.deepEqual(errorsOf({ matchLabels: { pod: 7 } }), ['spec.podSelector.matchLabels["pod"]: must be a string, got a number (7)']);
  assert.deepEqual(errorsOf({ matchExpressions: [{ key: 'pod', operator: 'In', values: ['-x'] }] }).length, 1);
  assert.deepEqual(errorsOf('pod=a'), ['spec.podSelector: must be a label selector object, got a string ("pod=a")']);
  assert.deepEqual(errorsOf({ matchExpressions: { key: 'pod' } }), ['spec.podSelector.matchExpressions: must be a list, got an object']);
});
