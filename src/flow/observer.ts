/**
 * The flow observer: datapath events in (decoded records), flows out. Each
 * event is enriched from the applied view at arrival, stored in the ring and
 * counted; readers (GetFlows calls) read the ring at their own pace, each
 * from its own position. Ingest never waits for a reader and no reader holds
 * memory of its own beyond its position: a reader the ring overtook skips to
 * the oldest flow held and gets a LostEvent with the count it missed. Lost
 * datapath events (a full ring buffer, per CPU) enter the ring as LostEvents
 * too. Pure: the clock, the view and the node come in.
 */
import type { SluiceEvent } from '../datapath/generated/abi.js';
import type { AppliedView } from '../reconcile/applied-view.js';
import { flowsOfEvent } from './enrich.js';
import { FlowRing, DEFAULT_RING_CAPACITY } from './ring.js';
import {
  LostEventSource,
  timestampOfMs,
  timestampToNs,
  type Flow,
  type FlowEvent,
  type Timestamp,
} from './model.js';
import type { FlowPredicate } from './filter.js';

export interface ObserverDeps {
  readonly nodeName: string;
  /** The applied view now (BpfDatapath.applied()). */
  readonly view: () => AppliedView;
  /** Wall-clock ms. */
  readonly now: () => number;
  /** Wall-clock ns minus the datapath's monotonic ns, read once per batch. */
  readonly wallOffsetNs: () => bigint;
  readonly capacity?: number;
  /** Each flow once, as stored (metrics, exporter). */
  readonly onFlow?: (flow: Flow) => void;
  /** Each lost-events report, as stored. */
  readonly onLost?: (source: LostEventSource, count: number) => void;
}

export interface ObserverStatus {
  readonly numFlows: number;
  readonly maxFlows: number;
  readonly seenFlows: number;
  readonly uptimeNs: bigint;
  /** Flows per second over the last minute. */
  readonly flowsRate: number;
  /** Lost events by source name. */
  readonly lost: Readonly<Record<string, number>>;
}

export interface ReadRequest {
  /** How many flows (0: all held / all since `since`). */
  readonly number: number;
  /** The oldest `number` rather than the newest. */
  readonly first: boolean;
  readonly follow: boolean;
  readonly since?: Timestamp;
  readonly until?: Timestamp;
  readonly predicate: FlowPredicate;
}

/** What a reader's next() gives: an event, nothing yet (wait for wake), or the end of the stream. */
export type ReadResult = FlowEvent | 'wait' | 'end';

const RATE_WINDOW_MS = 60_000;

export class FlowObserver {
  private readonly ring: FlowRing<FlowEvent>;
  private readonly startedMs: number;
  private readonly waiting = new Set<() => void>();
  private readonly lostBySource = new Map<number, number>();
  /** Arrival times (ms) of flow batches with their counts, for the rate. */
  private readonly recent: { ms: number; n: number }[] = [];

  constructor(private readonly deps: ObserverDeps) {
    this.ring = new FlowRing<FlowEvent>(deps.capacity ?? DEFAULT_RING_CAPACITY);
    this.startedMs = deps.now();
  }

  get nodeName(): string {
    return this.deps.nodeName;
  }

  /** Enriches and stores a batch of datapath events, then wakes the waiting readers. */
  ingest(events: readonly SluiceEvent[]): void {
    if (events.length === 0) return;
    const ctx = { view: this.deps.view(), nodeName: this.deps.nodeName, wallOffsetNs: this.deps.wallOffsetNs() };
    let n = 0;
    for (const ev of events) {
      for (const flow of flowsOfEvent(ev, ctx)) {
        this.ring.push({ kind: 'flow', flow });
        this.deps.onFlow?.(flow);
        n++;
      }
    }
    this.noteRate(n);
    this.wake();
  }

  /** Records lost events (datapath ring buffer per CPU, or the agent's own queue). */
  reportLost(source: LostEventSource, count: number, cpu?: number): void {
    if (count <= 0) return;
    this.lostBySource.set(source, (this.lostBySource.get(source) ?? 0) + count);
    const time = timestampOfMs(this.deps.now());
    this.ring.push({
      kind: 'lost',
      time,
      lost: { source, num_events_lost: count, ...(cpu !== undefined ? { cpu: { value: cpu } } : {}), first: time, last: time },
    });
    this.deps.onLost?.(source, count);
    this.wake();
  }

  status(): ObserverStatus {
    const now = this.deps.now();
    this.trimRate(now);
    const inWindow = this.recent.reduce((s, r) => s + r.n, 0);
    const span = Math.min(RATE_WINDOW_MS, Math.max(1, now - this.startedMs)) / 1000;
    const lost: Record<string, number> = {};
    for (const [source, n] of this.lostBySource) lost[lostSourceName(source)] = n;
    return {
      numFlows: this.ring.size,
      maxFlows: this.ring.capacity,
      seenFlows: this.ring.written,
      uptimeNs: BigInt(Math.round(Math.max(0, now - this.startedMs) * 1e6)),
      flowsRate: inWindow / span,
      lost,
    };
  }

