/**
 * The lab as a kubelet towards the real control plane: Pod status written
 * through the status subresource (addresses, Running, Ready), so the real
 * kube-controller-manager makes EndpointSlices for a Service selecting lab
 * pods; readiness flipped by the lab shows in the slices; a graceful delete
 * leaves the pod terminating and serving until it is finished, then its
 * endpoint, object and namespace go. Two nodes: a (client) and c (web) on
 * node 1, b (web) on node 2.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { until } from '../agent/helpers/wait.js';
import { describeEndpoints, applyService, clusterIpService, sliceEndpoints, waitEndpoints, type SliceEndpoint } from '../lb/helpers/services.js';
import { ask, serveName, type NameServer } from '../lb/helpers/traffic.js';
import { startCluster, type TestCluster } from './cluster-helpers.js';
import { sh } from './helpers.js';

const web = (name: string): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'web' } },
  spec: { containers: [{ name: 'srv', ports: [{ name: 'http', containerPort: 8080 }] }] },
});
const manifests = [
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } },
  web('b'),
  web('c'),
];

let c: TestCluster;
const servers: NameServer[] = [];

before(async () => {
  c = await startCluster(['a', 'b', 'c'], manifests, { family: 'kp', cluster: { nodes: 2 } });
  for (const p of ['b', 'c']) servers.push(await serveName(c.lab.pod(p).netns, c.lab.pod(p).ipv4, 8080, p));
  await applyService((args, input) => c.lab.kubectl(args, input), clusterIpService('web', { app: 'web' }, [{ name: 'http', port: 80, targetPort: 'http' }]));
});

after(async () => {
  for (const s of servers) s.kill();
  await c?.close();
});

const kubectl = (args: readonly string[], input?: string): Promise<string> => c.lab.kubectl(args, input);
const ep = (eps: readonly SliceEndpoint[], pod: string): SliceEndpoint | undefined => eps.find((e) => e.address === c.lab.pod(pod).ipv4);

test('a Service selecting lab pods gets an EndpointSlice with their addresses, ready, on their nodes; the Pods carry what a kubelet reports', async () => {
  const eps = await waitEndpoints(kubectl, 'web', 'b and c ready', (x) => x.length === 2 && x.every((e) => e.ready));
  assert.deepEqual(eps.map((e) => [e.pod, e.address, e.nodeName, e.ready, e.serving, e.terminating]).sort(), [
    ['b', c.lab.pod('b').ipv4, c.lab.nodes[1]?.plan.name, true, true, false],
    ['c', c.lab.pod('c').ipv4, c.lab.nodes[0]?.plan.name, true, true, false],
  ]);
  const pod = JSON.parse(await kubectl(['get', 'pod', 'b', '-o', 'json'])) as { status: Record<string, unknown> };
  assert.equal(pod.status['phase'], 'Running');
  assert.equal(pod.status['podIP'], c.lab.pod('b').ipv4);
  assert.equal(pod.status['hostIP'], c.lab.nodes[1]?.plan.internalIp, "hostIP is node 2's InternalIP");
  assert.match(String(pod.status['startTime']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const conds = (pod.status['conditions'] as { type: string; status: string }[]).filter((x) => x.type === 'Ready' || x.type === 'ContainersReady');
  assert.deepEqual(conds.map((x) => `${x.type}=${x.status}`).sort(), ['ContainersReady=True', 'Ready=True']);
});

test('not ready flips the endpoint to ready=false (not serving, not terminating); ready again flips it back', async () => {
  await c.lab.setPodReady('b', false);
  let eps = await waitEndpoints(kubectl, 'web', 'b not ready', (x) => ep(x, 'b')?.ready === false);
  assert.deepEqual(describeEndpoints(eps), describeEndpoints([
    { address: c.lab.pod('b').ipv4, ready: false, serving: false, terminating: false },
    { address: c.lab.pod('c').ipv4, ready: true, serving: true, terminating: false },
  ].sort((x, y) => x.address.localeCompare(y.address))));
  await c.lab.setPodReady('b', true);
  eps = await waitEndpoints(kubectl, 'web', 'b ready again', (x) => ep(x, 'b')?.ready === true);
  assert.equal(eps.every((e) => e.ready && e.serving && !e.terminating), true, describeEndpoints(eps).join('; '));
});

test('a graceful delete: terminating and serving (and still answering) until finished, then the endpoint, the Pod and its namespace are gone', async () => {
  const { deadline } = await c.lab.deletePod('c', 300);
  assert.ok(deadline.getTime() > Date.now() + 250_000, 'the deadline is the grace period away');
  const eps = await waitEndpoints(kubectl, 'web', 'c terminating', (x) => ep(x, 'c')?.terminating === true);
  assert.deepEqual(describeEndpoints(eps.filter((e) => e.address === c.lab.pod('c').ipv4)), [`${c.lab.pod('c').ipv4} ready=false serving=true terminating=true`]);
  assert.equal(ep(eps, 'b')?.ready, true, 'b untouched');
  const meta = JSON.parse(await kubectl(['get', 'pod', 'c', '-o', 'jsonpath={.metadata}'])) as { deletionTimestamp?: string; deletionGracePeriodSeconds?: number };
  assert.equal(meta.deletionGracePeriodSeconds, 300);
  assert.ok(meta.deletionTimestamp !== undefined, 'deletionTimestamp set');
  const r = await ask(c.lab.pod('a').netns, c.lab.pod('c').ipv4, 8080);
  assert.deepEqual(r.result === 'answered' ? r.name : r, 'c', 'the terminating pod still serves');

  const cNetns = c.lab.pod('c').netns;
  await c.lab.finishPod('c');
  await waitEndpoints(kubectl, 'web', 'c gone', (x) => x.length === 1 && ep(x, 'b') !== undefined);
  const got = await sh(c.lab.controlPlane.binaries.kubectl, ['--kubeconfig', c.lab.kubeconfig, 'get', 'pod', 'c']);
  assert.match(got.stderr, /NotFound/, 'the Pod object is gone');
  assert.equal((await sh('ip', ['netns', 'list'])).stdout.split('\n').some((l) => l.split(' ')[0] === cNetns), false, "c's namespace is gone");
  assert.equal(c.lab.livePlan.pods.some((p) => p.name === 'c'), false, 'c is out of the plan');
});

test('a graceful delete that runs out: the lab finishes the pod when the grace period ends', async () => {
  const bIp = c.lab.pod('b').ipv4;
  const t0 = Date.now();
  await c.lab.deletePod('b', 4);
  await waitEndpoints(kubectl, 'web', 'b terminating', (x) => x.find((e) => e.address === bIp)?.terminating === true, 4000);
  await until('b deleted after its grace period', async () => (await sliceEndpoints(kubectl, 'web')).length === 0, 20_000);
  const ms = Date.now() - t0;
  assert.ok(ms >= 4000, `not before the grace period ended (${ms} ms)`);
  assert.equal(c.lab.livePlan.pods.map((p) => p.name).join(','), 'a');
});
