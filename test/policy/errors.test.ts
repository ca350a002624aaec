/** Issue lists and their formatting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue, IssueList, PolicyError } from '../../src/policy/errors.js';

test('issues are stamped with the object once it is known', () => {
  const issues = new IssueList();
  issues.error('invalid', 'metadata.name', 'bad');
  issues.warn('spec', 'hmm');
  issues.object = 'NetworkPolicy x/p';
  const r = issues.result(42);
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.equal(r.errors[0]?.object, 'NetworkPolicy x/p');
  assert.equal(formatIssue(r.errors[0] ?? { code: 'invalid', path: '', message: '' }), 'NetworkPolicy x/p: metadata.name: bad');
  assert.equal(formatIssue(r.warnings[0] ?? { path: '', message: '' }), 'NetworkPolicy x/p: spec: hmm');
  assert.equal(formatIssue({ path: '', message: 'plain' }), 'plain');
});

test('a list without errors yields its value; fail() needs a recorded error', () => {
  const issues = new IssueList('Pod x/a');
  issues.warn('status.podIP', 'w');
  const r = issues.result('v');
  assert.ok(r.ok);
  assert.equal(r.value, 'v');
  assert.equal(r.warnings.length, 1);
  assert.throws(() => new IssueList().fail(), /without a recorded error/);
});

test('PolicyError carries code and field', () => {
  const e = new PolicyError('not-found', 'no pod', 'from');
  assert.equal(e.name, 'PolicyError');
  assert.equal(e.code, 'not-found');
  assert.equal(e.field, 'from');
  assert.ok(e instanceof Error);
});
