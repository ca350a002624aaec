/** Namespaces and Pods → the facts policy needs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIp } from '../../src/policy/cidr.js';
import type { Pod } from '../../src/policy/k8s-types.js';
import { NAMESPACE_NAME_LABEL, parseNamespace, parsePod, type ClusterPod } from '../../src/policy/objects.js';

function pod(p: Pod): ClusterPod | null {
  const r = parsePod(p);
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return r.value;
}

function podErrors(p: unknown): string[] {
  const r = parsePod(p as Pod);
  assert.ok(!r.ok, 'expected a rejection');
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

test('a namespace gets the kubernetes.io/metadata.name label the API server sets', () => {
  const r = parseNamespace({ metadata: { name: 'x', labels: { ns: 'x' } } });
  assert.ok(r.ok);
  assert.deepEqual(r.value, { name: 'x', labels: { ns: 'x', [NAMESPACE_NAME_LABEL]: 'x' } });
  const same = parseNamespace({ metadata: { name: 'x', labels: { [NAMESPACE_NAME_LABEL]: 'x' } } });
  assert.ok(same.ok);
});

test('namespace problems are named', () => {
  const wrong = parseNamespace({ metadata: { name: 'x', labels: { [NAMESPACE_NAME_LABEL]: 'y' } } });
  assert.ok(!wrong.ok);
  assert.deepEqual(wrong.errors.map((e) => [e.object, e.path]), [['Namespace x', `metadata.labels["${NAMESPACE_NAME_LABEL}"]`]]);
  const nameless = parseNamespace({ metadata: {} });
  assert.ok(!nameless.ok && nameless.errors[0]?.path === 'metadata.name');
  const bad = parseNamespace({ kind: 'Pod', metadata: { name: 'X_1', labels: { 'a b': 'c' } } });
  assert.ok(!bad.ok);
  assert.deepEqual(bad.errors.map((e) => e.path), ['kind', 'metadata.name', 'metadata.labels["a b"]']);
});

test('a pod: labels, IPv4 address, container ports with protocol defaulted', () => {
  const p = pod({
    metadata: { namespace: 'x', name: 'a', labels: { pod: 'a' } },
    spec: { containers: [{ name: 'c1', ports: [{ name: 'http', containerPort: 80 }, { containerPort: 53, protocol: 'UDP' }] }, { name: 'c2', ports: null }] },
    status: { phase: 'Running', podIP: '10.9.0.1' },
  });
  assert.ok(p !== null);
  assert.equal(p.id, 'x/a');
  assert.deepEqual(p.labels, { pod: 'a' });
  assert.equal(p.ip === undefined ? '' : formatIp(p.ip), '10.9.0.1');
  assert.deepEqual(p.ports, [{ name: 'http', port: 80, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }]);
});

test('a dual-stack pod uses its IPv4 address; an IPv6-only pod has none (warned)', () => {
  const dual = pod({ metadata: { name: 'a' }, spec: { containers: [] }, status: { podIP: 'fd00::1', podIPs: [{ ip: 'fd00::1' }, { ip: '10.9.0.9' }] } });
  assert.ok(dual?.ip !== undefined && formatIp(dual.ip) === '10.9.0.9');
  assert.equal(dual.namespace, 'default');
  const r = parsePod({ metadata: { name: 'a' }, spec: { containers: [] }, status: { podIP: 'fd00::1' } });
  assert.ok(r.ok && r.value !== null && r.value.ip === undefined);
  assert.match(r.warnings[0]?.message ?? '', /IPv4 only/);
  const pending = pod({ metadata: { name: 'a' }, spec: { containers: [] }, status: { phase: 'Pending' } });
  assert.equal(pending?.ip, undefined);
});

test('host-network and finished pods are left out, with a warning', () => {
  for (const p of [
    { metadata: { name: 'h' }, spec: { hostNetwork: true, containers: [] }, status: { podIP: '192.168.1.1' } },
    { metadata: { name: 'done' }, spec: { containers: [] }, status: { phase: 'Succeeded', podIP: '10.9.0.1' } },
    { metadata: { name: 'failed' }, spec: { containers: [] }, status: { phase: 'Failed' } },
  ]) {
    const r = parsePod(p);
    assert.ok(r.ok);
    assert.equal(r.value, null);
    assert.equal(r.warnings.length, 1);
  }
});

test('pod problems are named with their path', () => {
  assert.deepEqual(podErrors({ metadata: { namespace: 'x' } }), ['metadata.name: metadata.name is required']);
  assert.deepEqual(
    podErrors({
      metadata: { name: 'a', namespace: 'x', labels: { pod: 'a b' } },
      spec: {
        containers: [
          { name: 'c', ports: [{ containerPort: 0 }, { containerPort: 80, protocol: 'tcp' }, { containerPort: 81, name: 'Web' }, { name: 'dup', containerPort: 82 }] },
          { name: 'd', ports: [{ name: 'dup', containerPort: 83, protocol: 'UDP' }] },
        ],
      },
      status: { podIP: '10.9.0.300' },
    }),
    [
      'metadata.labels["pod"]: label value "a b" must be alphanumerics, "-", "_" or ".", starting and ending with an alphanumeric',
      'spec.containers[0].ports[0].containerPort: must be a port number 1..65535, got a number (0)',
      'spec.containers[0].ports[1].protocol: unsupported protocol a string ("tcp"); want TCP, UDP, SCTP',
      'spec.containers[0].ports[2].name: port name "Web" must be lowercase alphanumerics or "-"',
      'spec.containers[1].ports[0].name: port name "dup" is already used by spec.containers[0].ports[3]',
      'status.podIP: "10.9.0.300" is not a valid IPv4 address (want a.b.c.d, no leading zeros)',
    ],
  );
  const r = parsePod({ metadata: { name: 'a', namespace: 'x' }, spec: { containers: [] }, status: { podIP: 'x' } });
  assert.ok(!r.ok && r.errors[0]?.object === 'Pod x/a');
  assert.deepEqual(podErrors('pod'), [': a Pod must be an object, got a string ("pod")']);
});
