/** The endpoint registry and its state file: ids, conflicts, persistence, atomicity, concurrency. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EndpointRegistry } from '../../src/agent/endpoints/registry.js';
import { EMPTY_STATE, EndpointStateFile, type EndpointState, type EndpointStateStore } from '../../src/agent/endpoints/state-file.js';
import type { EndpointSpec } from '../../src/endpoint/contract.js';
import { AgentError } from '../../src/agent/errors.js';

function spec(n: number, patch: Partial<EndpointSpec> = {}): EndpointSpec {
  return {
    containerId: `ctr${n}`, ifname: 'eth0', netns: `/var/run/netns/p${n}`, podNamespace: 'default', podName: `pod-${n}`,
    ip: `10.9.${Math.floor(n / 250)}.${(n % 250) + 1}`, hostIfname: `lxc${n}`, hostIfindex: 1000 + n, ...patch,
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-reg-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

class MemoryStore implements EndpointStateStore {
  state: EndpointState = EMPTY_STATE;
  saves = 0;
  failNext = false;
  load(): Promise<EndpointState> {
    return Promise.resolve(this.state);
  }
  save(state: EndpointState): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      return Promise.reject(new AgentError('io', 'disk full'));
    }
    this.saves++;
    this.state = state;
    return Promise.resolve();
  }
}

test('ids are assigned in order and not reused right away', async () => {
  const store = new MemoryStore();
  const r = await EndpointRegistry.open({ store, now: () => new Date('2026-02-03T04:05:06Z') });
  const a = await r.add(spec(1));
  const b = await r.add(spec(2));
  assert.deepEqual([a.endpoint.endpointId, b.endpoint.endpointId], [1, 2]);
  assert.equal(a.endpoint.createdAt, '2026-02-03T04:05:06.000Z');
  await r.delete('ctr1', 'eth0');
  assert.equal((await r.add(spec(3))).endpoint.endpointId, 3, 'id 1 is not handed out again yet');
  assert.deepEqual(r.list().map((e) => e.endpointId), [2, 3]);
});

test('ids wrap around at the maximum and skip the ones in use; exhaustion is an error', async () => {
  const r = await EndpointRegistry.open({ store: new MemoryStore(), maxEndpointId: 3 });
  for (const n of [1, 2, 3]) await r.add(spec(n));
  await assert.rejects(r.add(spec(4)), (e: unknown) => e instanceof AgentError && e.code === 'exhausted');
  await r.delete('ctr2', 'eth0');
  assert.equal((await r.add(spec(5))).endpoint.endpointId, 2);
});

test('a repeated ADD is idempotent; a changed one keeps the id', async () => {
  const store = new MemoryStore();
  const r = await EndpointRegistry.open({ store });
  const first = await r.add(spec(1));
  const again = await r.add(spec(1));
  assert.deepEqual(again, { endpoint: first.endpoint, created: false, changed: false });
  assert.equal(store.saves, 1, 'nothing rewritten for a repeat');
  const moved = await r.add(spec(1, { hostIfname: 'lxc99', hostIfindex: 99 }));
  assert.equal(moved.created, false);
  assert.equal(moved.changed, true);
  assert.equal(moved.endpoint.endpointId, first.endpoint.endpointId);
  assert.equal(moved.endpoint.createdAt, first.endpoint.createdAt);
});

test('an IP or host interface held by another endpoint is a conflict naming it', async () => {
  const r = await EndpointRegistry.open({ store: new MemoryStore() });
  await r.add(spec(1));
  await assert.rejects(r.add(spec(2, { ip: spec(1).ip })),
    (e: unknown) => e instanceof AgentError && e.code === 'conflict' && e.field === 'ip' && /ctr1\/eth0/.test(e.message));
  await assert.rejects(r.add(spec(2, { hostIfindex: 1001 })),
    (e: unknown) => e instanceof AgentError && e.code === 'conflict' && e.field === 'hostIfindex');
  assert.equal(r.size, 1);
});

test('a failed save changes nothing in memory', async () => {
  const store = new MemoryStore();
  const r = await EndpointRegistry.open({ store });
  await r.add(spec(1));
  store.failNext = true;
  await assert.rejects(r.add(spec(2)), /disk full/);
  assert.equal(r.size, 1);
  assert.equal((await r.add(spec(2))).endpoint.endpointId, 2, 'the id of the failed add was not consumed');
  store.failNext = true;
  await assert.rejects(r.delete('ctr1', 'eth0'), /disk full/);
  assert.notEqual(r.get('ctr1', 'eth0'), undefined);
});

test('50 concurrent ADDs get 50 distinct ids and all reach the file', async () => {
  await withDir(async (dir) => {
    const file = new EndpointStateFile(join(dir, 'endpoints.json'));
    const r = await EndpointRegistry.open({ store: file });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => r.add(spec(i))));
    assert.equal(new Set(results.map((x) => x.endpoint.endpointId)).size, 50);
    const reopened = await EndpointRegistry.open({ store: file });
    assert.equal(reopened.size, 50);
    assert.deepEqual(reopened.list(), r.list());
    await Promise.all(Array.from({ length: 50 }, (_, i) => r.delete(`ctr${i}`, 'eth0')));
    assert.equal((await EndpointRegistry.open({ store: file })).size, 0);
  });
});

test('the state survives a reopen (agent restart), and ids continue after the last one', async () => {
  await withDir(async (dir) => {
    const file = new EndpointStateFile(join(dir, 'state', 'endpoints.json'));
    const r1 = await EndpointRegistry.open({ store: file });
    await r1.add(spec(1));
    await r1.add(spec(2));
    await r1.delete('ctr2', 'eth0');
    const r2 = await EndpointRegistry.open({ store: file });
    assert.deepEqual(r2.list().map((e) => e.containerId), ['ctr1']);
    assert.equal((await r2.add(spec(3))).endpoint.endpointId, 3);
  });
});

test('the file is written atomically with mode 0600 and no temp file is left', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'endpoints.json');
    const file = new EndpointStateFile(path);
    await file.save({ nextId: 4, endpoints: [] });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['endpoints.json']);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { version: 1, nextId: 4, endpoints: [] });
    assert.deepEqual(await new EndpointStateFile(join(dir, 'missing.json')).load(), EMPTY_STATE);
  });
});

test('a corrupt state file is an error naming the file and the field, not an empty registry', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'endpoints.json');
    const file = new EndpointStateFile(path);
    const cases: [string, RegExp][] = [
      ['{"version":1,', /not valid JSON/],
      ['{"version":2,"nextId":1,"endpoints":[]}', /version: unsupported version 2/],
      ['{"version":1,"nextId":0,"endpoints":[]}', /nextId: must be an integer/],
      [JSON.stringify({ version: 1, nextId: 2, endpoints: [{ ...spec(1), endpointId: 1, createdAt: '2026-01-01T00:00:00Z', ip: 'x' }] }), /endpoints\[0\]\.ip: "x"/],
    ];
    for (const [text, pattern] of cases) {
      writeFileSync(path, text);
      await assert.rejects(file.load(), (e: unknown) => e instanceof AgentError && e.code === 'state-corrupt' && e.message.includes(path) && pattern.test(e.message), text);
    }
    const twice = { ...spec(1), endpointId: 1, createdAt: '2026-01-01T00:00:00Z' };
    writeFileSync(path, JSON.stringify({ version: 1, nextId: 2, endpoints: [twice, { ...twice, containerId: 'other' }] }));
    await assert.rejects(EndpointRegistry.open({ store: file }), /endpoint id 1 is used twice/);
  });
});
