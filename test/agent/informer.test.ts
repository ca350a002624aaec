/**
 * The informer's list/watch logic against a scripted transport and a manual
 * clock: pagination, slim storage, 410 → relist, backoff with jitter,
 * healthy-watch reset, idle watches, stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Informer, type InformerHooks } from '../../src/agent/k8s/informer.js';
import { PODS, type SlimPod } from '../../src/agent/k8s/resources.js';
import type { StoreChange } from '../../src/agent/k8s/store.js';
import { KubeApiError } from '../../src/agent/k8s/transport.js';
import { FakeClock, flush } from './helpers/fake-clock.js';
import { FakeTransport } from './helpers/fake-transport.js';

const BACKOFF = { initialMs: 1000, maxMs: 8000, factor: 2, jitter: 0.5 };

function pod(name: string, rv: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata: { name, namespace: 'ns', resourceVersion: rv, managedFields: [{ manager: 'x' }], labels: { app: name } },
    spec: { containers: [{ name: 'c', image: 'img' }] },
    status: { podIP: '10.0.0.1', conditions: [] },
    ...extra,
  };
}

interface Setup {
  clock: FakeClock;
  transport: FakeTransport;
  informer: Informer<SlimPod>;
  changes: StoreChange<SlimPod>[][];
  events: string[];
}

function setup(random: () => number = () => 0.5, answer?: FakeTransport['answer']): Setup {
  const clock = new FakeClock();
  const transport = new FakeTransport(answer);
  const events: string[] = [];
  const hooks: InformerHooks = {
    onWatchRestart: (r, reason, delay) => events.push(`restart ${reason} ${delay}`),
    onListError: (r, e, delay) => events.push(`list-error ${delay}`),
    onRelist: (r, n) => events.push(`relist ${n}`),
    onSynced: () => events.push('synced'),
    onInvalidObject: () => events.push('invalid'),
  };
  const informer = new Informer(PODS, {
    transport, clock, random, backoff: BACKOFF, pageSize: 2, watchTimeoutSeconds: 60, idleMarginMs: 5000, healthyAfterMs: 10_000, hooks,
  });
  const changes: StoreChange<SlimPod>[][] = [];
  informer.onChange((c) => changes.push([...c]));
  return { clock, transport, informer, changes, events };
}

test('lists page by page, stores slim objects, then watches from the list version', async () => {
  const s = setup(() => 0.5, (_path, query) => {
    if (query['continue'] === undefined) return Promise.resolve({ items: [pod('a', '5'), pod('b', '6')], resourceVersion: '7', continueToken: 'p2' });
    return Promise.resolve({ items: [pod('c', '7'), { metadata: {} }], resourceVersion: '7' });
  });
  assert.equal(s.transport.lists.length, 0, 'the constructor does no I/O');
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  assert.deepEqual(s.transport.lists.map((l) => l.query), [{ limit: '2' }, { limit: '2', continue: 'p2' }]);
  assert.equal(s.informer.store.size, 3);
  assert.equal(s.informer.store.get('ns/a')?.metadata.labels?.['app'], 'a');
  assert.equal('managedFields' in (s.informer.store.get('ns/a')?.metadata ?? {}), false);
  assert.deepEqual(s.events, ['invalid', 'relist 3', 'synced']);
  assert.equal(s.changes.length, 1, 'the whole list is one batch of changes');
  const w = s.transport.lastWatch();
  assert.equal(w.path, '/api/v1/pods');
  assert.equal(w.query['resourceVersion'], '7');
  assert.equal(w.query['allowWatchBookmarks'], 'true');
  assert.equal(w.query['timeoutSeconds'], '90', 'timeout = t + random·t');
  assert.ok(s.informer.hasSynced());
  await s.informer.stop();
});

test('watch events update the cache; updates to dropped fields are not changes', async () => {
  const s = setup();
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  const w = s.transport.lastWatch();
  w.send({ type: 'ADDED', object: pod('a', '11') });
  w.send({ type: 'MODIFIED', object: pod('a', '12', { status: { podIP: '10.0.0.1', conditions: [{ type: 'Ready' }] } }) });
  w.send({ type: 'MODIFIED', object: pod('a', '13', { status: { podIP: '10.0.0.2' } }) });
  w.send({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '20' } } });
  assert.deepEqual(s.changes.map((c) => c.map((x) => x.type)), [['added'], ['updated']]);
  assert.equal(s.informer.store.get('ns/a')?.status?.podIP, '10.0.0.2');
  assert.equal(s.informer.status().resourceVersion, '20');
  w.send({ type: 'DELETED', object: pod('a', '21') });
  assert.equal(s.informer.store.size, 0);
  assert.equal(s.changes.at(-1)?.[0]?.type, 'deleted');
  await s.informer.stop();
});

test('410 Gone on the stream relists at once and reports what was deleted meanwhile', async () => {
  let listed = 0;
  const s = setup(() => 0.5, () => {
    listed++;
    return Promise.resolve(listed === 1
      ? { items: [pod('a', '5'), pod('b', '6')], resourceVersion: '7' }
      : { items: [pod('b', '30'), pod('c', '31')], resourceVersion: '40' });
  });
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  s.transport.lastWatch().send({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 7 (35)' } });
  await flush();
  assert.equal(listed, 2, 'relisted without waiting');
  assert.deepEqual(s.events.slice(2), ['restart expired 0', 'relist 2']);
  const last = s.changes.at(-1) ?? [];
  assert.deepEqual(last.map((c) => `${c.type}:${c.key}`).sort(), ['added:ns/c', 'deleted:ns/a']);
  assert.equal(s.transport.lastWatch().query['resourceVersion'], '40');
  assert.equal(s.transport.watches[0]?.stopped, true, 'the expired stream was closed');
  assert.match(s.informer.status().lastError ?? '', /too old resource version/);
  await s.informer.stop();
});

test('410 when opening the watch (HTTP status) relists too; a second 410 in a row backs off', async () => {
  const s = setup(() => 0);
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  s.transport.lastWatch().close(new KubeApiError(410, 'Gone'));
  await flush();
  assert.equal(s.transport.lists.length, 2);
  s.transport.lastWatch().close(new KubeApiError(410, 'Gone'));
  await flush();
  assert.equal(s.transport.lists.length, 2, 'the second relist waits');
  assert.deepEqual(s.events.filter((e) => e.startsWith('restart')), ['restart expired 0', 'restart expired 1000']);
  await s.clock.advance(999);
  assert.equal(s.transport.lists.length, 2);
  await s.clock.advance(1);
  assert.equal(s.transport.lists.length, 3);
  await s.informer.stop();
});

test('list failures back off exponentially with jitter, capped', async () => {
  let fail = true;
  const s = setup(() => 0.5, () => (fail ? Promise.reject(new Error('connection refused')) : Promise.resolve({ items: [], resourceVersion: '3' })));
  s.informer.start();
  await flush();
  // base 1000, 2000, 4000, 8000, 8000 with half of the jitter taken off: ×0.75
  const expected = [750, 1500, 3000, 6000, 6000];
  for (const delay of expected) {
    const before = s.transport.lists.length;
    await s.clock.advance(delay - 1);
    assert.equal(s.transport.lists.length, before, `no retry before ${delay} ms`);
    await s.clock.advance(1);
    assert.equal(s.transport.lists.length, before + 1, `retry after ${delay} ms`);
  }
  assert.deepEqual(s.events.filter((e) => e.startsWith('list-error')).slice(0, 5), expected.map((d) => `list-error ${d}`));
  assert.equal(s.informer.hasSynced(), false);
  assert.match(s.informer.status().lastError ?? '', /connection refused/);
  fail = false;
  await s.clock.advance(6000);
  assert.equal(s.informer.hasSynced(), true);
  await s.informer.stop();
});

test('jitter spreads agents apart: different random sources give different delays', async () => {
  const delays: number[] = [];
  for (const r of [0, 0.3, 0.9]) {
    const s = setup(() => r, () => Promise.reject(new Error('down')));
    s.informer.start();
    await flush();
    delays.push(Number(s.events[0]?.split(' ')[1]));
    await s.informer.stop();
  }
  assert.deepEqual(delays, [1000, 850, 550]);
});

test('a watch failing quickly backs off; one that stayed up resets the backoff and resumes at once', async () => {
  const s = setup(() => 0);
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  s.transport.lastWatch().close(new Error('reset by peer'));
  await flush();
  s.transport.lastWatch().close(null); // closed right away by the server: also a failure
  await flush();
  assert.deepEqual(s.events.filter((e) => e.startsWith('restart')), ['restart error 1000']);
  await s.clock.advance(1000);
  assert.equal(s.transport.watches.length, 2);
  s.transport.lastWatch().close(null);
  await flush();
  assert.deepEqual(s.events.filter((e) => e.startsWith('restart')), ['restart error 1000', 'restart closed 2000']);
  await s.clock.advance(2000);
  // This one lives long and ends normally (server-side timeout): resume with no delay and no relist.
  await s.clock.advance(30_000);
  s.transport.lastWatch().close(null);
  await flush();
  assert.equal(s.events.at(-1), 'restart closed 0');
  assert.equal(s.transport.lists.length, 1, 'resumed from the resourceVersion, no relist');
  assert.equal(s.transport.lastWatch().query['resourceVersion'], '1');
  // And the next failure starts from the initial delay again.
  s.transport.lastWatch().close(new Error('boom'));
  await flush();
  assert.equal(s.events.at(-1), 'restart error 1000');
  await s.informer.stop();
});

test('a silent watch (half-open connection) is abandoned after the server timeout plus the margin', async () => {
  const s = setup(() => 0);
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  const w = s.transport.lastWatch();
  await s.clock.advance(60_000 + 4_000);
  w.send({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '5' } } }); // an event re-arms the timer
  await s.clock.advance(64_999);
  assert.equal(w.live, true);
  await s.clock.advance(1);
  assert.equal(w.stopped, true);
  // It lived long enough to reset the backoff: the retry waits only the initial delay.
  assert.equal(s.events.at(-1), 'restart idle 1000');
  await s.clock.advance(1000);
  assert.equal(s.transport.watches.length, 2);
  assert.equal(s.transport.lastWatch().query['resourceVersion'], '5');
  await s.informer.stop();
});

test('non-410 ERROR events restart the watch from the same version after a backoff', async () => {
  const s = setup(() => 0);
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  s.transport.lastWatch().send({ type: 'ERROR', object: { code: 500, message: 'internal' } });
  await flush();
  assert.equal(s.events.at(-1), 'restart error 1000');
  await s.clock.advance(1000);
  assert.equal(s.transport.lists.length, 1);
  assert.equal(s.transport.watches.length, 2);
  await s.informer.stop();
});

test('stop ends the watch and any pending retry; nothing is delivered afterwards', async () => {
  const s = setup();
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  const w = s.transport.lastWatch();
  await s.informer.stop();
  assert.equal(w.stopped, true);
  const before = s.changes.length;
  await s.clock.advance(100_000);
  assert.equal(s.transport.watches.length, 1);
  assert.equal(s.changes.length, before);

  const f = setup(() => 0, () => Promise.reject(new Error('down')));
  f.informer.start();
  await flush();
  await f.informer.stop();
  await f.clock.advance(100_000);
  assert.equal(f.transport.lists.length, 1, 'no retry after stop');
});

test('a list that lands after stop is dropped', async () => {
  let release: (() => void) | undefined;
  const s = setup(() => 0, () => new Promise((resolve) => {
    release = () => resolve({ items: [pod('a', '1')], resourceVersion: '2' });
  }));
  s.informer.start();
  await flush();
  await s.informer.stop();
  release?.();
  await flush();
  assert.equal(s.informer.store.size, 0);
  assert.equal(s.informer.hasSynced(), false);
  assert.equal(s.transport.watches.length, 0);
});

test('a listener that throws does not stop the watch or the other listeners', async () => {
  const s = setup();
  s.informer.onChange(() => {
    throw new Error('listener bug');
  });
  s.informer.start();
  await s.informer.whenSynced();
  await flush();
  s.transport.lastWatch().send({ type: 'ADDED', object: pod('a', '11') });
  s.transport.lastWatch().send({ type: 'ADDED', object: pod('b', '12') });
  assert.equal(s.changes.length, 2, 'the first listener still got both');
  assert.equal(s.informer.store.size, 2);
  assert.match(s.informer.status().lastError ?? '', /listener bug/);
  await s.informer.stop();
});
