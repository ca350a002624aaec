/** The evaluator: verdicts, explanations, endpoints and arguments. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError } from '../../src/policy/errors.js';
import { evaluate, formatRuleRef, isolatingPolicies, resolveEndpoint } from '../../src/policy/model.js';
import { ALL, netpol, ns, pod, xyzCluster } from './xyz.js';

const cluster = xyzCluster([
  netpol('x', 'deny-all', { podSelector: ALL, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] }),
  netpol('x', 'a-from-y', { podSelector: pod('a'), ingress: [{ from: [{ namespaceSelector: ns('y') }], ports: [{ port: 80 }] }, { from: [{ podSelector: pod('b') }] }] }),
  netpol('x', 'a-from-y-again', { podSelector: pod('a'), ingress: [{ from: [{ ipBlock: { cidr: '10.9.1.0/24' } }] }] }),
  netpol('x', 'b-egress-web', { podSelector: pod('b'), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] } }] }] }),
]);

test('an allowed connection lists every rule that allowed it', () => {
  const v = evaluate(cluster, 'y/a', 'x/a', 80, 'TCP');
  assert.equal(v.allowed, true);
  assert.deepEqual(v.rules.map(formatRuleRef), ['x/a-from-y ingress[0]', 'x/a-from-y-again ingress[0]']);
  assert.deepEqual(v.ingress.isolatedBy, ['x/a-from-y', 'x/a-from-y-again', 'x/deny-all']);
  assert.equal(v.egress.isolatedBy.length, 0);
  assert.equal(v.egress.pod, 'y/a');
  assert.equal(
    v.reason,
    'allowed: y/a → x/a TCP/80: egress from y/a not isolated (no policy selects it for egress); ingress to x/a allowed by x/a-from-y ingress[0], x/a-from-y-again ingress[0]',
  );
});

test('a denial names the isolating policies and the traffic no rule allows', () => {
  const v = evaluate(cluster, 'z/a', 'x/a', 80, 'TCP');
  assert.equal(v.allowed, false);
  assert.deepEqual(v.rules, []);
  assert.equal(
    v.reason,
    'denied: z/a → x/a TCP/80: egress from z/a not isolated (no policy selects it for egress); ' +
      'ingress to x/a denied: isolated by x/a-from-y, x/a-from-y-again, x/deny-all and none of their ingress rules allows traffic from z/a on TCP/80',
  );
  const e = evaluate(cluster, 'x/c', 'y/a', 80, 'TCP');
  assert.equal(e.allowed, false);
  assert.match(e.reason, /egress from x\/c denied: isolated by x\/deny-all and none of its egress rules allows traffic to y\/a on TCP\/80/);
});

test('both directions are needed: the source egress and the destination ingress', () => {
  const v = evaluate(cluster, 'x/b', 'x/a', 80, 'TCP');
  assert.equal(v.ingress.allowed, true, 'x/a admits x/b');
  assert.equal(v.egress.allowed, false, "but x/b's egress excludes 10/8");
  assert.equal(v.allowed, false);
  assert.deepEqual(v.ingress.allowedBy.map(formatRuleRef), ['x/a-from-y ingress[1]']);
});

test('external endpoints: by address, no policy of their own, ipBlocks apply', () => {
  const out = evaluate(cluster, 'x/b', '8.8.8.8', 53, 'UDP');
  assert.equal(out.allowed, true);
  assert.equal(out.ingress.pod, undefined);
  assert.match(out.reason, /8\.8\.8\.8 \(outside the cluster\)/);
  assert.deepEqual(out.rules.map(formatRuleRef), ['x/b-egress-web egress[0]']);
  assert.equal(evaluate(cluster, 'x/b', '10.200.0.1', 53, 'UDP').allowed, false, 'in except');
  assert.equal(evaluate(cluster, '10.9.1.200', 'x/a', 81, 'TCP').allowed, true, 'an outside address in the ipBlock');
  assert.equal(evaluate(cluster, '192.0.2.1', 'x/a', 81, 'TCP').allowed, false);
  assert.equal(evaluate(cluster, '192.0.2.1', 'y/a', 81, 'TCP').allowed, true);
  assert.equal(
    evaluate(cluster, '192.0.2.1', '192.0.2.2', 81, 'TCP').reason,
    'allowed: 192.0.2.1 (outside the cluster) → 192.0.2.2 (outside the cluster) TCP/81: neither end is a pod, so no policy applies',
  );
});

test("an address that is a pod's IP means that pod", () => {
  const byIp = resolveEndpoint(cluster, '10.9.0.2');
  assert.ok(byIp.kind === 'pod' && byIp.pod.id === 'x/b');
  assert.equal(evaluate(cluster, '10.9.0.2', '10.9.0.1', 80, 'TCP').reason, evaluate(cluster, 'x/b', 'x/a', 80, 'TCP').reason);
});

test('ICMP ignores the port and passes only port-less rules', () => {
  assert.equal(evaluate(cluster, 'x/b', 'x/a', 0, 'ICMP').ingress.allowed, true);
  assert.equal(evaluate(cluster, 'y/a', 'x/a', 12345, 'ICMP').ingress.allowedBy.map(formatRuleRef).join(), 'x/a-from-y-again ingress[0]');
  assert.match(evaluate(cluster, 'z/a', 'x/a', 0, 'ICMP').reason, /on ICMP$/);
});

test('isolation is per direction', () => {
  const xa = cluster.podsById.get('x/a');
  const xb = cluster.podsById.get('x/b');
  const ya = cluster.podsById.get('y/a');
  assert.ok(xa && xb && ya);
  assert.deepEqual(isolatingPolicies(cluster, xa, 'egress').map((p) => p.name), ['deny-all']);
  assert.deepEqual(isolatingPolicies(cluster, xb, 'egress').map((p) => p.name), ['b-egress-web', 'deny-all']);
  assert.deepEqual(isolatingPolicies(cluster, ya, 'ingress'), []);
});

test('bad arguments throw PolicyError naming the argument', () => {
  const code = (f: () => unknown): [string, string | undefined] => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof PolicyError);
      return [e.code, e.field];
    }
    assert.fail('no error');
  };
  assert.deepEqual(code(() => evaluate(cluster, 'x/nope', 'x/a', 80, 'TCP')), ['not-found', 'from']);
  assert.deepEqual(code(() => evaluate(cluster, 'x/a', 'nowhere', 80, 'TCP')), ['invalid', 'to']);
  assert.deepEqual(code(() => evaluate(cluster, 'x/a', 'x/b', 0, 'TCP')), ['invalid', 'port']);
  assert.deepEqual(code(() => evaluate(cluster, 'x/a', 'x/b', 65536, 'UDP')), ['invalid', 'port']);
  assert.deepEqual(code(() => evaluate(cluster, 'x/a', 'x/b', 80, 'tcp' as never)), ['invalid', 'protocol']);
});
