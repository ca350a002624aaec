import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileFilters } from '../../src/flow/filter.js';
import { LostEventSource, type FlowEvent } from '../../src/flow/model.js';
import { FlowObserver, type FlowReader, type ReadRequest } from '../../src/flow/observer.js';
import { ALLOWED, event, VIEW } from './helpers.js';

function observer(capacity = 100): { obs: FlowObserver; clock: { ms: number } } {
  const clock = { ms: 1_000_000.25 }; // a clock with fractions of a ms, like performance-based ones
  const obs = new FlowObserver({ nodeName: 'n', view: () => VIEW, now: () => clock.ms, wallOffsetNs: () => 0n, capacity });
  return { obs, clock };
}

const all = compileFilters([], []);
const req = (over: Partial<ReadRequest> = {}): ReadRequest => ({ number: 0, first: false, follow: false, predicate: all, ...over });

function drain(r: FlowReader): FlowEvent[] {
  const out: FlowEvent[] = [];
  for (let e = r.next(); e !== 'end' && e !== 'wait'; e = r.next()) out.push(e);
  return out;
}

/** Established (not policy-decided) events: one flow each, at second `s`. */
const at = (s: number) => event({ ...ALLOWED, flags: 16, timestampNs: BigInt(s) * 1_000_000_000n, sport: s });

test('last N, first N and since/until read the ring in order', () => {
  const { obs } = observer();
  obs.ingest([1, 2, 3, 4, 5].map(at));
  const ports = (r: FlowReader): number[] => drain(r).map((e) => (e.kind === 'flow' ? e.flow.l4?.TCP?.source_port ?? -1 : -1));
  assert.deepEqual(ports(obs.reader(req({ number: 2 }))), [4, 5]);
  assert.deepEqual(ports(obs.reader(req({ number: 2, first: true }))), [1, 2]);
  assert.deepEqual(ports(obs.reader(req({ since: { seconds: 2, nanos: 0 }, until: { seconds: 4, nanos: 0 } }))), [2, 3, 4]);
  assert.deepEqual(ports(obs.reader(req())), [1, 2, 3, 4, 5]);
  assert.deepEqual(ports(obs.reader(req({ number: 10, predicate: compileFilters([{ source_port: ['3'] }], []) }))), [3]);
  const st = obs.status();
  assert.deepEqual([st.numFlows, st.maxFlows, st.seenFlows], [5, 100, 5]);
  assert.deepEqual(obs.namespaces(), ['shop']);
});

test('a follower gets new events, waits, and is woken', () => {
  const { obs } = observer();
  obs.ingest([at(1)]);
  const r = obs.reader(req({ follow: true, number: 1 }));
  assert.equal(drain(r).length, 1, 'the history part');
  assert.equal(r.next(), 'wait');
  let woken = 0;
  r.onData(() => woken++);
  obs.ingest([at(2), at(3)]);
  assert.equal(woken, 1);
  assert.equal(drain(r).length, 2);
});

test('a slow follower loses what the ring overwrote, learns the count, and holds up nobody', () => {
  const { obs } = observer(10);
  const slow = obs.reader(req({ follow: true }));
  const fast = obs.reader(req({ follow: true }));
  let fastSeen = 0;
  for (let i = 0; i < 100; i++) {
    obs.ingest([at(i)]);
    fastSeen += drain(fast).length;
  }
  assert.equal(fastSeen, 100, 'the reader that keeps up gets every flow');
  const got = drain(slow);
  assert.equal(got[0]?.kind, 'lost');
  assert.deepEqual(got[0]?.kind === 'lost' ? [got[0].lost.source, got[0].lost.num_events_lost] : [], [LostEventSource.HUBBLE_RING_BUFFER, 90]);
  assert.equal(got.length, 11, 'the lost notice, then the 10 flows still held');
  assert.equal(slow.missed, 90);
});

test('lost datapath events enter the stream per CPU and the status', () => {
  const { obs } = observer();
  const r = obs.reader(req({ follow: true, predicate: compileFilters([{ verdict: [99] }], []) }));
  obs.reportLost(LostEventSource.PERF_EVENT_RING_BUFFER, 7, 1);
  obs.ingest([at(1)]);
  const got = drain(r);
  assert.equal(got.length, 1, 'lost events are never filtered out; the flow is');
  assert.deepEqual(got[0]?.kind === 'lost' ? [got[0].lost.num_events_lost, got[0].lost.cpu?.value] : [], [7, 1]);
  assert.deepEqual(obs.status().lost, { PERF_EVENT_RING_BUFFER: 7 });
});
