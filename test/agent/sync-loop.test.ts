/** The sync loop's scheduling, waiting, failure and restart behaviour, on a manual clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { SyncLoop } from '../../src/agent/sync-loop.js';
import { buildSnapshot, type SnapshotResult } from '../../src/agent/snapshot.js';
import { ObjectStore } from '../../src/agent/k8s/store.js';
import { NAMESPACES, PODS, type SlimNamespace, type SlimPod } from '../../src/agent/k8s/resources.js';
import { AgentError } from '../../src/agent/errors.js';
import type { SyncDatapath } from '../../src/agent/ports.js';
import { FakeClock, flush } from './helpers/fake-clock.js';
import { FAKE_PLAN_MS, FAKE_WRITE_MS, FakeDatapath, fakePlanSize, type FakeState } from './helpers/fake-datapath.js';
import { captureLog } from './helpers/logs.js';
import { namespace, pod } from './helpers/objects.js';

interface Setup {
  clock: FakeClock;
  /** The one fake datapath, by the two roles the tests read it in: what it compiled, what it wrote. */
  compiler: FakeDatapath;
  writer: FakeDatapath;
  loop: SyncLoop;
  metrics: AgentMetrics;
  pods: ObjectStore<SlimPod>;
  gate: { open: boolean };
  logs: ReturnType<typeof captureLog>;
  snapshots: number;
}

function setup(initial?: FakeState): Setup {
  const clock = new FakeClock();
  const writer = new FakeDatapath(initial);
  const compiler = writer;
  const metrics = new AgentMetrics();
  const logs = captureLog();
  const namespaces = new ObjectStore<SlimNamespace>();
  const ns = NAMESPACES.slim(namespace('a'));
  if (ns !== undefined) namespaces.upsert(ns);
  const pods = new ObjectStore<SlimPod>();
  const gate = { open: true };
  const s: Partial<Setup> = { clock, compiler, writer, metrics, pods, gate, logs, snapshots: 0 };
  const empty = new ObjectStore<never>();
  s.loop = new SyncLoop({
    datapath: writer, metrics, clock, log: logs.log,
    random: () => 0,
    debounceMs: 20,
    maxDelayMs: 100,
    retry: { initialMs: 1000, maxMs: 4000, factor: 2, jitter: 0.5 },
    canSync: () => gate.open,
    snapshot: (): SnapshotResult => {
      s.snapshots = (s.snapshots ?? 0) + 1;
      return buildSnapshot({ nodeName: 'n1', namespaces, pods, networkPolicies: empty, nodes: empty, services: empty, endpointSlices: empty, endpoints: [] });
    },
  });
  return s as Setup;
}

function addPod(s: Setup, name: string, ip: string): void {
  const p = PODS.slim(pod('a', name, { ip }));
  if (p !== undefined) s.pods.upsert(p);
}

/** Starts a sync (pod p1) whose apply waits until the returned function is called. */
/** A sync (for a new pod) held at its writes, 20 ms after its trigger; resolves with what lets it finish. */
async function holdSync(s: Setup, pod = 'p1', ip = '10.0.0.1'): Promise<() => Promise<void>> {
  let release!: () => void;
  s.writer.gate = new Promise((resolve) => {
    release = resolve;
  });
  addPod(s, pod, ip);
  s.loop.trigger(`${pod} added`);
  await s.clock.advance(20);
  assert.equal(s.loop.status().running, true);
  return async () => {
    release();
    s.writer.gate = undefined;
    await flush();
  };
}

test('a change after a quiet spell syncs at once; the burst behind it is one sync, after the debounce', async () => {
  const s = setup();
  addPod(s, 'p1', '10.0.0.1');
  s.loop.trigger('pods changed');
  s.loop.trigger('pods changed again, in the same tick');
  await s.clock.advance(0);
  assert.equal(s.writer.applied.length, 1, 'the leading change, at once, with the one in its tick');
  assert.equal(s.loop.status().appliedRevision, 2);
  for (const [i, name] of ['p2', 'p3', 'p4'].entries()) {
    addPod(s, name, `10.0.0.${i + 2}`);
    s.loop.trigger('pods changed');
    await s.clock.advance(5);
  }
  assert.equal(s.writer.applied.length, 1, 'a sync started within the debounce: the burst waits for quiet');
  await s.clock.advance(20);
  assert.equal(s.writer.applied.length, 2);
  assert.deepEqual([...s.writer.maps.keys()].filter((k) => !k.startsWith('labels/')).sort(), ['a/p1', 'a/p2', 'a/p3', 'a/p4', 'policies']);
  assert.equal(s.loop.status().appliedRevision, 5);
  assert.equal(s.loop.status().firstSyncDone, true);
  // Quiet again for longer than the debounce: the next change leads once more.
  await s.clock.advance(100);
  addPod(s, 'p5', '10.0.0.6');
  s.loop.trigger('pods changed');
  await s.clock.advance(0);
  assert.equal(s.writer.applied.length, 3);
});

