import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabError } from '../../src/lab/errors.js';
import { MAX_IFNAME } from '../../src/lab/names.js';
import { resolveSpec } from '../../src/lab/spec.js';

const paths = { bpffs: '/sys/fs/bpf', stateDir: '/run/sluice/lab' };

/** Asserts that fn throws a LabError about `field`, with the field's value in the message. */
function throwsField(fn: () => unknown, field: string, text: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LabError, `want LabError, got ${String(e)}`);
    assert.equal(e.code, 'invalid-spec');
    assert.equal(e.field, field);
    assert.match(e.message, text);
    return true;
  });
}

test('defaults: lab "dev", pods a and b, a /24 under 10/8, one endpoint and identity each', () => {
  const plan = resolveSpec({}, paths);
  assert.equal(plan.name, 'dev');
  assert.equal(plan.nodeNetns, 'sluice-dev-node');
  assert.equal(plan.pinRoot, '/sys/fs/bpf/sluice-dev');
  assert.equal(plan.gateway, '169.254.1.1');
  assert.equal(plan.datapath, true);
  assert.match(plan.cidr, /^10\.\d{1,3}\.0\.0\/24$/);
  const base = plan.cidr.replace(/\.0\/24$/, '');
  assert.deepEqual(
    plan.pods.map((p) => [p.name, p.netns, p.ipv4, p.endpointId, p.identity]),
    [
      ['a', 'sluice-dev-a', `${base}.2`, 1, 256],
      ['b', 'sluice-dev-b', `${base}.3`, 2, 257],
    ],
  );
});

test('names: every object carries the lab prefix; host ifnames fit IFNAMSIZ and differ per lab', () => {
  const pods = Array.from({ length: 250 }, (_, i) => `pod-with-a-rather-long-name-${i}`);
  const one = resolveSpec({ name: 'abcdefghijklmnopqrst', pods, cidr: '10.1.0.0/16' }, paths);
  for (const p of one.pods) {
    assert.ok(p.netns.startsWith('sluice-abcdefghijklmnopqrst-'), p.netns);
    assert.ok(p.hostIfname.length <= MAX_IFNAME, p.hostIfname);
    assert.match(p.hostIfname, /^sl[0-9a-f]{4}\d+$/);
  }
  assert.equal(new Set(one.pods.map((p) => p.hostIfname)).size, 250);
  assert.equal(new Set(one.pods.map((p) => p.hostMac)).size, 250);
  const other = resolveSpec({ name: 'other' }, paths);
  assert.notEqual(other.pods[0]?.hostIfname, resolveSpec({ name: 'dev' }, paths).pods[0]?.hostIfname);
});

test('explicit cidr: addresses from .2 up; too small a block names the cidr field', () => {
  const plan = resolveSpec({ name: 'x', pods: ['a', 'b', 'c'], cidr: '192.168.7.0/29' }, paths);
  assert.deepEqual(
    plan.pods.map((p) => p.ipv4),
    ['192.168.7.2', '192.168.7.3', '192.168.7.4'],
  );
  throwsField(() => resolveSpec({ pods: ['a', 'b'], cidr: '10.0.0.0/30' }, paths), 'cidr', /room for 1 pods, need 2/);
});

test('invalid specs fail before anything is created, naming the field', () => {
  throwsField(() => resolveSpec({ name: 'Dev' }, paths), 'name', /lab name "Dev"/);
  throwsField(() => resolveSpec({ name: 'a-b' }, paths), 'name', /"a-b"/);
  throwsField(() => resolveSpec({ name: '' }, paths), 'name', /lab name ""/);
  throwsField(() => resolveSpec({ pods: [] }, paths), 'pods', /1\.\.250/);
  throwsField(() => resolveSpec({ pods: ['a', 'B'] }, paths), 'pods[1]', /pod "B"/);
  throwsField(() => resolveSpec({ pods: ['a', 'a'] }, paths), 'pods[1]', /listed twice/);
  throwsField(() => resolveSpec({ pods: ['node'] }, paths), 'pods[0]', /reserved/);
  throwsField(() => resolveSpec({ pods: ['-a'] }, paths), 'pods[0]', /"-a"/);
  throwsField(() => resolveSpec({ cidr: '10.300.0.0/24' }, paths), 'cidr', /cidr: .*"10\.300\.0\.0"/);
  throwsField(() => resolveSpec({ cidr: '10.0.0.1/24' }, paths), 'cidr', /cidr: host bits set .*10\.0\.0\.0\/24/);
  throwsField(() => resolveSpec({ cidr: '10.0.0.0/x' }, paths), 'cidr', /cidr: .*"10\.0\.0\.0\/x"/);
  throwsField(() => resolveSpec({ cidr: '10.0.0.0/33' }, paths), 'cidr', /cidr: prefix length over 32/);
});
