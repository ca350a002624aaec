import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkIfname, validateEndpointRecord, validateEndpointSpec, type EndpointSpec } from '../../src/agent/endpoints/types.js';

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