test('a steady stream of changes still syncs every maxDelayMs', async () => {
  const s = setup();
  for (let i = 0; i < 30; i++) {
    s.loop.trigger('tick');
    await s.clock.advance(10);
  }
  // 300 ms of changes every 10 ms: no quiet period, yet syncs happen at the 100 ms bound.
  assert.ok(s.snapshots >= 2 && s.snapshots <= 4, `syncs: ${s.snapshots}`);
});

test('nothing syncs until the owner says it may (every informer listed); then one trigger does it', async () => {
  const s = setup();
  s.gate.open = false;
  s.loop.trigger('pods changed');
  await s.clock.advance(1000);
  assert.equal(s.writer.reads, 0, 'not even a read of the maps');
  s.gate.open = true;
  s.loop.trigger('pods synced');
  await s.clock.advance(20);
  assert.equal(s.loop.status().firstSyncDone, true);
});

test('the first plan starts from what the maps hold (a restart applies only the difference)', async () => {
  const s = setup(new Map([['a/p1', '10.0.0.1'], ['labels/a/p1', 'app=p1,ns:kubernetes.io/metadata.name=a'], ['policies', '0'], ['stale', 'x']]));
  addPod(s, 'p1', '10.0.0.1');
  s.loop.trigger('start');
  await s.clock.advance(20);
  assert.equal(s.writer.reads, 1);
  assert.equal(s.compiler.compiled[0]?.current.get('stale'), 'x', 'compiled against the maps as read');
  const plan = s.writer.applied[0];
  assert.ok(plan !== undefined);
  assert.equal(fakePlanSize(plan), 1, 'only the stale entry changes');
  s.loop.trigger('again');
  await s.clock.advance(20);
  assert.equal(s.writer.applied.length, 1, 'an unchanged snapshot writes nothing');
  assert.equal(s.writer.reads, 1, 'the maps are read once, not per sync');
  assert.match(await s.metrics.registry.metrics(), /sluice_agent_syncs_total\{result="noop"\} 1/);
});

test('waitApplied resolves once a sync covering the revision is in the maps', async () => {
  const s = setup();
  s.loop.trigger('start');
  await s.clock.advance(0); // a sync just started: the next change waits for the debounce
  const r = s.loop.trigger('endpoint added');
  let done = false;
  const p = s.loop.waitApplied(r, 5000).then(() => {
    done = true;
  });
  await s.clock.advance(19);
  assert.equal(done, false);
  await s.clock.advance(1);
  await p;
  assert.equal(done, true);
  await s.loop.waitApplied(r, 1); // already applied: immediate
});

test('an immediate request (an endpoint ADD) skips the debounce, and covers the burst pending with it', async () => {
  const s = setup();
  s.loop.trigger('start');
  await s.clock.advance(0);
  assert.equal(s.snapshots, 1);
  addPod(s, 'p1', '10.0.0.1');
  s.loop.trigger('pods changed');
  await s.clock.advance(5);
  assert.equal(s.snapshots, 1, 'within the debounce');
  const r = s.loop.trigger('endpoint added', { immediate: true });
  s.loop.trigger('pods changed, right behind it');
  await s.clock.advance(0);
  await s.loop.waitApplied(r, 1);
  assert.equal(s.snapshots, 2, 'one sync for all three requests');
  assert.ok(s.writer.maps.has('a/p1'));
  // Later bursts coalesce again.
  s.loop.trigger('pods changed');
  await s.clock.advance(5);
  s.loop.trigger('pods changed');
  await s.clock.advance(5);
  assert.equal(s.snapshots, 2, 'still within the debounce');
  await s.clock.advance(20);
  assert.equal(s.snapshots, 3);
});

