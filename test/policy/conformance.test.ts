/**
 * Conformance of the model evaluator: every case of ./conformance-cases.ts
 * (after the upstream netpol e2e suite), every probe's full 9×9 table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../../src/policy/model.js';
import { reachability } from '../../src/policy/reachability.js';
import { CASES as cases, parseTable, renderDiff } from './conformance-cases.js';
import { PODS, xyzCluster } from './xyz.js';

test('the conformance suite has at least 30 cases and every case probes something', () => {
  assert.ok(cases.length >= 30, `only ${cases.length} cases`);
  for (const c of cases) assert.ok(c.probes.length > 0, c.name);
});

for (const c of cases) {
  for (const probe of c.probes) {
    const label = probe.protocol === 'ICMP' ? 'ICMP' : `${probe.protocol}/${probe.port}`;
    test(`conformance: ${c.name} [${label}]`, () => {
      const cluster = xyzCluster(c.policies, c.cluster);
      const expected = parseTable(probe.expect, c.name);
      const matrix = reachability(cluster, probe.port, probe.protocol);
      assert.deepEqual(matrix.pods, PODS);
      const actual = PODS.map((from) => PODS.map((to) => matrix.allowed[from]?.[to] ?? false));
      assert.deepEqual(actual, expected, `${c.name} (${c.upstream}) ${label}: got (! = differs)\n${renderDiff(actual, expected)}`);
    });
  }
}

test('conformance: every denial names the isolating policies and every allowance its rules', () => {
  for (const c of cases) {
    const cluster = xyzCluster(c.policies, c.cluster);
    for (const probe of c.probes) {
      for (const from of PODS) {
        for (const to of PODS) {
          const v = evaluate(cluster, from, to, probe.port, probe.protocol);
          const isolated = [...v.egress.isolatedBy, ...v.ingress.isolatedBy];
          if (v.allowed) {
            assert.equal(v.rules.length > 0, isolated.length > 0, `${c.name}: ${v.reason}`);
          } else {
            assert.ok(isolated.length > 0, `${c.name}: a denial with nothing isolating: ${v.reason}`);
            assert.ok(isolated.every((p) => v.reason.includes(p)), `${c.name}: ${v.reason}`);
          }
        }
      }
    }
  }
});
