/**
 * The endpoint contract both sides share: validation of registrations and
 * persisted records, and the error value every EndpointPort rejects with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attachmentKey, checkContainerId, checkIfname, ENDPOINT_ERROR_CODES, EndpointError, invalidRequest, isEndpointErrorCode, sameSpec,
  validateEndpointRecord, validateEndpointSpec, type EndpointSpec,
} from '../../src/endpoint/contract.js';

const GOOD: EndpointSpec = {
  containerId: 'abc123', ifname: 'eth0', netns: '/var/run/netns/p1', podNamespace: 'default', podName: 'web-1',
  ip: '10.9.0.5', hostIfname: 'lxc1', hostIfindex: 17,
};

function problems(body: unknown): string[] {
  const r = validateEndpointSpec(body);
  return r.ok ? [] : r.problems.map((p) => `${p.field}: ${p.message}`);
}

test('a complete registration is accepted as is', () => {
  assert.deepEqual(validateEndpointSpec(GOOD), { ok: true, value: GOOD });
});

test('every bad field is named', () => {
  const cases: [Partial<Record<keyof EndpointSpec, unknown>>, string][] = [
    [{ containerId: '' }, 'containerId: must not be empty'],
    [{ containerId: 'a/b' }, 'containerId: "a/b" must be alphanumeric'],
    [{ ifname: 'a-very-long-ifname0' }, 'ifname: must be at most 15 bytes'],
    [{ ifname: 'eth 0' }, 'ifname: "eth 0" contains'],
    [{ netns: 'relative/path' }, 'netns: must be an absolute path'],
    [{ podNamespace: 'Bad_NS' }, 'podNamespace:'],
    [{ podName: 'UPPER' }, 'podName:'],
    [{ ip: '10.9.0.256' }, 'ip: "10.9.0.256" is not a valid IPv4 address'],
    [{ ip: 'fd00::1' }, 'ip: fd00::1 is IPv6'],
    [{ ip: 5 }, 'ip: must be a string, got number 5'],
    [{ hostIfname: '' }, 'hostIfname: must not be empty'],
    [{ hostIfindex: 0 }, 'hostIfindex: must be an interface index 1..2147483647, got number 0'],
    [{ hostIfindex: 1.5 }, 'hostIfindex: must be an interface index'],
    [{ hostIfindex: '3' }, 'hostIfindex: must be an interface index'],
  ];
  for (const [patch, expected] of cases) {
    const got = problems({ ...GOOD, ...patch });
    assert.equal(got.length, 1, `${JSON.stringify(patch)} → ${got.join(' | ')}`);
    assert.ok(got[0]?.startsWith(expected), `${JSON.stringify(patch)}: got "${got[0]}", want "${expected}…"`);
  }
});

test('missing fields, unknown fields and non-objects', () => {
  const { ip: _ip, hostIfindex: _idx, ...partial } = GOOD;
  assert.deepEqual(problems(partial), ['ip: is required', 'hostIfindex: is required']);
  assert.deepEqual(problems({ ...GOOD, mac: 'aa:bb' }).map((p) => p.split(' (')[0]), ['mac: unknown field']);
  assert.deepEqual(problems([GOOD]), [': the body must be a JSON object, got a list']);
  assert.deepEqual(problems(null), [': the body must be a JSON object, got null']);
});

test('non-canonical addresses are refused rather than guessed', () => {
  assert.match(problems({ ...GOOD, ip: '010.9.0.5' })[0] ?? '', /^ip: /);
});

test('interface names', () => {
  for (const ok of ['eth0', 'lxc_abc-1', 'x'.repeat(15)]) assert.equal(checkIfname(ok), undefined, ok);
  for (const bad of ['', '.', '..', 'a/b', 'a:b', 'x'.repeat(16)]) assert.notEqual(checkIfname(bad), undefined, bad);
});

test('persisted records also need their id and creation time', () => {
  assert.ok(validateEndpointRecord({ ...GOOD, endpointId: 3, createdAt: '2026-01-01T00:00:00Z' }).ok);
  const r = validateEndpointRecord({ ...GOOD, endpointId: 0, createdAt: 'yesterday' });
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => p.field), ['endpointId', 'createdAt']);
});

test('container ids and the attachment key', () => {
  for (const ok of ['abc123', 'A_b.c-1', 'x'.repeat(256)]) assert.equal(checkContainerId(ok), undefined, ok);
  assert.match(checkContainerId('') ?? '', /must not be empty/);
  assert.match(checkContainerId('x'.repeat(257)) ?? '', /at most 256 characters, got 257/);
  assert.match(checkContainerId('-lead') ?? '', /starting alphanumeric/);
  assert.equal(attachmentKey(GOOD), 'abc123/eth0');
});

test('sameSpec compares every field of the registration', () => {
  assert.equal(sameSpec(GOOD, { ...GOOD }), true);
  for (const [k, v] of Object.entries({ containerId: 'x', ifname: 'eth1', netns: '/x', podNamespace: 'x', podName: 'x', ip: '10.9.0.6', hostIfname: 'x', hostIfindex: 18 })) {
    assert.equal(sameSpec(GOOD, { ...GOOD, [k]: v }), false, k);
  }
});

test('EndpointError: code, details, and the wire form without the transport\'s fields', () => {
  const e = new EndpointError('conflict', 'ip 10.9.0.5 is registered to a/eth0', { field: 'ip', status: 409 });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'EndpointError');
  assert.equal(e.code, 'conflict');
  assert.equal(e.field, 'ip');
  assert.equal(e.status, 409);
  assert.equal(e.notSent, false);
  assert.deepEqual(e.toJSON(), { code: 'conflict', message: 'ip 10.9.0.5 is registered to a/eth0', field: 'ip' });
  const cause = new Error('connect ENOENT');
  const u = new EndpointError('unreachable', 'no agent', { notSent: true, cause });
  assert.equal(u.notSent, true);
  assert.equal(u.cause, cause);
  assert.deepEqual(u.toJSON(), { code: 'unreachable', message: 'no agent' });
});

test('invalidRequest names the first problem and lists them all', () => {
  const probs = [{ field: 'podName', message: 'bad' }, { field: 'hostIfindex', message: 'worse' }];
  const e = invalidRequest(probs);
  assert.equal(e.code, 'invalid-argument');
  assert.equal(e.message, 'podName: bad');
  assert.equal(e.field, 'podName');
  assert.deepEqual(e.problems, probs);
  const body = invalidRequest([{ field: '', message: 'the body must be a JSON object, got null' }]);
  assert.equal(body.message, 'the body must be a JSON object, got null');
  assert.equal(body.field, undefined, 'a whole-body problem names no field');
  assert.equal(invalidRequest([]).message, 'invalid request');
});

test('isEndpointErrorCode knows exactly the listed codes', () => {
  for (const c of ENDPOINT_ERROR_CODES) assert.equal(isEndpointErrorCode(c), true, c);
  for (const c of ['kube-api', 'invalid-config', '', 3, undefined]) assert.equal(isEndpointErrorCode(c), false, String(c));
});