test('a change during a running sync: the next sync starts as the running one ends once debounceMs passed since the change, else after the rest of it', async () => {
  const s = setup();
  const release = await holdSync(s);
  addPod(s, 'p2', '10.0.0.2');
  const r2 = s.loop.trigger('during the sync');
  await s.clock.advance(50);
  await release();
  await s.clock.advance(0);
  await s.loop.waitApplied(r2, 1);
  assert.ok(s.writer.maps.has('a/p2'), 'the change waited 50 ms already: no debounce after the sync');

  await s.clock.advance(100);
  const again = await holdSync(s, 'p3', '10.0.0.3');
  addPod(s, 'p4', '10.0.0.4');
  const r4 = s.loop.trigger('late in the sync');
  await s.clock.advance(5);
  await again();
  await s.clock.advance(14);
  assert.equal(s.writer.maps.has('a/p4'), false, '5 ms since the change: the rest of its debounce first');
  await s.clock.advance(1);
  await s.loop.waitApplied(r4, 1);
});

test('a change shortly after a sync started, with nothing running or pending, waits only for the rest of the debounce since that start', async () => {
  const s = setup();
  addPod(s, 'p1', '10.0.0.1');
  s.loop.trigger('first');
  await s.clock.advance(0);
  assert.equal(s.writer.applied.length, 1);
  await s.clock.advance(12);
  addPod(s, 'p2', '10.0.0.2');
  const r2 = s.loop.trigger('12 ms after the start');
  await s.clock.advance(7);
  assert.equal(s.writer.applied.length, 1);
  await s.clock.advance(1);
  await s.loop.waitApplied(r2, 1);
  assert.equal(s.writer.applied.length, 2, '20 ms after the first sync started, not 20 ms after the change');
});

test('an immediate request during a running sync runs right after it, without the debounce', async () => {
  const s = setup();
  const release = await holdSync(s);
  addPod(s, 'p2', '10.0.0.2');
  const r2 = s.loop.trigger('endpoint added', { immediate: true });
  await release();
  await s.clock.advance(0);
  await s.loop.waitApplied(r2, 1);
  assert.ok(s.writer.maps.has('a/p2'));
});

test('per owner: a round its owner did not complete leaves its revision behind (pending since its request), and waitApplied on it waits for the retry', async () => {
  const s = setup();
  addPod(s, 'p1', '10.0.0.1');
  const r1 = s.loop.trigger('first');
  await s.clock.advance(20);
  await s.loop.waitApplied(r1, 1, ['fake']);
  const firstAt = s.loop.status().owners[0]?.appliedAt;
  assert.equal(typeof firstAt, 'number');
  assert.deepEqual(s.loop.status().owners, [{ name: 'fake', appliedRevision: r1, failing: [], appliedAt: firstAt }], 'nothing pending');
  s.writer.failures.push([{ map: 'policy', message: 'E2BIG: map full', code: 'E2BIG' }]);
  addPod(s, 'p2', '10.0.0.2');
  await s.clock.advance(500);
  const requestedAt = s.clock.now();
  const r2 = s.loop.trigger('change');
  let done = false;
  const wait = s.loop.waitApplied(r2, 60_000, ['fake']).then(() => {
    done = true;
  });
  await s.clock.advance(20);
  const st = s.loop.status().owners[0];
  assert.equal(st?.appliedRevision, r1, 'not after a failed round');
  assert.deepEqual(st?.failing.map((f) => f.map), ['policy']);
  assert.equal(done, false);
  assert.equal(s.loop.status().appliedRevision, r1, 'the loop as a whole is behind too');
  assert.equal(st?.pendingSince, requestedAt, 'pending since the request it failed to apply');
  assert.equal(st?.appliedAt, firstAt, 'its last completed round is still the first');
  await s.clock.advance(30_000);
  await wait;
  assert.equal(s.loop.status().owners[0]?.appliedRevision, r2, 'after the retry reached the maps');
  assert.equal(s.loop.status().owners[0]?.pendingSince, undefined, 'nothing pending after the retry');
  assert.ok((s.loop.status().owners[0]?.appliedAt ?? 0) > requestedAt, 'applied at the retry');
  const text = await s.metrics.registry.metrics();
  assert.match(text, new RegExp(`sluice_agent_owner_applied_revision\\{owner="fake"\\} ${r2}`));
  assert.match(text, /sluice_agent_owner_complete\{owner="fake"\} 1/);
  assert.deepEqual(s.loop.status().owners[0]?.failing, []);
  await s.loop.stop();
});

