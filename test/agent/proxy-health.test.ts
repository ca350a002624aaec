/**
 * kube-proxy's healthz and status ports as the agent serves them
 * (src/agent/proxy-health.ts): the answers from the load balancer's sync
 * status and the Node, then the same over real HTTP on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { nodeEligible, PROXY_MODE, proxyHealth, ProxyPorts, TO_BE_DELETED_TAINT } from '../../src/agent/proxy-health.js';
import type { SlimNode } from '../../src/agent/k8s/resources.js';
import type { OwnerStatus } from '../../src/agent/sync-loop.js';
import { captureLog } from './helpers/logs.js';

const T0 = Date.parse('2026-12-07T12:00:00.000Z');
const TIMEOUT = 60_000;
const iso = (ms: number): string => new Date(ms).toISOString();
const lbStatus = (extra: Partial<OwnerStatus> = {}): OwnerStatus => ({ name: 'lb', appliedRevision: 3, failing: [], appliedAt: T0, ...extra });
const node = (extra: { deletionTimestamp?: string; taints?: { key: string }[] } = {}): SlimNode => ({
  metadata: { name: 'n1', ...(extra.deletionTimestamp !== undefined ? { deletionTimestamp: extra.deletionTimestamp } : {}) },
  spec: { ...(extra.taints !== undefined ? { taints: extra.taints } : {}) },
});

test('healthz: 200 while nothing is pending or a change waits less than the timeout; lastUpdated is now when healthy, as kube-proxy', () => {
  const now = T0 + 5000;
  const idle = proxyHealth(lbStatus(), now, TIMEOUT, { eligible: true });
  assert.deepEqual(idle, {
    status: 200,
    body: { lastUpdated: iso(now), currentTime: iso(now), nodeEligible: true, healthy: true, status: { IPv4: { lastUpdated: iso(T0), healthy: true } } },
  });
  const waiting = proxyHealth(lbStatus({ pendingSince: now - TIMEOUT + 1 }), now, TIMEOUT, { eligible: true });
  assert.equal(waiting.status, 200, 'a change pending for less than the timeout is not late');
});

test('healthz: 503 once a change has waited the timeout (maps failing, or no sync); lastUpdated is the last completed round', () => {
  const now = T0 + 120_000;
  const late = proxyHealth(lbStatus({ pendingSince: now - TIMEOUT }), now, TIMEOUT, { eligible: true });
  assert.deepEqual(late, {
    status: 503,
    body: { lastUpdated: iso(T0), currentTime: iso(now), nodeEligible: true, healthy: false, status: { IPv4: { lastUpdated: iso(T0), healthy: false } } },
  });
  const never = proxyHealth({ name: 'lb', appliedRevision: 0, failing: [], pendingSince: T0 }, now, TIMEOUT, { eligible: true });
  assert.equal(never.status, 503);
  assert.equal(never.body.lastUpdated, '0001-01-01T00:00:00Z', 'Go\'s zero time, as kube-proxy before its first sync');
});

test('healthz: 503 on a node going away (nodeEligible false, healthy true); livez leaves the node out', () => {
  const now = T0 + 1000;
  const draining = proxyHealth(lbStatus(), now, TIMEOUT, { eligible: false });
  assert.equal(draining.status, 503);
  assert.equal(draining.body.nodeEligible, false);
  assert.equal(draining.body.healthy, true);
  assert.equal(draining.body.lastUpdated, iso(T0));
  const live = proxyHealth(lbStatus(), now, TIMEOUT);
  assert.equal(live.status, 200);
  assert.equal('nodeEligible' in live.body, false);
});

test('a node is eligible unless missing, being deleted, or tainted for removal by the cluster autoscaler', () => {
  assert.equal(nodeEligible(node()), true);
  assert.equal(nodeEligible(node({ taints: [{ key: 'node.kubernetes.io/unschedulable' }] })), true, 'another taint');
  assert.equal(nodeEligible(undefined), false);
  assert.equal(nodeEligible(node({ deletionTimestamp: iso(T0) })), false);
  assert.equal(nodeEligible(node({ taints: [{ key: TO_BE_DELETED_TAINT }] })), false);
});

interface Answer {
  readonly status: number;
  readonly type: string | undefined;
  readonly body: string;
}

function get(port: number, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('over HTTP: healthz (/healthz, /livez) and status (/proxyMode, /healthz, /metrics) answer as kube-proxy\'s ports', async () => {
  let now = T0 + 1000;
  let lb = lbStatus();
  let current: SlimNode | undefined = node();
  const metrics = new AgentMetrics();
  const ports = new ProxyPorts({ lb: () => lb, node: () => current, now: () => now, timeoutMs: TIMEOUT, metrics, log: captureLog().log });
  try {
    const bound = await ports.listen({ healthz: { host: '127.0.0.1', port: 0 }, status: { host: '127.0.0.1', port: 0 } });
    const hp = bound.healthz !== undefined && 'port' in bound.healthz ? bound.healthz.port : 0;
    const sp = bound.status !== undefined && 'port' in bound.status ? bound.status.port : 0;
    assert.ok(hp > 0 && sp > 0 && hp !== sp, JSON.stringify(bound));

    const ok = await get(hp, '/healthz');
    assert.equal(ok.status, 200);
    assert.equal(ok.type, 'application/json');
    assert.deepEqual(JSON.parse(ok.body), proxyHealth(lb, now, TIMEOUT, { eligible: true }).body);
    assert.match(ok.body, /"lastUpdated":/, 'what the e2e "should check kube-proxy urls" looks for');

    now += TIMEOUT;
    lb = lbStatus({ pendingSince: T0 });
    assert.equal((await get(hp, '/healthz')).status, 503, 'a change pending for the timeout');
    assert.equal((await get(hp, '/livez')).status, 503);
    lb = lbStatus({ appliedAt: now });
    current = node({ taints: [{ key: TO_BE_DELETED_TAINT }] });
    const draining = await get(hp, '/healthz');
    assert.equal(draining.status, 503);
    assert.equal((JSON.parse(draining.body) as { nodeEligible: boolean }).nodeEligible, false);
    assert.equal((await get(hp, '/livez')).status, 200, 'livez: the proxy itself is fine');
    assert.equal((await get(hp, '/proxyMode')).status, 404, 'not a healthz path');
    assert.equal((await get(hp, '/healthz', 'POST')).status, 405);

    const mode = await get(sp, '/proxyMode');
    assert.deepEqual([mode.status, mode.body], [200, PROXY_MODE]);
    const sh = await get(sp, '/healthz');
    assert.deepEqual([sh.status, sh.body], [200, 'ok']);
    const m = await get(sp, '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.body, /^# HELP sluice_agent_/m, 'the agent\'s metrics');
  } finally {
    await ports.close();
  }
});

test('a port already taken (kube-proxy still on the node) is logged with its config key and tried again until it is free; the other port is served meanwhile', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as AddressInfo).port;
  const logs = captureLog();
  const ports = new ProxyPorts({ lb: () => undefined, node: () => undefined, now: () => T0, timeoutMs: TIMEOUT, metrics: new AgentMetrics(), log: logs.log, retryMs: 50 });
  let released = false;
  try {
    const bound = await ports.listen({ healthz: { host: '127.0.0.1', port: 0 }, status: { host: '127.0.0.1', port } });
    assert.deepEqual(Object.keys(bound), ['healthz'], 'healthz opened, status not yet');
    assert.deepEqual(ports.listening(), ['healthz']);
    const warning = logs.lines().find((l) => l['field'] === 'lb.statusListen');
    assert.match(String(warning?.['msg']), /^kube-proxy's status port: lb\.statusListen: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*; trying again in 50 ms$/);
    const hp = bound.healthz !== undefined && 'port' in bound.healthz ? bound.healthz.port : 0;
    assert.equal((await get(hp, '/livez')).status, 200, 'the free port answers meanwhile');
    await new Promise<void>((resolve) => taken.close(() => resolve()));
    released = true;
    const deadline = Date.now() + 5000;
    while (!ports.listening().includes('status') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(ports.listening(), ['healthz', 'status'], 'bound once the port is free');
    assert.equal((await get(port, '/proxyMode')).body, PROXY_MODE);
  } finally {
    await ports.close();
    if (!released) await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
  assert.deepEqual(ports.listening(), []);
});
