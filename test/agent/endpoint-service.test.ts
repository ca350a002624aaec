/**
 * The endpoint service, the agent's EndpointPort (what the in-process CNI
 * plugin calls directly): registrations validated, persisted, logged and
 * synced before they resolve; every failure an EndpointError with the
 * contract's code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EndpointRegistry } from '../../src/agent/endpoints/registry.js';
import { EndpointService, toEndpointError } from '../../src/agent/endpoints/service.js';
import { EndpointStateFile } from '../../src/agent/endpoints/state-file.js';
import { AgentError } from '../../src/agent/errors.js';
import { EndpointError, type NodeInfo } from '../../src/endpoint/contract.js';
import { captureLog, type CapturedLog } from './helpers/logs.js';
import { ENDPOINT_SPEC as SPEC } from './helpers/objects.js';

interface Ctx {
  service: EndpointService;
  registry: EndpointRegistry;
  log: CapturedLog;
  syncs: { reason: string; wait: boolean }[];
  /** What syncEndpoints does; default: resolves. */
  sync: (wait: boolean) => Promise<void>;
}

async function withService(fn: (c: Ctx) => Promise<void>, node?: () => NodeInfo, maxEndpointId?: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-svc-'));
  try {
    const registry = await EndpointRegistry.open({ store: new EndpointStateFile(join(dir, 'endpoints.json')), ...(maxEndpointId !== undefined ? { maxEndpointId } : {}) });
    const log = captureLog();
    const ctx = { registry, log, syncs: [], sync: () => Promise.resolve() } as unknown as Ctx;
    ctx.service = new EndpointService({
      registry,
      log: log.log,
      status: () => ({ ready: true, checks: [{ name: 'datapath', ok: true, detail: 'in sync' }] }),
      syncEndpoints: (reason, wait) => {
        ctx.syncs.push({ reason, wait });
        return ctx.sync(wait);
      },
      ...(node !== undefined ? { node } : {}),
    });
    await fn(ctx);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function rejectsWith(code: string, field?: string, message?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof EndpointError, String(e));
    assert.equal(e.code, code, e.message);
    assert.equal(e.field, field);
    if (message !== undefined) assert.match(e.message, message);
    assert.equal(e.status, undefined, 'no HTTP status: nothing crossed a socket');
    return true;
  };
}

test('register waits for its sync, repeats wait too, unregister does not; each change logged once', async () => {
  await withService(async (c) => {
    let synced = false;
    c.sync = async (wait) => {
      if (wait) await new Promise((r) => setImmediate(r));
      synced = true;
    };
    const first = await c.service.register(SPEC);
    assert.equal(synced, true, 'resolved only after the sync it asked for');
    assert.equal(first.created, true);
    assert.equal(first.endpoint.endpointId, 1);
    assert.deepEqual(c.registry.get('c0ffee', 'eth0'), first.endpoint, 'in the registry');
    const again = await c.service.register(SPEC);
    assert.deepEqual(again, { endpoint: first.endpoint, created: false });
    const moved = await c.service.register({ ...SPEC, hostIfname: 'lxc2', hostIfindex: 22 });
    assert.equal(moved.created, false);
    assert.equal(moved.endpoint.endpointId, 1, 'an update keeps the id');
    assert.deepEqual(await c.service.get('c0ffee', 'eth0'), moved.endpoint);
    assert.deepEqual(await c.service.list(), [moved.endpoint]);
    assert.deepEqual(await c.service.unregister('c0ffee', 'eth0'), moved.endpoint);
    assert.equal(await c.service.unregister('c0ffee', 'eth0'), undefined, 'a second unregister succeeds with nothing');
    assert.equal(await c.service.get('c0ffee', 'eth0'), undefined);
    assert.deepEqual(c.syncs, [
      { reason: 'endpoint added', wait: true },
      { reason: 'endpoint re-added', wait: true },
      { reason: 'endpoint re-added', wait: true },
      { reason: 'endpoint deleted', wait: false },
    ]);
    assert.equal(c.log.find('endpoint registered').length, 1);
    assert.equal(c.log.find('endpoint updated').length, 1, 'the unchanged repeat is not logged');
    assert.equal(c.log.find('endpoint deleted').length, 1);
  });
});

test('an invalid registration is invalid-argument listing every problem; nothing is registered or synced', async () => {
  await withService(async (c) => {
    await assert.rejects(c.service.register({ ...SPEC, podName: 'Bad', hostIfindex: -1 }), (e: unknown) => {
      rejectsWith('invalid-argument', 'podName')(e);
      assert.deepEqual((e as EndpointError).problems?.map((p) => p.field), ['podName', 'hostIfindex']);
      return true;
    });
    await assert.rejects(c.service.registerBody('not an object'), rejectsWith('invalid-argument', undefined, /must be a JSON object/));
    assert.equal(c.registry.size, 0);
    assert.deepEqual(c.syncs, []);
  });
});

test('the registry\'s and the sync\'s AgentErrors keep their code: conflict, exhausted, unavailable', async () => {
  await withService(async (c) => {
    await c.service.register(SPEC);
    await assert.rejects(c.service.register({ ...SPEC, containerId: 'other', hostIfindex: 22 }), rejectsWith('conflict', 'ip', /c0ffee\/eth0/));
    await assert.rejects(c.service.register({ ...SPEC, containerId: 'third', ip: '10.9.0.6', hostIfindex: 23 }), rejectsWith('exhausted', undefined, /endpoint ids/));
    c.sync = (wait) => (wait ? Promise.reject(new AgentError('unavailable', 'not in the datapath after 10 ms')) : Promise.resolve());
    await assert.rejects(c.service.register(SPEC), rejectsWith('unavailable', undefined, /not in the datapath/));
    assert.notEqual(c.registry.get('c0ffee', 'eth0'), undefined, 'stays registered: the CNI\'s DEL removes it');
  }, undefined, 1);
});

test('status and node answer from the agent; no node source is not-found', async () => {
  const node: NodeInfo = { name: 'n1', known: true, podCIDRs: ['10.9.0.0/24'] };
  await withService(async (c) => {
    assert.deepEqual(await c.service.status(), { ready: true, checks: [{ name: 'datapath', ok: true, detail: 'in sync' }] });
    assert.deepEqual(await c.service.node(), node);
  }, () => node);
  await withService(async (c) => {
    await assert.rejects(c.service.node(), rejectsWith('not-found'));
  });
});

test('toEndpointError: an EndpointError passes, an agent code outside the contract and anything else is internal', () => {
  const e = new EndpointError('conflict', 'x');
  assert.equal(toEndpointError(e), e);
  const kube = toEndpointError(new AgentError('kube-api', 'the API server said 500', 'pods'));
  assert.equal(kube.code, 'internal');
  assert.equal(kube.field, 'pods');
  assert.equal(kube.message, 'the API server said 500');
  const plain = toEndpointError(new TypeError('boom'));
  assert.equal(plain.code, 'internal');
  assert.equal(plain.message, 'boom');
  assert.equal(toEndpointError('text').message, 'text');
});
