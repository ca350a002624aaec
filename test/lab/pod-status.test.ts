/** The kubelet-like Pod status the lab writes (src/lab/cluster/pod-status.ts): pure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterObjects } from '../../src/lab/cluster/objects.js';
import { kubeletStatus } from '../../src/lab/cluster/pod-status.js';
import { resolveSpec } from '../../src/lab/spec.js';

const plan = resolveSpec({ name: 'ldunit', pods: ['a'], cidr: '10.9.0.0/24' }, { bpffs: '/sys/fs/bpf', stateDir: '/tmp' });
const pod = clusterObjects(plan, [{ kind: 'Pod', metadata: { name: 'a' }, spec: { containers: [{ name: 'web' }, { name: 'side' }] } }]).pods[0]?.object ?? {};
const started = new Date('2026-01-02T03:04:05.678Z');
const later = new Date('2026-01-02T03:09:00.100Z');

interface Condition { type: string; status: string; lastTransitionTime: string; reason?: string; message?: string }

function status(ready: boolean, hostIp?: string): Record<string, unknown> {
  return kubeletStatus(pod, { ip: '10.9.0.7', ...(hostIp !== undefined ? { hostIp } : {}), startedAt: started, ready, readySince: later })['status'] as Record<string, unknown>;
}

test('ready: Running, the pod and node addresses, start time, every condition True, each container ready', () => {
  const s = status(true, '172.30.0.11');
  assert.equal(s['phase'], 'Running');
  assert.equal(s['podIP'], '10.9.0.7');
  assert.deepEqual(s['podIPs'], [{ ip: '10.9.0.7' }]);
  assert.equal(s['hostIP'], '172.30.0.11');
  assert.deepEqual(s['hostIPs'], [{ ip: '172.30.0.11' }]);
  assert.equal(s['startTime'], '2026-01-02T03:04:05Z');
  const conds = s['conditions'] as Condition[];
  assert.deepEqual(conds.map((c) => [c.type, c.status]).sort(), [
    ['ContainersReady', 'True'], ['Initialized', 'True'], ['PodReadyToStartContainers', 'True'], ['PodScheduled', 'True'], ['Ready', 'True'],
  ]);
  assert.equal(conds.find((c) => c.type === 'Ready')?.lastTransitionTime, '2026-01-02T03:09:00Z', 'readiness changes carry their own time');
  assert.equal(conds.find((c) => c.type === 'PodScheduled')?.lastTransitionTime, '2026-01-02T03:04:05Z');
  assert.deepEqual((s['containerStatuses'] as { name: string; ready: boolean }[]).map((c) => [c.name, c.ready]), [['web', true], ['side', true]]);
});

test('not ready: Ready and ContainersReady False with the kubelet reason, containers not ready, still Running', () => {
  const s = status(false, '172.30.0.11');
  assert.equal(s['phase'], 'Running');
  const conds = s['conditions'] as Condition[];
  for (const type of ['Ready', 'ContainersReady']) {
    assert.deepEqual(conds.find((c) => c.type === type), {
      type, status: 'False', lastTransitionTime: '2026-01-02T03:09:00Z', reason: 'ContainersNotReady', message: 'containers with unready status: [web side]',
    });
  }
  assert.equal(conds.find((c) => c.type === 'Initialized')?.status, 'True');
  assert.deepEqual((s['containerStatuses'] as { ready: boolean }[]).map((c) => c.ready), [false, false]);
});

test('a node without an InternalIP: no hostIP', () => {
  const s = status(true);
  assert.equal('hostIP' in s, false);
  assert.equal('hostIPs' in s, false);
});
