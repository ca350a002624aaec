/** What the lab does with a pod's object as a kubelet would (src/lab/cluster/pod-lifecycle.ts), with kubectl and the sandbox faked. */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { PodLifecycle } from '../../src/lab/cluster/pod-lifecycle.js';
import { LabError } from '../../src/lab/errors.js';

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b', namespace: 'web' }, spec: { containers: [{ name: 'srv' }] } };

function fixture(): { life: PodLifecycle; calls: string[] } {
  const calls: string[] = [];
  let t = Date.parse('2026-01-02T03:04:05Z');
  const life = new PodLifecycle({
    kubectl: (args) => {
      calls.push(`kubectl ${args.join(' ')}`);
      return Promise.resolve('');
    },
    teardown: (name) => {
      calls.push(`teardown ${name}`);
      return Promise.resolve();
    },
    now: () => new Date((t += 1000)),
  });
  return { life, calls };
}

const statusOf = (call: string | undefined): Record<string, unknown> =>
  (JSON.parse(call?.slice(call.indexOf('{')) ?? '{}') as { status: Record<string, unknown> }).status;

test('running, then not ready and ready: status patches of the pod in its namespace; a repeated state writes nothing', async () => {
  const { life, calls } = fixture();
  await life.running('b', 'web', pod, { ip: '10.9.1.2', hostIp: '172.30.0.12' });
  await life.setReady('b', false);
  await life.setReady('b', false);
  await life.setReady('b', true);
  assert.equal(calls.length, 3);
  for (const c of calls) assert.match(c, /^kubectl patch pod b -n web --subresource=status --type=merge -p \{/);
  const ready = (c: string | undefined): unknown => (statusOf(c)['conditions'] as { type: string; status: string }[]).find((x) => x.type === 'Ready')?.status;
  assert.deepEqual(calls.map(ready), ['True', 'False', 'True']);
  assert.equal(statusOf(calls[0])['hostIP'], '172.30.0.12');
  assert.equal(statusOf(calls[2])['startTime'], statusOf(calls[0])['startTime'], 'the start time stays');
});

test('a graceful delete: the API delete with its grace period now; sandbox and final delete (grace 0) when the period ends', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { life, calls } = fixture();
    await life.running('b', 'web', pod, { ip: '10.9.1.2' });
    calls.length = 0;
    await life.delete('b', 30);
    assert.deepEqual(calls, ['kubectl delete pod b -n web --grace-period=30 --wait=false']);
    assert.equal(life.terminating('b'), true);
    await assert.rejects(life.delete('b', 5), (e: unknown) => e instanceof LabError && /being deleted already/.test(e.message));
    mock.timers.tick(29_999);
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.length, 1, 'nothing before the grace period ends');
    mock.timers.tick(1);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(calls.slice(1), ['teardown b', 'kubectl delete pod b -n web --grace-period=0 --force --ignore-not-found --wait=false']);
    await assert.rejects(life.setReady('b', false), (e: unknown) => e instanceof LabError && e.code === 'unknown-pod');
  } finally {
    mock.timers.reset();
  }
});

test('finish before the period ends runs the teardown once; grace 0 finishes at once; close stops the timers', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { life, calls } = fixture();
    for (const p of ['b', 'c', 'd']) await life.running(p, 'web', pod, { ip: '10.9.1.2' });
    calls.length = 0;
    await life.delete('b', 60);
    await Promise.all([life.finish('b'), life.finish('b')]);
    mock.timers.tick(60_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.filter((c) => c === 'teardown b').length, 1);
    await life.delete('c', 0);
    assert.deepEqual(calls.slice(-2), ['teardown c', 'kubectl delete pod c -n web --grace-period=0 --force --ignore-not-found --wait=false']);
    await life.delete('d', 10);
    life.close();
    mock.timers.tick(10_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.includes('teardown d'), false, 'a closed lifecycle finishes nothing (the lab DELs every pod itself)');
    await assert.rejects(life.delete('d', -1), (e: unknown) => e instanceof LabError && e.code === 'invalid-spec');
  } finally {
    mock.timers.reset();
  }
});
