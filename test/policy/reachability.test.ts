/** The reachability matrix in the CLI's JSON shape. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reachability } from '../../src/policy/reachability.js';
import { ALL, netpol, PODS, xyzCluster } from './xyz.js';

test('the matrix has the exact JSON shape: sorted pods, allowed[from][to]', () => {
  const cluster = xyzCluster([netpol('y', 'deny', { podSelector: ALL, policyTypes: ['Ingress'], ingress: [] })]);
  const r = reachability(cluster, 80, 'TCP');
  assert.deepEqual(Object.keys(r), ['protocol', 'port', 'pods', 'allowed']);
  assert.equal(r.protocol, 'TCP');
  assert.equal(r.port, 80);
  assert.deepEqual(r.pods, PODS);
  assert.deepEqual(Object.keys(r.allowed), PODS);
  assert.deepEqual(Object.keys(r.allowed['x/a'] ?? {}), PODS);
  assert.equal(r.allowed['x/a']?.['y/b'], false);
  assert.equal(r.allowed['y/b']?.['x/a'], true);
  const json = JSON.stringify(r);
  assert.ok(json.startsWith('{"protocol":"TCP","port":80,"pods":["x/a","x/b",'), json.slice(0, 60));
});

test('a subset of pods, deduplicated and sorted', () => {
  const r = reachability(xyzCluster([]), 81, 'UDP', ['z/c', 'x/a', 'z/c']);
  assert.deepEqual(r.pods, ['x/a', 'z/c']);
  assert.deepEqual(r.allowed, { 'x/a': { 'x/a': true, 'z/c': true }, 'z/c': { 'x/a': true, 'z/c': true } });
});
