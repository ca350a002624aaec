/** The applied view: the numbers a compile put in the maps, named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicy } from '../../src/policy/compile.js';
import { unpackPolicyKey } from '../../src/policy/datapath-state.js';
import { appliedViewOf, EMPTY_APPLIED_VIEW } from '../../src/reconcile/applied-view.js';
import { netpol, pod, xyzCluster } from '../policy/xyz.js';

test('endpoint → pod, identity → namespace, labels and pods, rule id → policy, direction and index', () => {
  const cluster = xyzCluster([
    netpol('x', 'web', { podSelector: pod('a'), ingress: [{ from: [{ podSelector: pod('c') }] }, { from: [{ podSelector: pod('b') }], ports: [{ port: 80 }] }] }),
    netpol('y', 'out', { podSelector: pod('b'), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '192.168.0.0/16' } }] }] }),
  ]);
  const endpointOf = new Map(cluster.pods.map((p, i) => [p.id, i + 10]));
  const compiled = compilePolicy({ cluster, endpoints: endpointOf });
  const view = appliedViewOf(compiled, 1);

  assert.equal(view.generation, 1);
  const xa = view.endpoint(endpointOf.get('x/a') ?? 0);
  assert.deepEqual({ ns: xa?.namespace, pod: xa?.pod }, { ns: 'x', pod: 'a' });
  assert.equal(view.endpoints().length, cluster.pods.length);
  assert.equal(view.endpoint(999), undefined);

  const id = xa?.identity ?? 0;
  const identity = view.identity(id);
  assert.equal(identity?.kind, 'pod');
  assert.equal(identity?.namespace, 'x');
  assert.equal(identity?.labels['pod'], 'a');
  assert.deepEqual(identity?.pods, ['x/a']);

  // Every rule id in the policy entries names its policy and rule.
  const named = new Set<string>();
  for (const entries of compiled.datapath.policy.values()) {
    for (const [packed, ruleId] of entries) {
      const rule = view.rule(ruleId);
      assert.ok(rule !== undefined, `rule ${ruleId} of identity ${unpackPolicyKey(packed).remoteIdentity} is named`);
      named.add(`${rule.policy} ${rule.direction} ${rule.index}`);
    }
  }
  assert.deepEqual([...named].sort(), ['x/web ingress 0', 'x/web ingress 1', 'y/out egress 0']);

  const cidr = [...compiled.identities.table.byId.keys()].map((i) => view.identity(i)).find((i) => i?.kind === 'cidr');
  assert.ok(cidr !== undefined && cidr.terms.some((t) => t.startsWith('192.168.0.0/16')), JSON.stringify(cidr));
  assert.ok(Object.isFrozen(view));
  assert.equal(EMPTY_APPLIED_VIEW.rule(1), undefined);

  // Any pod of the cluster by its address (the remote side of a flow), with its identity.
  const xb = cluster.podsById.get('x/b');
  const byIp = [...cluster.podsByIp].find(([, p]) => p === xb)?.[0] ?? '';
  assert.deepEqual(view.podAt(byIp), { namespace: 'x', pod: 'b', identity: compiled.identities.podIdentity.get('x/b') });
  assert.equal(view.podAt('203.0.113.9'), undefined);
  assert.equal(EMPTY_APPLIED_VIEW.podAt(byIp), undefined);
});
