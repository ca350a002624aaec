/**
 * The agent's restart and outage paths on a cluster lab, with real traffic:
 * kill -9 of the agent during a long-lived TCP stream and during policy
 * changes; an API server outage during which a fresh apiserver on the same
 * etcd changes a policy; a policy changed while the agent was dead and the
 * API server down when it starts. Pods: default/a (app=client), default/b (app=web, named port
 * http 5201/TCP). "Matches the API server" is checked twice: the traffic is
 * what the policies in the API server say, and a clean restart of the agent
 * (which compiles from the API server and writes the difference) leaves
 * the maps exactly as they are.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { tcpServe, tcpStream } from './helpers.js';
import { ALLOW_HTTP, CLIENT_POD, DENY_ALL_INGRESS, eventually, expectNow, startCluster, type TestCluster } from './cluster-helpers.js';

const manifests = [
  CLIENT_POD,
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b', labels: { app: 'web' } }, spec: { containers: [{ name: 'srv', ports: [{ name: 'http', containerPort: 5201 }] }] } },
];

let c: TestCluster;

before(async () => {
  c = await startCluster(['a', 'b'], manifests);
  await c.lab.kubectl(['apply', '-f', '-'], DENY_ALL_INGRESS + '---' + ALLOW_HTTP);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
  await expectNow(c, [['a', 'b', 'tcp', 5202, 'closed']]);
});

after(async () => {
  await c?.close();
});

/** The policy-relevant maps, as comparable text (conntrack, counters and events excluded). */
function dumpMaps(): string {
  const maps = openPinnedDatapathMaps(c.lab.plan.pinRoot);
  try {
    const rows = (m: { entries(): Iterable<readonly [unknown, unknown]> }): string[] =>
      [...m.entries()].map((e) => JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).sort();
    return JSON.stringify({ ipcache: rows(maps.ipcache), endpoints: rows(maps.endpoints), policy: rows(maps.policy) }, null, 1);
  } finally {
    maps.close();
  }
}

/** SIGTERM + start: a fresh compile from the API server must find nothing to change. */
async function assertCleanRestartChangesNothing(): Promise<void> {
  const before = dumpMaps();
  await c.lab.agent.stop();
  await c.lab.agent.start();
  assert.equal(dumpMaps(), before, 'a clean restart of the agent changed the maps: they did not match the API server');
}

test('kill -9 of the agent during a long-lived TCP stream: the stream survives, maps unchanged', async () => {
  const b = c.lab.pod('b');
  const before = dumpMaps();
  const server = await tcpServe(b.netns, b.ipv4, 5201);
  try {
    const stream = tcpStream(c.lab.pod('a').netns, b.ipv4, 5201, 8000);
    await sleep(1500);
    await c.lab.agent.kill();
    // Nobody manages the maps now: they keep enforcing.
    await expectNow(c, [['a', 'b', 'tcp', 5202, 'closed']]);
    const readyMs = await c.lab.agent.start();
    const summary = await stream;
    assert.equal(summary.error, undefined, JSON.stringify(summary));
    assert.equal(summary.server?.ok, true, JSON.stringify(summary));
    assert.equal(summary.server?.bytes, summary.written, 'every byte arrived, in order');
    assert.ok(summary.written > 1 << 20, `the stream moved data (${summary.written} bytes)`);
    assert.ok((summary.server?.maxGapMs ?? Infinity) < 1000, `no stall: longest pause ${summary.server?.maxGapMs} ms (agent ready after ${Math.round(readyMs)} ms)`);
    assert.equal(dumpMaps(), before, 'the restarted agent rewrote the maps');
  } finally {
    server.kill();
  }
  await expectNow(c, [['a', 'b', 'tcp', 5201, 'open'], ['a', 'b', 'tcp', 5202, 'closed']]);
});

test('kill -9 of the agent during policy changes: after the restart the maps match the API server', async () => {
  // Each change is killed at a different point of its way into the maps.
  const steps: { delayMs: number; apply: () => Promise<unknown>; want: 'open' | 'closed' }[] = [
    { delayMs: 0, apply: () => c.lab.kubectl(['delete', 'networkpolicy', 'web-allow-clients']), want: 'closed' },
    { delayMs: 30, apply: () => c.lab.kubectl(['apply', '-f', '-'], ALLOW_HTTP), want: 'open' },
    { delayMs: 80, apply: () => c.lab.kubectl(['label', 'pod', 'a', 'app=stranger', '--overwrite']), want: 'closed' },
    { delayMs: 150, apply: () => c.lab.kubectl(['label', 'pod', 'a', 'app=client', '--overwrite']), want: 'open' },
  ];
  for (const s of steps) {
    await s.apply();
    await sleep(s.delayMs);
    await c.lab.agent.kill();
    await c.lab.agent.start();
    // Ready means the first full sync is in the maps: no waiting for the change.
    await expectNow(c, [['a', 'b', 'tcp', 5201, s.want], ['a', 'b', 'tcp', 5202, 'closed']]);
  }
  await assertCleanRestartChangesNothing();
});

test('API server outage: the datapath keeps enforcing; changes made meanwhile are caught up', async () => {
  const cp = c.lab.controlPlane;
  await cp.stopApiserver();
  // A fresh apiserver on the same etcd changes the policy while the agent's one is down.
  await cp.withSecondApiserver((kubectl) => kubectl(['delete', 'networkpolicy', 'web-allow-clients']));
  await sleep(500);
  await expectNow(c, [['a', 'b', 'tcp', 5201, 'open'], ['a', 'b', 'tcp', 5202, 'closed']]); // the last state it saw
  await cp.startApiserver();
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed', 60_000);
  await c.lab.kubectl(['apply', '-f', '-'], ALLOW_HTTP); // and the watch is live again
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open', 20_000);

  // A change the agent never saw: made while it was dead, then the API server
  // goes down before the agent comes back, so it starts without one.
  await c.lab.agent.kill();
  await c.lab.kubectl(['delete', 'networkpolicy', 'web-allow-clients']);
  await cp.stopApiserver();
  await c.lab.agent.start({ wait: false });
  await sleep(1500);
  await expectNow(c, [['a', 'b', 'tcp', 5201, 'open']]); // still the last state it wrote
  await cp.startApiserver();
  await c.lab.agent.waitReady();
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed', 60_000);
  await assertCleanRestartChangesNothing();
});
