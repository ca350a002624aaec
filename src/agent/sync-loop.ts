/**
 * The sync loop, a scheduler over the datapath's map owners: changes (watch
 * events, endpoint registrations) request a sync. A change after a quiet
 * spell (no sync started within debounceMs, none running) syncs at once
 * (the leading edge: one Service or policy change is in the maps without
 * waiting); one that comes sooner waits only for the rest of debounceMs
 * since the last sync started. Changes behind it are debounced: a burst is
 * one sync once debounceMs passed without a change (measured from the last
 * change, also across a running sync), but no change waits longer than
 * maxDelayMs, and an immediate one (an endpoint ADD the CNI waits on) does
 * not wait. One sync runs at a time, as one round over every owner with one
 * shared snapshot:
 *
 *   snapshot → round (each owner: desired, diff against its maps, phased writes)
 *
 * Each owner starts from what its pinned maps hold (a restarted agent writes
 * only the difference) and reads them back after any failure in its group,
 * so the next round starts from the truth, not from what we hoped we wrote.
 * A round with failures is retried with backoff and reported per map; the
 * agent keeps running. Nothing syncs before every informer has listed once:
 * a plan from half a cluster would delete the rest.
 *
 * Revisions: every request gets a number; each owner records the revision
 * of the last round it completed. waitApplied(r, owners) resolves when those
 * owners completed a round that started after request r: an endpoint ADD
 * waits only on the owners that decide that endpoint's packets, so a failing
 * owner elsewhere (another map full) does not hold up pods.
 */
import { Backoff, DEFAULT_BACKOFF, type BackoffPolicy, type RandomSource } from './backoff.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { AgentError, asError } from './errors.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import type { MapFailure, RoundOutcome, SyncDatapath } from './ports.js';
import type { AgentSnapshot, SnapshotResult } from './snapshot.js';

export interface SyncLoopOptions {
  readonly datapath: SyncDatapath;
  readonly snapshot: () => SnapshotResult;
  /** False until a sync may run (every informer listed once). */
  readonly canSync: () => boolean;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  /** Quiet time after the last change before a sync starts, unless no sync started within it (then at once). Default 20 ms. */
  readonly debounceMs?: number;
  /** Longest a change waits for a sync while changes keep coming. Default 200 ms. */
  readonly maxDelayMs?: number;
  /** Retry of a failed sync. */
  readonly retry?: BackoffPolicy;
}

export interface OwnerStatus {
  readonly name: string;
  /** The revision of the last round this owner completed (0: none yet). */
  readonly appliedRevision: number;
  /** Its maps whose last write failed. */
  readonly failing: readonly MapFailure[];
  /** clock.now() when it last completed a round. */
  readonly appliedAt?: number;
  /** clock.now() of the oldest request it has not applied yet (absent: it holds every request). */
  readonly pendingSince?: number;
}

export interface SyncStatus {
  /** A full sync reached the maps at least once. */
  readonly firstSyncDone: boolean;
  readonly requestedRevision: number;
  readonly appliedRevision: number;
  readonly running: boolean;
  /** Maps whose last update failed (empty when the last sync was complete). */
  readonly failingMaps: readonly MapFailure[];
  readonly lastError?: string;
  /** clock.now() when the running sync started, for liveness. */
  readonly runningSince?: number;
  /** Per owner, in the order they run. */
  readonly owners: readonly OwnerStatus[];
}

interface Waiter {
  readonly revision: number;
  readonly owners: readonly string[];
  resolve(): void;
  reject(e: Error): void;
  timer: TimerHandle;
}

export class SyncLoop {
  private readonly clock: Clock;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly backoff: Backoff;
  private readonly log: Logger;

