/** Manifests → cluster: documents, Lists, JSON, locations in every message. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadManifests } from '../../src/policy/manifests.js';

const ns = (name: string, labels = ''): string => `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}${labels}}\n`;
const pod = (namespace: string, name: string, ip: string, extra = ''): string =>
  `apiVersion: v1\nkind: Pod\nmetadata: {namespace: ${namespace}, name: ${name}, labels: {app: ${name}}}\nspec: {containers: [{name: c${extra}}]}\nstatus: {podIP: ${ip}}\n`;

test('multi-document YAML, a List and JSON load into one cluster', () => {
  const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { namespace: 'x', name: 'b' }, spec: { containers: [] }, status: { podIP: '10.0.0.2' } }] });
  const policy = `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {namespace: x, name: deny}\nspec: {podSelector: {}}\n`;
  const r = loadManifests([
    { file: 'a.yaml', text: `${ns('x')}---\n${pod('x', 'a', '10.0.0.1')}---\n${policy}---\n` },
    { file: 'b.json', text: list },
  ]);
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  assert.deepEqual(r.value.cluster.pods.map((p) => p.id), ['x/a', 'x/b']);
  assert.deepEqual(r.value.cluster.policies.map((p) => p.name), ['deny']);
  assert.deepEqual(r.warnings, []);
});

test('errors name the file, the document, the List item, the object and the field', () => {
  const bad = `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {namespace: x, name: p}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 80, endPort: 79}]}]\n`;
  const r = loadManifests([
    { file: 'one.yaml', text: `${ns('x')}---\n${bad}` },
    { file: 'two.yaml', text: `kind: List\nitems:\n- ${JSON.stringify({ kind: 'Pod', metadata: { namespace: 'x', name: 'q' }, status: { podIP: 'nope' } })}\n` },
    { file: 'three.yaml', text: 'a: [' },
    { file: 'four.yaml', text: 'metadata: {name: z}\n' },
  ]);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(r.errors, [
    'one.yaml: document 2: NetworkPolicy x/p: spec.ingress[0].ports[0].endPort: must be ≥ port (80), got 79',
    'two.yaml: items[0]: Pod x/q: status.podIP: "nope" is not a valid IPv4 address (want a.b.c.d, no leading zeros)',
    r.errors[2] ?? '',
    'four.yaml: kind: required (Namespace, Pod, NetworkPolicy or a List of them)',
  ]);
  assert.match(r.errors[2] ?? '', /^three\.yaml: not valid YAML\/JSON: /);
});

test('duplicates name both places; pod IPs must be unique', () => {
  const r = loadManifests([
    { file: 'a.yaml', text: `${ns('x')}---\n${pod('x', 'a', '10.0.0.1')}` },
    { file: 'b.yaml', text: `${pod('x', 'a', '10.0.0.9')}---\n${pod('x', 'c', '10.0.0.1')}` },
  ]);
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(r.errors, [
    'b.yaml: document 1: Pod x/a: defined twice (first in a.yaml: document 2)',
    'b.yaml: document 2: Pod x/c: status.podIP: 10.0.0.1 is also the IP of Pod x/a (a.yaml: document 2)',
  ]);
});

test('other kinds are skipped and missing namespaces assumed, each with a warning', () => {
  const r = loadManifests([{ file: 'm.yaml', text: `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n${pod('y', 'a', '10.0.0.1')}` }]);
  assert.ok(r.ok);
  assert.deepEqual(r.warnings, [
    'm.yaml: document 1: Deployment web: skipped (policy reads Namespaces, Pods and NetworkPolicies)',
    'm.yaml: document 2: namespace "y" has no Namespace object: assumed, labelled only kubernetes.io/metadata.name=y',
  ]);
  assert.deepEqual(r.value.cluster.namespaces.get('y')?.labels, { 'kubernetes.io/metadata.name': 'y' });
});

test('objects without a namespace go to the default one (configurable)', () => {
  const r = loadManifests([{ file: 'm.yaml', text: 'kind: Pod\nmetadata: {name: a}\nstatus: {podIP: 10.0.0.1}\n' }], { defaultNamespace: 'lab' });
  assert.ok(r.ok);
  assert.deepEqual(r.value.cluster.pods.map((p) => p.id), ['lab/a']);
});
