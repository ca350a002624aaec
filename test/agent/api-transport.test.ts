/** The API server transport over real HTTP against a fake API server. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiServerTransport } from '../../src/agent/k8s/api-transport.js';
import { loadKubeConfig } from '../../src/agent/k8s/kubeconfig.js';
import { KubeApiError, type WatchEvent } from '../../src/agent/k8s/transport.js';
import { AgentError } from '../../src/agent/errors.js';
import { FakeApiServer } from './helpers/fake-apiserver.js';

async function withServer(fn: (api: FakeApiServer, transport: ApiServerTransport) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-ct-'));
  const api = new FakeApiServer();
  await api.start();
  try {
    api.writeKubeconfig(join(dir, 'kubeconfig'));
    const transport = new ApiServerTransport(loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig'), inCluster: false }), { listTimeoutMs: 2000 });
    await fn(api, transport);
  } finally {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('lists pages with the kubeconfig token, keeping the JSON raw', async () => {
  await withServer(async (api, t) => {
    for (const n of ['a', 'b', 'c']) api.put('/api/v1/namespaces', { metadata: { name: n, managedFields: [{ m: 1 }] } });
    const p1 = await t.list('/api/v1/namespaces', { limit: '2' });
    assert.equal(p1.items.length, 2);
    assert.equal(p1.continueToken, '2');
    assert.equal(p1.resourceVersion, '103');
    assert.deepEqual((p1.items[0] as { metadata: { managedFields: unknown } }).metadata.managedFields, [{ m: 1 }]);
    const p2 = await t.list('/api/v1/namespaces', { limit: '2', continue: '2' });
    assert.equal(p2.items.length, 1);
    assert.equal(p2.continueToken, undefined);
    assert.ok(api.requests.includes('GET /api/v1/namespaces?limit=2&continue=2'));
  });
});

test('an error status becomes a KubeApiError with the status and reason', async () => {
  await withServer(async (api, t) => {
    api.failWith = 403;
    await assert.rejects(t.list('/api/v1/pods', {}), (e: unknown) => e instanceof KubeApiError && e.status === 403 && e.reason === 'InternalError' && /told to fail/.test(e.message));
  });
});

test('an unreachable server is a KubeApiError with status 0', async () => {
  await withServer(async (api, t) => {
    await api.stop();
    await assert.rejects(t.list('/api/v1/pods', {}), (e: unknown) => e instanceof KubeApiError && e.status === 0 && /ECONNREFUSED/.test(e.message));
  });
});

test('watch streams events and stop() ends it without a close callback', async () => {
  await withServer(async (api, t) => {
    api.put('/api/v1/pods', { metadata: { name: 'p0', namespace: 'x' } });
    const events: WatchEvent[] = [];
    const closes: (Error | null)[] = [];
    const h = t.watch('/api/v1/pods', { resourceVersion: '101' }, { onEvent: (e) => events.push(e), onClose: (e) => closes.push(e) });
    await until(() => api.watching('/api/v1/pods') === 1, 'the watch to open');
    api.put('/api/v1/pods', { metadata: { name: 'p1', namespace: 'x' } });
    api.delete('/api/v1/pods', 'x', 'p0');
    await until(() => events.length === 2, 'two events');
    assert.deepEqual(events.map((e) => e.type), ['ADDED', 'DELETED']);
    h.stop();
    await until(() => api.watching('/api/v1/pods') === 0, 'the stream to close');
    await sleep(50);
    assert.deepEqual(closes, []);
  });
});

test('a watch event larger than a network chunk, with multi-byte text, arrives whole', async () => {
  await withServer(async (api, t) => {
    const events: WatchEvent[] = [];
    t.watch('/api/v1/pods', { resourceVersion: '100' }, { onEvent: (e) => events.push(e), onClose: () => undefined });
    await until(() => api.watching('/api/v1/pods') === 1, 'the watch to open');
    const big = 'ü€'.repeat(200_000);
    api.put('/api/v1/pods', { metadata: { name: 'p0', namespace: 'x', annotations: { big } } });
    api.put('/api/v1/pods', { metadata: { name: 'p1', namespace: 'x' } });
    await until(() => events.length === 2, 'two events');
    assert.equal((events[0]?.object as { metadata: { annotations: { big: string } } }).metadata.annotations.big, big);
    assert.equal((events[1]?.object as { metadata: { name: string } }).metadata.name, 'p1');
  });
});

test('an expired version arrives as an ERROR event with code 410, then the stream closes', async () => {
  await withServer(async (api, t) => {
    api.put('/api/v1/pods', { metadata: { name: 'p0', namespace: 'x' } });
    api.compact();
    const events: WatchEvent[] = [];
    const closes: (Error | null)[] = [];
    t.watch('/api/v1/pods', { resourceVersion: '50' }, { onEvent: (e) => events.push(e), onClose: (e) => closes.push(e) });
    await until(() => closes.length === 1, 'the close');
    assert.equal(events[0]?.type, 'ERROR');
    assert.equal((events[0]?.object as { code: number }).code, 410);
  });
});

test('a watch refused with an HTTP error closes with that status', async () => {
  await withServer(async (api, t) => {
    api.failWith = 410;
    const closes: (Error | null)[] = [];
    t.watch('/api/v1/pods', { resourceVersion: '1' }, { onEvent: () => undefined, onClose: (e) => closes.push(e) });
    await until(() => closes.length === 1, 'the close');
    assert.ok(closes[0] instanceof KubeApiError && closes[0].status === 410);
  });
});

test('the server going away closes the watch with an error or a normal end, once', async () => {
  await withServer(async (api, t) => {
    const closes: (Error | null)[] = [];
    t.watch('/api/v1/pods', { resourceVersion: '100' }, { onEvent: () => undefined, onClose: (e) => closes.push(e) });
    await until(() => api.watching('/api/v1/pods') === 1, 'the watch to open');
    await api.stop();
    await until(() => closes.length === 1, 'the close');
    await sleep(50);
    assert.equal(closes.length, 1);
  });
});

test('kubeconfig problems name the setting', () => {
  assert.throws(() => loadKubeConfig({ kubeconfig: '/nonexistent/kubeconfig', inCluster: false }),
    (e: unknown) => e instanceof AgentError && e.field === 'kubeconfig' && /nonexistent/.test(e.message));
  assert.throws(() => loadKubeConfig({ inCluster: false }), (e: unknown) => e instanceof AgentError && e.code === 'invalid-config');
});

test('a 401 makes the next request run the exec plugin again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-ct-'));
  const api = new FakeApiServer();
  await api.start();
  try {
    // The plugin hands out whatever token the file holds now.
    writeFileSync(join(dir, 'token'), 'stale');
    writeFileSync(join(dir, 'plugin.sh'),
      `#!/bin/sh\necho "{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",\\"status\\":{\\"token\\":\\"$(cat ${dir}/token)\\"}}"\n`);
    chmodSync(join(dir, 'plugin.sh'), 0o755);
    writeFileSync(join(dir, 'kubeconfig'), JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
      clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: join(dir, 'plugin.sh'), interactiveMode: 'Never' } } }],
      contexts: [{ name: 'c', context: { cluster: 'fake', user: 'u' } }],
    }));
    const t = new ApiServerTransport(loadKubeConfig({ kubeconfig: join(dir, 'kubeconfig'), inCluster: false }));
    await assert.rejects(t.list('/api/v1/pods', {}), (e: unknown) => e instanceof KubeApiError && e.status === 401);
    writeFileSync(join(dir, 'token'), api.token);
    const page = await t.list('/api/v1/pods', {});
    assert.deepEqual(page.items, []);
  } finally {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