  private requested = 0;
  private readonly ownerApplied = new Map<string, number>();
  private readonly ownerFailures = new Map<string, readonly MapFailure[]>();
  private readonly ownerAppliedAt = new Map<string, number>();
  private readonly ownerPendingSince = new Map<string, number>();
  private applied = 0;
  private firstSyncDone = false;
  private running = false;
  private runningSince: number | undefined;
  private stopped = false;
  private pendingSince: number | undefined;
  /** A pending request asked not to wait for the debounce. */
  private immediatePending = false;
  /** A sync is scheduled at once (leading edge or immediate): later requests join it instead of pushing it back. */
  private startsNow = false;
  /** clock.now() when the last sync started. */
  private lastStart: number | undefined;
  /** clock.now() of the last request. */
  private lastRequest = 0;
  private timer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private failingMaps: readonly MapFailure[] = [];
  private lastError: string | undefined;
  private readonly waiters = new Set<Waiter>();
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly options: SyncLoopOptions) {
    this.clock = options.clock ?? systemClock;
    this.debounceMs = options.debounceMs ?? 20;
    this.maxDelayMs = options.maxDelayMs ?? 200;
    this.backoff = new Backoff(options.retry ?? DEFAULT_BACKOFF, options.random ?? Math.random);
    this.log = options.log;
  }

  /**
   * Asks for a sync; returns the revision that sync will cover. `immediate`
   * skips the debounce (a CNI ADD waits on it; informer bursts keep
   * coalescing): the sync starts now, or right after the one running.
   */
  trigger(reason: string, options: { readonly immediate?: boolean } = {}): number {
    this.requested++;
    const now = this.clock.now();
    this.pendingSince ??= now;
    for (const name of this.options.datapath.owners) if (!this.ownerPendingSince.has(name)) this.ownerPendingSince.set(name, now);
    this.lastRequest = now;
    if (options.immediate === true) this.immediatePending = true;
    this.log.trace({ reason, revision: this.requested, immediate: options.immediate === true }, 'sync requested');
    if (this.retryTimer !== undefined || this.startsNow) return this.requested;
    const idle = !this.running && this.timer === undefined;
    const sinceStart = this.lastStart === undefined ? Infinity : now - this.lastStart;
    if (this.immediatePending || (idle && sinceStart >= this.debounceMs)) this.schedule(0, true);
    // Nothing running or waiting, but a sync started lately: the rest of its debounce (a change behind this one pushes it back).
    else if (idle) this.schedule(this.debounceMs - sinceStart);
    else this.schedule(this.nextDelay(now));
    return this.requested;
  }

  /**
   * Resolves when revision `r` is in the maps of `owners` (default: every
   * owner); rejects (code unavailable, with the reason) after timeoutMs.
   */
  waitApplied(revision: number, timeoutMs: number, owners: readonly string[] = this.options.datapath.owners): Promise<void> {
    if (this.appliedBy(owners) >= revision) return Promise.resolve();
    if (this.stopped) return Promise.reject(new AgentError('unavailable', 'the agent is stopping'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        revision,
        owners,
        resolve,
        reject,
        timer: this.clock.setTimer(timeoutMs, () => {
          this.waiters.delete(waiter);
          reject(new AgentError('unavailable', `not in the datapath after ${timeoutMs} ms: ${this.whyNotApplied(owners)}`));
        }),
      };
      this.waiters.add(waiter);
    });
  }

  status(): SyncStatus {
    const s: SyncStatus = {
      firstSyncDone: this.firstSyncDone,
      requestedRevision: this.requested,
      appliedRevision: this.applied,
      running: this.running,
      failingMaps: this.failingMaps,
      owners: this.options.datapath.owners.map((name) => {
        const appliedAt = this.ownerAppliedAt.get(name);
        const pendingSince = this.ownerPendingSince.get(name);
        return {
          name, appliedRevision: this.ownerApplied.get(name) ?? 0, failing: this.ownerFailures.get(name) ?? [],
          ...(appliedAt !== undefined ? { appliedAt } : {}), ...(pendingSince !== undefined ? { pendingSince } : {}),
        };
      }),
    };
    return {
      ...s,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.runningSince !== undefined ? { runningSince: this.runningSince } : {}),
    };
  }

  /** Stops scheduling; a sync in flight finishes. Pending waiters are rejected. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.retryTimer?.cancel();
    for (const w of this.waiters) {
      w.timer.cancel();
      w.reject(new AgentError('unavailable', 'the agent is stopping'));
    }
    this.waiters.clear();
    await this.idle;
  }

  /** Until debounceMs have passed since the last request, but no later than maxDelayMs after the oldest pending one. */
  private nextDelay(now: number): number {
    return Math.min(this.lastRequest + this.debounceMs - now, (this.pendingSince ?? now) + this.maxDelayMs - now);
  }

  /** (Re)arms the timer that starts the next sync; `now`: a start at once, which later requests join rather than delay. */
  private schedule(ms: number, now = false): void {
    if (this.stopped) return;
    this.timer?.cancel();
    this.startsNow = now;
    this.timer = this.clock.setTimer(Math.max(0, ms), () => {
      this.timer = undefined;
      this.startsNow = false;
      this.kick();
    });
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    if (!this.options.canSync()) {
      // The owner triggers again when the informers have synced.
      return;
    }
    this.idle = this.runOnce();
  }

  private async runOnce(): Promise<void> {
    this.running = true;
    this.runningSince = this.clock.now();
    this.lastStart = this.runningSince;
    const revision = this.requested;
    const since = this.pendingSince;
    this.pendingSince = undefined;
    this.immediatePending = false;
    const { metrics } = this.options;
    let retry = false;
    const t0 = this.clock.now();
    try {
      const snap = this.options.snapshot();
      const t1 = this.clock.now();
      if (!snap.ok) {
        this.lastError = `the cluster snapshot is inconsistent (${snap.problems.length} problems, see the object problems)`;
        metrics.syncs.inc({ result: 'error' });
        this.log.error({ revision }, this.lastError);
        return;
      }
      const round = await this.options.datapath.reconcile(snap.snapshot);
      const t2 = this.clock.now();
      this.recordRound(round, revision, t0, t1, t2);
      const failures = round.owners.flatMap((o) => o.failures);
      if (failures.length > 0 || round.owners.some((o) => !o.complete)) {
        this.recordFailures(namedFailures(failures, snap.snapshot), revision);
        metrics.syncs.inc({ result: 'failed' });
        this.wakeWaiters();
        retry = true;
        return;
      }
      this.recordSuccess(revision, round.planned, since, t2);
    } catch (e) {
      const error = asError(e);
      this.lastError = error.message;
      this.options.datapath.invalidate();
      metrics.syncs.inc({ result: 'error' });
      this.log.error({ err: error, revision }, `sync failed: ${error.message}`);
      retry = true;
    } finally {
      this.running = false;
      this.runningSince = undefined;
      if (retry) this.scheduleRetry();
      else if (this.requested > revision) this.schedule(this.immediatePending ? 0 : this.nextDelay(this.clock.now()), this.immediatePending);
    }
  }

  /** Metrics of a round, and each owner that completed it now holds `revision`. */
  private recordRound(round: RoundOutcome, revision: number, t0: number, t1: number, t2: number): void {
    const { metrics } = this.options;
    metrics.mapOperations.inc(round.operations);
    const prepare = round.timings?.prepareMs ?? t2 - t1;
    const write = round.timings?.writeMs ?? 0;
    for (const [phase, ms] of [['snapshot', t1 - t0], ['compile', prepare], ['apply', write], ['total', t2 - t0]] as const) {
      metrics.syncDuration.observe({ phase }, ms / 1000);
    }
    metrics.identities.set(round.summary.identities);
    for (const [map, n] of Object.entries(round.summary.entries ?? {})) metrics.desiredEntries.set({ map }, n);
    for (const o of round.owners) {
      if (o.complete) {
        this.ownerApplied.set(o.name, Math.max(this.ownerApplied.get(o.name) ?? 0, revision));
        this.ownerAppliedAt.set(o.name, t2);
        // What it still lacks came after this round started: the loop's own oldest pending request.
        if (this.pendingSince === undefined) this.ownerPendingSince.delete(o.name);
        else this.ownerPendingSince.set(o.name, this.pendingSince);
      }
      this.ownerFailures.set(o.name, o.failures);
      metrics.ownerAppliedRevision.set({ owner: o.name }, this.ownerApplied.get(o.name) ?? 0);
      metrics.ownerComplete.set({ owner: o.name }, o.complete ? 1 : 0);
      if (o.planMs !== undefined) metrics.ownerDuration.observe({ owner: o.name, stage: 'plan' }, o.planMs / 1000);
      if (o.writeMs !== undefined) metrics.ownerDuration.observe({ owner: o.name, stage: 'write' }, o.writeMs / 1000);
    }
  }

  /** The revision every one of `owners` has completed (no owners: the loop's own). */
  private appliedBy(owners: readonly string[]): number {
    if (owners.length === 0) return this.applied;
    return Math.min(...owners.map((o) => this.ownerApplied.get(o) ?? 0));
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) {
      if (w.revision > this.appliedBy(w.owners)) continue;
      w.timer.cancel();
      this.waiters.delete(w);
      w.resolve();
    }
  }

  private recordSuccess(revision: number, operations: number, since: number | undefined, now: number): void {
    const { metrics } = this.options;
    for (const f of this.failingMaps) metrics.mapFailing.set({ map: f.map }, 0);
    metrics.endpointsFailedClosed.set(0);
    if (this.failingMaps.length > 0) this.log.info({ maps: this.failingMaps.map((f) => f.map) }, 'map updates recovered');
    this.failingMaps = [];
    this.lastError = undefined;
    this.backoff.reset();
    this.applied = Math.max(this.applied, revision);
    metrics.syncs.inc({ result: operations > 0 ? 'applied' : 'noop' });
    if (since !== undefined) metrics.syncLatency.observe((now - since) / 1000);
    if (!this.firstSyncDone) {
      this.firstSyncDone = true;
      this.log.info({ revision, operations }, 'first full sync is in the maps');
    } else if (operations > 0) {
      this.log.debug({ revision, operations }, 'sync applied');
    }
    this.wakeWaiters();
  }

  private recordFailures(failures: readonly MapFailure[], revision: number): void {
    const { metrics } = this.options;
    const before = new Set(this.failingMaps.map((f) => f.map));
    for (const f of failures) {
      metrics.mapUpdateFailures.inc({ map: f.map });
      metrics.mapFailing.set({ map: f.map }, 1);
      this.log.error(
        { map: f.map, code: f.code, endpoints: f.endpoints, endpointNames: f.endpointNames, revision },
        `map ${f.map} update failed: ${f.message}${f.endpointNames !== undefined && f.endpointNames.length > 0 ? ` (fail closed: ${f.endpointNames.join(', ')})` : ''}`,
      );
    }
    metrics.endpointsFailedClosed.set(new Set(failures.flatMap((f) => f.endpoints ?? [])).size);
    for (const m of before) if (!failures.some((f) => f.map === m)) metrics.mapFailing.set({ map: m }, 0);
    this.failingMaps = failures;
    this.lastError = failures.map((f) => `${f.map}: ${f.message}`).join('; ');
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const delay = this.backoff.next();
    // A retry is a request of its own: it covers everything asked so far.
    this.pendingSince ??= this.clock.now();
    this.retryTimer = this.clock.setTimer(delay, () => {
      this.retryTimer = undefined;
      this.kick();
    });
  }

  private whyNotApplied(owners: readonly string[]): string {
    if (!this.options.canSync()) return 'waiting for the first list of every informer from the API server';
    const failing = owners.flatMap((o) => this.ownerFailures.get(o) ?? []);
    if (failing.length > 0) return `map updates failing: ${failing.map((f) => `${f.map}: ${f.message}`).join('; ')}`;
    if (this.failingMaps.length > 0) return `map updates failing: ${this.failingMaps.map((f) => `${f.map}: ${f.message}`).join('; ')}`;
    if (this.lastError !== undefined) return `last sync failed: ${this.lastError}`;
    return 'the sync is still running';
  }
}

/** The failures with their endpoints named by pod, for the log and /readyz. */
function namedFailures(failures: readonly MapFailure[], snapshot: AgentSnapshot): MapFailure[] {
  const pods = new Map(snapshot.localEndpoints.map(({ endpoint: e }) => [e.endpointId, `${e.podNamespace}/${e.podName}`]));
  return failures.map((f) => f.endpoints === undefined
    ? f
    : { ...f, endpointNames: f.endpoints.map((id) => { const pod = pods.get(id); return pod === undefined ? `endpoint ${id}` : `${pod} (endpoint ${id})`; }) });
}
