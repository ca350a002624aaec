/** Kubernetes name syntax checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDnsLabel, checkDnsSubdomain, checkLabelKey, checkLabelValue, checkPortName } from '../../src/policy/names.js';

test('label keys: optional DNS prefix and a qualified name', () => {
  for (const ok of ['pod', 'app.kubernetes.io/name', 'kubernetes.io/metadata.name', 'A_b-c.d', 'x'.repeat(63)]) {
    assert.equal(checkLabelKey(ok), undefined, ok);
  }
  for (const bad of ['', '/a', 'a/', 'a/b/c', '-a', 'a-', 'a b', 'UPPER.io/x', 'x'.repeat(64), 'a:b']) {
    assert.notEqual(checkLabelKey(bad), undefined, bad);
  }
});

test('label values: empty or a qualified name of ≤ 63', () => {
  for (const ok of ['', 'a', 'A-1_b.c', 'x'.repeat(63)]) assert.equal(checkLabelValue(ok), undefined, ok);
  for (const bad of ['-a', 'a.', 'a/b', 'x'.repeat(64), 'a b']) assert.notEqual(checkLabelValue(bad), undefined, bad);
});

test('DNS labels and subdomains', () => {
  assert.equal(checkDnsLabel('kube-system'), undefined);
  assert.notEqual(checkDnsLabel('Kube'), undefined);
  assert.notEqual(checkDnsLabel('a.b'), undefined);
  assert.notEqual(checkDnsLabel('x'.repeat(64)), undefined);
  assert.equal(checkDnsSubdomain('allow.web-1'), undefined);
  assert.notEqual(checkDnsSubdomain('allow_web'), undefined);
  assert.notEqual(checkDnsSubdomain('.a'), undefined);
});

test('port names follow IANA_SVC_NAME', () => {
  for (const ok of ['http', 'serve-80-tcp', 'a', 'x1', 'a'.repeat(15)]) assert.equal(checkPortName(ok), undefined, ok);
  assert.match(checkPortName('80') ?? '', /without quotes/);
  for (const bad of ['', 'a'.repeat(16), 'HTTP', '-a', 'a-', 'a--b', '8-0', 'a_b']) {
    assert.notEqual(checkPortName(bad), undefined, bad);
  }
});
