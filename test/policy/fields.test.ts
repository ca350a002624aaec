/** Reading untrusted trees: absent values, wrong types, unknown keys. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IssueList } from '../../src/policy/errors.js';
import { arrayField, at, checkKnownFields, describe, isAbsent, isObject, objectField, stringField, stringMapField } from '../../src/policy/fields.js';

test('paths', () => {
  assert.equal(at('', 'spec'), 'spec');
  assert.equal(at('spec', 'ingress'), 'spec.ingress');
  assert.equal(at('spec.ingress', 2), 'spec.ingress[2]');
});

test('null and undefined are absent; arrays are not objects', () => {
  assert.equal(isAbsent(null), true);
  assert.equal(isAbsent(undefined), true);
  assert.equal(isAbsent(0), false);
  assert.equal(isObject([]), false);
  assert.equal(isObject({}), true);
});

test('unknown keys are errors, absent-valued keys are not', () => {
  const issues = new IssueList();
  checkKnownFields({ a: 1, b: undefined, c: null, d: 2 }, ['a'], 'spec', issues);
  assert.deepEqual(issues.errors.map((e) => [e.code, e.path]), [['unknown-field', 'spec.d']]);
});

test('typed reads report wrong types and pass absent through', () => {
  const issues = new IssueList();
  const obj = { o: 1, a: 'x', s: 3, m: { k: 'v', n: 1, u: undefined }, none: null };
  assert.equal(objectField(obj, 'o', 'p', issues), undefined);
  assert.equal(arrayField(obj, 'a', 'p', issues), undefined);
  assert.equal(stringField(obj, 's', 'p', issues), undefined);
  assert.deepEqual(stringMapField(obj, 'm', 'p', issues), { k: 'v' });
  assert.equal(objectField(obj, 'none', 'p', issues), undefined);
  assert.equal(stringField(obj, 'missing', 'p', issues), undefined);
  assert.deepEqual(
    issues.errors.map((e) => `${e.path}: ${e.message}`),
    [
      'p.o: must be an object, got a number (1)',
      'p.a: must be a list, got a string ("x")',
      'p.s: must be a string, got a number (3)',
      'p.m["n"]: must be a string, got a number (1)',
    ],
  );
  assert.equal(describe(true), 'a boolean (true)');
  assert.equal(describe(null), 'null');
});
