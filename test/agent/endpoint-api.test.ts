/** The endpoint API over a real unix socket, with the HTTP client the Node plugin uses. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EndpointApiServer, type CniExecPort } from '../../src/agent/endpoints/api.js';
import { request as httpRequest } from 'node:http';
import { EndpointClient } from '../../src/endpoint/client.js';
import { EndpointError } from '../../src/endpoint/contract.js';
import { EndpointRegistry } from '../../src/agent/endpoints/registry.js';
import { EndpointService } from '../../src/agent/endpoints/service.js';
import { EndpointStateFile } from '../../src/agent/endpoints/state-file.js';
import { AgentError } from '../../src/agent/errors.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { captureLog } from './helpers/logs.js';
import { ENDPOINT_SPEC as SPEC } from './helpers/objects.js';

interface Ctx {
  dir: string;
  socket: string;
  client: EndpointClient;
  registry: EndpointRegistry;
  syncs: { reason: string; wait: boolean }[];
  metrics: AgentMetrics;
  /** What syncEndpoints does; default: resolves. */
  sync: (wait: boolean) => Promise<void>;
}

async function withApi(fn: (c: Ctx) => Promise<void>, cni?: CniExecPort): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-api-'));
  const socket = join(dir, 'run', 'agent.sock');
  const registry = await EndpointRegistry.open({ store: new EndpointStateFile(join(dir, 'endpoints.json')) });
  const metrics = new AgentMetrics();
  const ctx: Ctx = { dir, socket, client: new EndpointClient(socket, { timeoutMs: 5000 }), registry, syncs: [], metrics, sync: () => Promise.resolve() };
  const log = captureLog().log;
  const endpoints = new EndpointService({
    registry,
    log,
    status: () => ({ ready: false, checks: [{ name: 'datapath', ok: false, detail: 'first sync not in the maps yet' }] }),
    syncEndpoints: (reason, wait) => {
      ctx.syncs.push({ reason, wait });
      return ctx.sync(wait);
    },
  });
  const server = new EndpointApiServer({ endpoints, metrics, log, ...(cni !== undefined ? { cni } : {}) });
  await server.listen(socket);
  try {
    await fn(ctx);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function isApiError(code: string, status: number, field?: string, message?: RegExp): (e: unknown) => boolean {
  return (e) => {
    if (!(e instanceof EndpointError)) return false;
    assert.equal(e.code, code, e.message);
    assert.equal(e.status, status);
    if (field !== undefined) assert.equal(e.field, field);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

test('the socket is mode 0600 inside a 0700 directory', async () => {
  await withApi(async (c) => {
    assert.ok(statSync(c.socket).isSocket());
    assert.equal(statSync(c.socket).mode & 0o777, 0o600);
    assert.equal(statSync(join(c.dir, 'run')).mode & 0o777, 0o700);
    assert.equal((await c.client.status()).ready, false);
  });
});

test('add → 201 after the datapath sync, repeat → 200, get, list, delete (idempotent)', async () => {
  await withApi(async (c) => {
    const added = await c.client.register(SPEC);
    assert.equal(added.created, true);
    assert.equal(added.endpoint.endpointId, 1);
    assert.equal(added.endpoint.ip, '10.9.0.5');
    assert.deepEqual(c.syncs, [{ reason: 'endpoint added', wait: true }]);
    const again = await c.client.register(SPEC);
    assert.equal(again.created, false);
    assert.deepEqual(again.endpoint, added.endpoint);
    assert.deepEqual(await c.client.get('c0ffee', 'eth0'), added.endpoint);
    assert.equal(await c.client.get('nope', 'eth0'), undefined);
    assert.deepEqual(await c.client.list(), [added.endpoint]);
    assert.deepEqual(await c.client.unregister('c0ffee', 'eth0'), added.endpoint);
    assert.equal(c.syncs.at(-1)?.wait, false, 'a delete does not wait for the datapath');
    assert.equal(await c.client.unregister('c0ffee', 'eth0'), undefined, 'a second DEL succeeds');
    assert.deepEqual(await c.client.list(), []);
    const text = await c.metrics.registry.metrics();
    assert.match(text, /sluice_agent_endpoint_requests_total\{op="add",status="201"\} 1/);
  });
});

test('bad input is 400 invalid-argument naming the field, with every problem listed', async () => {
  await withApi(async (c) => {
    await assert.rejects(c.client.register({ ...SPEC, ip: '10.9.0.300' }), isApiError('invalid-argument', 400, 'ip', /10\.9\.0\.300/));
    await assert.rejects(c.client.call('POST', '/v1/endpoints', { ...SPEC, hostIfindex: -1, podName: 'Bad' }), (e: unknown) => {
      assert.ok(e instanceof EndpointError);
      assert.deepEqual(e.problems?.map((p) => p.field), ['podName', 'hostIfindex']);
      return true;
    });
    await assert.rejects(c.client.call('POST', '/v1/endpoints', { ...SPEC, extra: 1 }), isApiError('invalid-argument', 400, 'extra', /unknown field/));
    await assert.rejects(c.client.call('POST', '/v1/endpoints', '{"containerId":'), isApiError('invalid-argument', 400, undefined, /not valid JSON/));
    await assert.rejects(c.client.call('POST', '/v1/endpoints', 'x', { 'content-type': 'text/plain' }), isApiError('invalid-argument', 400, undefined, /content-type/));
    await assert.rejects(c.client.call('POST', '/v1/endpoints', { ...SPEC, netns: 'x'.repeat(70_000) }), isApiError('invalid-argument', 400, undefined, /larger than/));
    await assert.rejects(c.client.get('bad/id', 'eth0'), isApiError('invalid-argument', 400, 'containerId'));
    await assert.rejects(c.client.call('GET', '/v1/endpoints/ok/a%2Fb'), isApiError('invalid-argument', 400, 'ifname'));
    await assert.rejects(c.client.call('PUT', '/v1/endpoints'), isApiError('invalid-argument', 400, undefined, /PUT is not allowed/));
    await assert.rejects(c.client.call('GET', '/v2/endpoints'), isApiError('not-found', 404, undefined, /under \/v1/));
    assert.equal(c.registry.size, 0, 'nothing was registered by bad requests');
  });
});

test('an IP held by another endpoint is 409 conflict', async () => {
  await withApi(async (c) => {
    await c.client.register(SPEC);
    await assert.rejects(c.client.register({ ...SPEC, containerId: 'other', hostIfindex: 22 }), isApiError('conflict', 409, 'ip', /c0ffee\/eth0/));
  });
});

test('when the policy does not reach the maps in time: 503 unavailable, endpoint stays registered', async () => {
  await withApi(async (c) => {
    c.sync = (wait) => (wait ? Promise.reject(new AgentError('unavailable', 'not in the datapath after 10 ms: map updates failing')) : Promise.resolve());
    await assert.rejects(c.client.register(SPEC), isApiError('unavailable', 503, undefined, /map updates failing/));
    assert.notEqual(c.registry.get('c0ffee', 'eth0'), undefined, 'the CNI DEL after a failed ADD cleans it up');
  });
});

test('status answers even when the agent is not ready', async () => {
  await withApi(async (c) => {
    const s = await c.client.status();
    assert.equal(s.ready, false);
    assert.equal(s.checks[0]?.name, 'datapath');
  });
});

test('no agent: the client reports unreachable (the CNI retries later)', async () => {
  const client = new EndpointClient(join(tmpdir(), `sluice-agent-none-${process.pid}.sock`));
  await assert.rejects(client.status(), isApiError('unreachable', 0, undefined, /ENOENT/));
});

test('a stale socket is replaced; a live one or a non-socket file is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-sock-'));
  const deps = async (): Promise<ConstructorParameters<typeof EndpointApiServer>[0]> => ({
    endpoints: new EndpointService({
      registry: await EndpointRegistry.open({ store: new EndpointStateFile(join(dir, 'e.json')) }),
      log: captureLog().log,
      status: () => ({ ready: true, checks: [] }),
      syncEndpoints: () => Promise.resolve(),
    }),
    metrics: new AgentMetrics(),
    log: captureLog().log,
  });
  try {
    const path = join(dir, 'agent.sock');
    // Someone is serving the path: refused, and their socket is left alone.
    const other = createServer();
    await new Promise<void>((r) => other.listen(path, r));
    await assert.rejects(new EndpointApiServer(await deps()).listen(path),
      (e: unknown) => e instanceof AgentError && e.field === 'endpointSocket' && /another process is serving/.test(e.message));
    // A socket left by a dead agent: a second name for the inode outlives the listener.
    linkSync(path, join(dir, 'stale.sock'));
    await new Promise<void>((r) => other.close(() => r()));
    renameSync(join(dir, 'stale.sock'), path);
    assert.ok(statSync(path).isSocket());
    const s = new EndpointApiServer(await deps());
    await s.listen(path);
    assert.equal((await new EndpointClient(path).status()).ready, true);
    await s.close();
    // Not a socket: never deleted.
    writeFileSync(path, 'precious');
    await assert.rejects(new EndpointApiServer(await deps()).listen(path), /is not a socket: not touching it/);
    assert.equal(readFileSync(path, 'utf8'), 'precious');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A raw HTTP exchange on the socket: status, headers, body bytes. */
function raw(socket: string, method: string, path: string, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: socket, method, path, headers: body !== undefined ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('POST /v1/cni/exec: the outcome as raw bytes with exit code and stdout length; a fallback is 421; GET counts', async () => {
  const seen: unknown[] = [];
  const cni: CniExecPort = {
    exec: (body) => {
      seen.push(body);
      const env = (body as { env: { CNI_COMMAND: string } }).env;
      return Promise.resolve(env.CNI_COMMAND === 'ADD'
        ? { kind: 'done', outcome: { stdout: '{"cniVersion":"1.1.0","ips":["é"]}\n', stderr: 'warn\n', exitCode: 0 } }
        : { kind: 'fallback', reason: 'not-here', detail: 'other netns' });
    },
    stats: () => ({ done: 1, fallback: { 'not-here': 1, 'not-mine': 0, 'not-in-process': 0 } }),
  };
  await withApi(async (c) => {
    const done = await raw(c.socket, 'POST', '/v1/cni/exec', JSON.stringify({ env: { CNI_COMMAND: 'ADD' }, stdin: '{}', namespaces: {} }));
    assert.equal(done.status, 200);
    assert.equal(done.headers['x-sluice-cni-exit'], '0');
    const outLen = Number(done.headers['x-sluice-cni-stdout']);
    assert.equal(outLen, Buffer.byteLength('{"cniVersion":"1.1.0","ips":["é"]}\n'));
    assert.equal(done.body.subarray(0, outLen).toString('utf8'), '{"cniVersion":"1.1.0","ips":["é"]}\n');
    assert.equal(done.body.subarray(outLen).toString('utf8'), 'warn\n');
    const fb = await raw(c.socket, 'POST', '/v1/cni/exec', JSON.stringify({ env: { CNI_COMMAND: 'DEL' }, stdin: '{}', namespaces: {} }));
    assert.equal(fb.status, 421);
    assert.deepEqual(JSON.parse(fb.body.toString('utf8')), { fallback: 'not-here', detail: 'other netns' });
    assert.equal(seen.length, 2);
    const stats = await raw(c.socket, 'GET', '/v1/cni/exec');
    assert.deepEqual(JSON.parse(stats.body.toString('utf8')), { done: 1, fallback: { 'not-here': 1, 'not-mine': 0, 'not-in-process': 0 } });
    assert.equal((await raw(c.socket, 'PUT', '/v1/cni/exec', '{}')).status, 400);
  }, cni);
  // Without a CNI port (an agent that does not run invocations): 404, on which the shim falls back.
  await withApi(async (c) => {
    assert.equal((await raw(c.socket, 'POST', '/v1/cni/exec', '{}')).status, 404);
  });
});