  /** Namespaces of the flows held, sorted. */
  namespaces(): string[] {
    const set = new Set<string>();
    for (const e of this.ring.all()) {
      if (e.kind !== 'flow') continue;
      if (e.flow.source.namespace) set.add(e.flow.source.namespace);
      if (e.flow.destination.namespace) set.add(e.flow.destination.namespace);
    }
    return [...set].sort();
  }

  /** A reader over the ring for one GetFlows request. */
  reader(req: ReadRequest): FlowReader {
    return new FlowReader(this.ring, req, (wake) => this.waitFor(wake), this.deps.now);
  }

  private waitFor(wake: () => void): () => void {
    this.waiting.add(wake);
    return () => this.waiting.delete(wake);
  }

  private wake(): void {
    if (this.waiting.size === 0) return;
    const list = [...this.waiting];
    this.waiting.clear();
    for (const w of list) w();
  }

  private noteRate(n: number): void {
    const now = this.deps.now();
    const last = this.recent[this.recent.length - 1];
    if (last !== undefined && now - last.ms < 1000) last.n += n;
    else this.recent.push({ ms: now, n });
    this.trimRate(now);
  }

  private trimRate(now: number): void {
    while (this.recent.length > 0 && now - (this.recent[0]?.ms ?? now) > RATE_WINDOW_MS) this.recent.shift();
  }
}

export function lostSourceName(source: number): string {
  return (Object.keys(LostEventSource) as (keyof typeof LostEventSource)[]).find((k) => LostEventSource[k] === source) ?? String(source);
}

function timeOfEvent(e: FlowEvent): bigint {
  return timestampToNs(e.kind === 'flow' ? e.flow.time : e.time);
}

/**
 * One GetFlows read: the history part (the last or first `number` matching
 * flows within since/until, oldest first), then, when following, every new
 * event from the ring's head at the time of the request. Lost events are
 * never filtered out.
 */
export class FlowReader {
  private readonly history: FlowEvent[];
  private index = 0;
  /** Next ring sequence to read when following. */
  private pos: number;
  private readonly sinceNs: bigint | undefined;
  private readonly untilNs: bigint | undefined;
  /** Events this reader missed because the ring overtook it. */
  missed = 0;

  constructor(
    private readonly ring: FlowRing<FlowEvent>,
    private readonly req: ReadRequest,
    private readonly waitFor: (wake: () => void) => () => void,
    private readonly now: () => number,
  ) {
    this.sinceNs = req.since !== undefined ? timestampToNs(req.since) : undefined;
    this.untilNs = req.until !== undefined ? timestampToNs(req.until) : undefined;
    this.history = this.collectHistory();
    this.pos = ring.head;
  }

  /** The next event, 'wait' (call onData) or 'end'. */
  next(): ReadResult {
    if (this.index < this.history.length) return this.history[this.index++] as FlowEvent;
    if (!this.req.follow) return 'end';
    for (;;) {
      if (this.pos < this.ring.oldest) {
        const lost = this.ring.oldest - this.pos;
        this.missed += lost;
        this.pos = this.ring.oldest;
        return { kind: 'lost', time: timestampOfMs(this.now()), lost: { source: LostEventSource.HUBBLE_RING_BUFFER, num_events_lost: lost } };
      }
      const e = this.ring.at(this.pos);
      if (e === undefined) return 'wait';
      this.pos++;
      if (this.untilNs !== undefined && timeOfEvent(e) > this.untilNs) return 'end';
      if (e.kind === 'lost' || this.req.predicate(e.flow)) return e;
    }
  }

  /** Calls wake once when new events arrive; returns a cancel function. */
  onData(wake: () => void): () => void {
    return this.waitFor(wake);
  }

  private inWindow(e: FlowEvent): boolean {
    const t = timeOfEvent(e);
    return (this.sinceNs === undefined || t >= this.sinceNs) && (this.untilNs === undefined || t <= this.untilNs);
  }

  private matches(e: FlowEvent): boolean {
    return this.inWindow(e) && (e.kind === 'lost' || this.req.predicate(e.flow));
  }

  private collectHistory(): FlowEvent[] {
    const { number, first, follow } = this.req;
    // Follow without a count or a start time: only new flows (like `hubble observe -f` with --last 0).
    if (follow && number === 0 && this.sinceNs === undefined) return [];
    const limit = number > 0 ? number : Infinity;
    const out: FlowEvent[] = [];
    if (first) {
      for (const e of this.ring.all()) {
        if (out.length >= limit) break;
        if (this.matches(e)) out.push(e);
      }
      return out;
    }
    for (const e of this.ring.reversed()) {
      if (out.length >= limit) break;
      if (this.sinceNs !== undefined && timeOfEvent(e) < this.sinceNs) break;
      if (this.matches(e)) out.push(e);
    }
    return out.reverse();
  }
}
