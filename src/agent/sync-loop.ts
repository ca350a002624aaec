/**
 * The sync loop: changes (watch events, endpoint registrations) request a
 * sync; requests are debounced (a burst of events is one sync, but no
 * change waits longer than maxDelayMs), except an immediate one (an
 * endpoint ADD the CNI waits on); one sync runs at a time:
 *
 *   snapshot → compile → plan(current, desired) → apply → current = desired
 *
 * `current` starts as what the pinned maps hold (a restarted agent applies
 * only the difference) and is re-read from the maps after any failure, so
 * the next plan starts from the truth, not from what we hoped we wrote.
 * A failed apply is retried with backoff and reported per map; the agent
 * keeps running. Nothing syncs before every informer has listed once: a
 * plan from half a cluster would delete the rest.
 *
 * Revisions: every request gets a number; waitApplied(r) resolves when a
 * sync that started after request r reached the maps. The endpoint API uses
 * it to answer the CNI only once the new pod's policy is enforced.
 */
import { Backoff, DEFAULT_BACKOFF, type BackoffPolicy, type RandomSource } from './backoff.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { AgentError, asError } from './errors.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import type { DatapathWriter, MapFailure, PolicyCompiler } from './ports.js';
import type { AgentSnapshot, SnapshotResult } from './snapshot.js';

export interface SyncLoopOptions<S, P> {
  readonly compiler: PolicyCompiler<S, P>;
  readonly writer: DatapathWriter<S, P>;
  readonly snapshot: () => SnapshotResult;
  /** False until a sync may run (every informer listed once). */
  readonly canSync: () => boolean;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  /** Quiet time after the last change before a sync starts. Default 20 ms. */
  readonly debounceMs?: number;
  /** Longest a change waits for a sync while changes keep coming. Default 200 ms. */
  readonly maxDelayMs?: number;
  /** Retry of a failed sync. */
  readonly retry?: BackoffPolicy;
  /** Called with the state now in the maps after each sync that reached them (after its waiters resolved); must not throw. */
  readonly onApplied?: (state: S) => void;
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
}

interface Waiter {
  readonly revision: number;
  resolve(): void;
  reject(e: Error): void;
  timer: TimerHandle;
}

export class SyncLoop<S, P> {
  private readonly clock: Clock;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly backoff: Backoff;
  private readonly log: Logger;

  private current: S | undefined;
  private requested = 0;
  private applied = 0;
  private firstSyncDone = false;
  private running = false;
  private runningSince: number | undefined;
  private stopped = false;
  private pendingSince: number | undefined;
  /** A pending request asked not to wait for the debounce. */
  private immediatePending = false;
  private timer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private failingMaps: readonly MapFailure[] = [];
  private lastError: string | undefined;
  private readonly waiters = new Set<Waiter>();
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly options: SyncLoopOptions<S, P>) {
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
    if (options.immediate === true) this.immediatePending = true;
    this.log.trace({ reason, revision: this.requested, immediate: options.immediate === true }, 'sync requested');
    if (this.retryTimer === undefined) this.schedule(this.immediatePending ? 0 : Math.min(this.debounceMs, this.pendingSince + this.maxDelayMs - now));
    return this.requested;
  }

  /** Resolves when revision `r` is in the maps; rejects (code unavailable, with the reason) after timeoutMs. */
  waitApplied(revision: number, timeoutMs: number): Promise<void> {
    if (this.applied >= revision) return Promise.resolve();
    if (this.stopped) return Promise.reject(new AgentError('unavailable', 'the agent is stopping'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        revision,
        resolve,
        reject,
        timer: this.clock.setTimer(timeoutMs, () => {
          this.waiters.delete(waiter);
          reject(new AgentError('unavailable', `not in the datapath after ${timeoutMs} ms: ${this.whyNotApplied()}`));
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

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer?.cancel();
    this.timer = this.clock.setTimer(Math.max(0, ms), () => {
      this.timer = undefined;
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
    const revision = this.requested;
    const since = this.pendingSince;
    this.pendingSince = undefined;
    this.immediatePending = false;
    const { metrics } = this.options;
    let retry = false;
    const t0 = this.clock.now();
    try {
      this.current ??= await this.options.writer.readCurrent();
      const snap = this.options.snapshot();
      const t1 = this.clock.now();
      if (!snap.ok) {
        this.lastError = `the cluster snapshot is inconsistent (${snap.problems.length} problems, see the object problems)`;
        metrics.syncs.inc({ result: 'error' });
        this.log.error({ revision }, this.lastError);
        return;
      }
      const desired = this.options.compiler.compile(snap.snapshot, this.current);
      const t2 = this.clock.now();
      const plan = this.options.compiler.plan(this.current, desired);
      const size = this.options.compiler.planSize(plan);
      const t3 = this.clock.now();
      const result = size > 0 ? await this.options.writer.apply(plan) : { applied: 0, failures: [] };
      const t4 = this.clock.now();
      metrics.mapOperations.inc(result.applied);
      for (const [phase, ms] of [['snapshot', t1 - t0], ['compile', t2 - t1], ['plan', t3 - t2], ['apply', t4 - t3], ['total', t4 - t0]] as const) {
        metrics.syncDuration.observe({ phase }, ms / 1000);
      }
      const summary = this.options.compiler.summary(desired);
      metrics.identities.set(summary.identities);
      for (const [map, n] of Object.entries(summary.entries ?? {})) metrics.desiredEntries.set({ map }, n);

      if (result.failures.length > 0) {
        this.recordFailures(namedFailures(result.failures, snap.snapshot), revision);
        metrics.syncs.inc({ result: 'failed' });
        // The maps hold part of the plan: start the retry's plan from what is really there.
        this.current = await this.options.writer.readCurrent();
        retry = true;
        return;
      }
      this.current = desired;
      this.recordSuccess(revision, size, since, t4);
      this.options.onApplied?.(desired);
    } catch (e) {
      const error = asError(e);
      this.lastError = error.message;
      this.current = undefined;
      metrics.syncs.inc({ result: 'error' });
      this.log.error({ err: error, revision }, `sync failed: ${error.message}`);
      retry = true;
    } finally {
      this.running = false;
      this.runningSince = undefined;
      if (retry) this.scheduleRetry();
      else if (this.requested > revision) this.schedule(this.immediatePending ? 0 : this.debounceMs);
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
    for (const w of [...this.waiters]) {
      if (w.revision > this.applied) continue;
      w.timer.cancel();
      this.waiters.delete(w);
      w.resolve();
    }
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

  private whyNotApplied(): string {
    if (!this.options.canSync()) return 'waiting for the first list of every informer from the API server';
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