test('a change made while a round runs is still pending for its owners when that round completes, until the next one', async () => {
  const s = setup();
  const release = await holdSync(s);
  await s.clock.advance(5);
  const changedAt = s.clock.now();
  addPod(s, 'p2', '10.0.0.2');
  const r2 = s.loop.trigger('p2 added');
  await release();
  const after = s.loop.status().owners[0];
  assert.equal(after?.appliedRevision, r2 - 1, 'the held round covered the first change only');
  assert.equal(after?.pendingSince, changedAt, 'the change made during it is pending since it was made');
  await s.clock.advance(100);
  await s.loop.waitApplied(r2, 1);
  assert.equal(s.loop.status().owners[0]?.pendingSince, undefined);
  await s.loop.stop();
});

test('a failing map is reported, the maps re-read, and the sync retried with backoff until it recovers', async () => {
  const s = setup();
  addPod(s, 'p1', '10.0.0.1');
  s.writer.failures.push([{ map: 'sl_policy_v2', message: 'E2BIG: map full', code: 'E2BIG', endpoints: [4] }]);
  s.writer.failures.push([{ map: 'sl_policy_v2', message: 'E2BIG: map full', code: 'E2BIG' }]);
  const r = s.loop.trigger('change');
  const wait = s.loop.waitApplied(r, 1500);
  const outcome = wait.then(() => 'resolved', (e: unknown) => e);
  await s.clock.advance(0);
  const st = s.loop.status();
  assert.equal(st.firstSyncDone, false);
  assert.deepEqual(st.failingMaps.map((f) => f.map), ['sl_policy_v2']);
  assert.equal(s.writer.reads, 1, 'the owner forgot its view; it reads back when the retry plans');
  const line = s.logs.find('map sl_policy_v2 update failed')[0];
  assert.ok(line !== undefined);
  assert.equal(line['level'], 'error');
  assert.match(String(line['msg']), /\(fail closed: endpoint 4\)$/, 'an endpoint no local pod has is named by id');
  assert.deepEqual(line['endpointNames'], ['endpoint 4']);
  const text = await s.metrics.registry.metrics();
  assert.match(text, /sluice_agent_endpoints_failed_closed 1/);
  assert.match(text, /sluice_agent_map_update_failures_total\{map="sl_policy_v2"\} 1/);
  assert.match(text, /sluice_agent_map_failing\{map="sl_policy_v2"\} 1/);

  await s.clock.advance(999);
  assert.equal(s.writer.applied.length, 1, 'the retry waits its backoff');
  await s.clock.advance(1);
  assert.equal(s.writer.applied.length, 2, 'retried after 1 s');
  assert.equal(s.writer.reads, 2, 'the retry planned from the maps as read back after the failure');
  await s.clock.advance(500);
  const e = await outcome;
  assert.ok(e instanceof AgentError && e.code === 'unavailable' && /sl_policy_v2: E2BIG/.test(e.message), String(e));
  await s.clock.advance(1500);
  assert.equal(s.writer.applied.length, 3, 'second retry after 2 s');
  assert.equal(s.loop.status().firstSyncDone, true);
  assert.deepEqual(s.loop.status().failingMaps, []);
  assert.match(await s.metrics.registry.metrics(), /sluice_agent_map_failing\{map="sl_policy_v2"\} 0/);
  assert.match(await s.metrics.registry.metrics(), /sluice_agent_endpoints_failed_closed 0/);
  assert.equal(s.logs.find('map updates recovered').length, 1);
});

test('a compile that throws is logged, retried, and does not lose the maps baseline', async () => {
  const s = setup();
  s.compiler.throwNext = new Error('identity space exhausted');
  s.loop.trigger('change');
  await s.clock.advance(20);
  assert.match(s.loop.status().lastError ?? '', /identity space exhausted/);
  assert.equal(s.logs.find('sync failed: identity space exhausted').length, 1);
  await s.clock.advance(1000);
  assert.equal(s.loop.status().firstSyncDone, true);
  assert.equal(s.writer.reads, 2, 'after an error the maps are read again');
});

