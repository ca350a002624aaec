/** The engine's policy form: identifiers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { policyId, PROTOCOLS } from '../../src/policy/policy-types.js';

test('policies are named namespace/name', () => {
  assert.equal(policyId({ namespace: 'x', name: 'deny-all' }), 'x/deny-all');
});

test('the policy protocols are exactly TCP, UDP and SCTP', () => {
  assert.deepEqual([...PROTOCOLS], ['TCP', 'UDP', 'SCTP']);
});