test('the latency and phase histograms are observed', async () => {
  const s = setup();
  s.loop.trigger('change'); // leads: in the maps at once
  await s.clock.advance(0);
  addPod(s, 'p1', '10.0.0.1');
  s.loop.trigger('change'); // debounced: 20 ms
  await s.clock.advance(20);
  const text = await s.metrics.registry.metrics();
  assert.match(text, /sluice_agent_sync_latency_seconds_count 2/);
  assert.match(text, /sluice_agent_sync_latency_seconds_sum 0\.02/);
  for (const phase of ['snapshot', 'compile', 'apply', 'total']) {
    assert.match(text, new RegExp(`sluice_agent_sync_duration_seconds_count\\{phase="${phase}"\\} 2`));
  }
  for (const [stage, ms] of [['plan', FAKE_PLAN_MS], ['write', FAKE_WRITE_MS]] as const) {
    assert.match(text, new RegExp(`sluice_agent_owner_duration_seconds_count\\{owner="fake",stage="${stage}"\\} 2\n`));
    assert.match(text, new RegExp(`sluice_agent_owner_duration_seconds_sum\\{owner="fake",stage="${stage}"\\} ${(2 * ms) / 1000}\n`));
  }
  assert.match(text, new RegExp(`sluice_agent_identities ${s.writer.maps.size}\n`), 'the last round\'s count');
});

test('stop rejects pending waiters and schedules nothing more', async () => {
  const s = setup();
  s.gate.open = false;
  const w = s.loop.waitApplied(s.loop.trigger('x'), 10_000);
  await s.loop.stop();
  await assert.rejects(w, /stopping/);
  s.gate.open = true;
  s.loop.trigger('after stop');
  await s.clock.advance(1000);
  assert.equal(s.writer.reads, 0);
});

test('an owner that keeps failing holds up only those who wait on it: waitApplied on the others resolves', async () => {
  const clock = new FakeClock();
  const logs = captureLog();
  const empty = new ObjectStore<never>();
  let rounds = 0;
  // Two owners: "policy" completes every round, "lb" fails every round (its map is full).
  const datapath: SyncDatapath = {
    owners: ['policy', 'lb'],
    endpointOwners: ['policy'],
    reconcile: () => {
      rounds++;
      return Promise.resolve({
        planned: 2, operations: 1, summary: { identities: 0 },
        owners: [
          { name: 'policy', complete: true, failures: [] },
          { name: 'lb', complete: false, failures: [{ map: 'lb', message: 'E2BIG: map full', code: 'E2BIG' }] },
        ],
      });
    },
    invalidate: () => undefined,
  };
  const loop = new SyncLoop({
    datapath, metrics: new AgentMetrics(), clock, log: logs.log, random: () => 0, debounceMs: 20, maxDelayMs: 100,
    retry: { initialMs: 1000, maxMs: 4000, factor: 2, jitter: 0.5 },
    canSync: () => true,
    snapshot: (): SnapshotResult => buildSnapshot({ nodeName: 'n1', namespaces: empty, pods: empty, networkPolicies: empty, nodes: empty, services: empty, endpointSlices: empty, endpoints: [] }),
  });
  const r = loop.trigger('endpoint added', { immediate: true });
  let endpointDone = false;
  let allDone = false;
  const endpointWait = loop.waitApplied(r, 5000, datapath.endpointOwners).then(() => (endpointDone = true));
  const allWait = loop.waitApplied(r, 5000).then(() => (allDone = true), (e: unknown) => e);
  await clock.advance(0);
  await endpointWait;
  assert.equal(endpointDone, true, 'the endpoint\'s owners completed the round');
  assert.equal(allDone, false, 'the failing owner has not');
  assert.deepEqual(loop.status().owners.map((o) => [o.name, o.appliedRevision, o.failing.length]), [['policy', r, 0], ['lb', 0, 1]]);
  await clock.advance(6000);
  const outcome = await allWait;
  assert.ok(outcome instanceof AgentError && /lb: E2BIG/.test(outcome.message), String(outcome));
  assert.ok(rounds >= 2, 'retried with backoff');
  await loop.stop();
});
