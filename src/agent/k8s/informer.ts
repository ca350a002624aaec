/**
 * A list+watch informer for one resource, in the style of client-go's
 * reflector, on the KubeTransport port:
 * - list (paginated) → cache replaced, deletions missed meanwhile detected →
 *   watch from the list's resourceVersion, bookmarks keep it fresh;
 * - a watch the server ends normally is resumed at once from the last
 *   resourceVersion; `410 Gone`/Expired (the version was compacted away)
 *   clears it and relists;
 * - every other failure waits an exponential backoff with jitter; the
 *   backoff resets only after a watch stayed up for `healthyAfterMs`, so a
 *   server that accepts and drops connections is not hammered with lists;
 * - a watch that goes silent for longer than the server-side timeout plus a
 *   margin (a half-open connection) is abandoned and restarted.
 * Objects are stored slim (resources.ts): memory is bounded by the number of
 * objects times what Sluice needs of each.
 */
import { Backoff, DEFAULT_BACKOFF, type BackoffPolicy, type RandomSource } from '../backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { asError } from '../errors.js';
import { ObjectStore, type ReadonlyStore, type StoreChange } from './store.js';
import { objectKey, resourceVersionOf, type ResourceType, type SlimObject } from './resources.js';
import { isExpired, statusToError, type KubeTransport, type WatchEvent, type WatchHandle } from './transport.js';
import { ValuePool } from './value-pool.js';

/** Why a watch ended: the server closed it, 410, a failure, silence, or stop(). */
export type WatchEndReason = 'closed' | 'expired' | 'error' | 'idle' | 'stopped';

export interface InformerHooks {
  /** The watch ended and will be restarted (after `delayMs`). */
  onWatchRestart?(resource: string, reason: Exclude<WatchEndReason, 'stopped'>, delayMs: number, error?: Error): void;
  /** A list failed; retried after `delayMs`. */
  onListError?(resource: string, error: Error, delayMs: number): void;
  /** A full list replaced the cache. */
  onRelist?(resource: string, objects: number): void;
  /** The first list completed. */
  onSynced?(resource: string): void;
  /** An object without metadata.name, ignored. */
  onInvalidObject?(resource: string, raw: unknown): void;
}

export interface InformerOptions {
  readonly transport: KubeTransport;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  readonly backoff?: BackoffPolicy;
  /** Objects per list page. Default 500. */
  readonly pageSize?: number;
  /** Server-side watch timeout; each watch asks for a random value in [t, 2t) so agents spread out. Default 300. */
  readonly watchTimeoutSeconds?: number;
  /** No event for this long beyond the server-side timeout → the watch is presumed dead. Default 30 s. */
  readonly idleMarginMs?: number;
  /** A watch that lived this long before ending counts as healthy (backoff reset). Default 10 s. */
  readonly healthyAfterMs?: number;
  readonly hooks?: InformerHooks;
}

export interface InformerStatus {
  readonly resource: string;
  readonly synced: boolean;
  /** A watch is open (or being opened). */
  readonly watching: boolean;
  readonly objects: number;
  readonly resourceVersion: string;
  readonly restarts: number;
  readonly relists: number;
  /** Failures since the last healthy watch. */
  readonly failures: number;
  readonly lastError?: string;
}

export type ChangeListener<T> = (changes: readonly StoreChange<T>[]) => void;

interface WatchEnd {
  readonly reason: WatchEndReason;
  readonly error?: Error;
  readonly livedMs: number;
}

export class Informer<T extends SlimObject> {
  private readonly objects = new ObjectStore<T>();
  /** Parts many objects repeat, one instance each (the resource's shape marks them). */
  private readonly pool = new ValuePool();
  private readonly listeners = new Set<ChangeListener<T>>();
  private readonly transport: KubeTransport;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly backoff: Backoff;
  private readonly pageSize: number;
  private readonly watchTimeoutSeconds: number;
  private readonly idleMarginMs: number;
  private readonly healthyAfterMs: number;
  private readonly hooks: InformerHooks;

  private started = false;
  private stopped = false;
  private synced = false;
  private watching = false;
  private resourceVersion = '';
  private restarts = 0;
  private relists = 0;
  private lastError: string | undefined;
  private endWatch: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private readonly syncedPromise: Promise<void>;
  private resolveSynced!: () => void;

  constructor(
    readonly resource: ResourceType<T>,
    options: InformerOptions,
  ) {
    this.transport = options.transport;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF, this.random);
    this.pageSize = options.pageSize ?? 500;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;
    this.idleMarginMs = options.idleMarginMs ?? 30_000;
    this.healthyAfterMs = options.healthyAfterMs ?? 10_000;
    this.hooks = options.hooks ?? {};
    this.syncedPromise = new Promise((resolve) => {
      this.resolveSynced = resolve;
    });
  }

  get store(): ReadonlyStore<T> {
    return this.objects;
  }

  /** Starts listing and watching; the constructor does no I/O. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.loop().catch((e: unknown) => {
      // Only a throwing hook can get here; the informer is dead, and says so in its status.
      this.lastError = `informer stopped: ${asError(e).message}`;
      this.watching = false;
    });
  }

  /**
   * Ends the watch and any wait; no change is delivered after this returns.
   * A list in flight is not awaited (it may take a minute against a slow
   * server): its result is dropped when it lands.
   */
  stop(): Promise<void> {
    this.stopped = true;
    this.endWatch?.();
    this.wake?.();
    return Promise.resolve();
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first full list is in the cache. */
  whenSynced(): Promise<void> {
    return this.syncedPromise;
  }

  /** Calls `listener` with every batch of changes (one per watch event, one per relist). Returns an unsubscribe. */
  onChange(listener: ChangeListener<T>): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  status(): InformerStatus {
    const s: InformerStatus = {
      resource: this.resource.name,
      synced: this.synced,
      watching: this.watching,
      objects: this.objects.size,
      resourceVersion: this.resourceVersion,
      restarts: this.restarts,
      relists: this.relists,
      failures: this.backoff.failures,
    };
    return this.lastError === undefined ? s : { ...s, lastError: this.lastError };
  }

  private async loop(): Promise<void> {
    let previous: WatchEndReason | undefined;
    while (!this.stopped) {
      if (this.resourceVersion === '') {
        try {
          await this.relist();
        } catch (e) {
          if (this.stopped) return;
          const error = asError(e);
          this.lastError = `list: ${error.message}`;
          const delay = this.backoff.next();
          this.hooks.onListError?.(this.resource.name, error, delay);
          await this.pause(delay);
          continue;
        }
        if (this.stopped) return;
      }
      const end = await this.watchOnce();
      if (this.stopped || end.reason === 'stopped') return;
      this.restarts++;
      if (end.livedMs >= this.healthyAfterMs) this.backoff.reset();
      let delay: number;
      if (end.reason === 'expired') {
        this.resourceVersion = '';
        // One immediate relist; a second 410 in a row backs off like any failure.
        delay = previous === 'expired' ? this.backoff.next() : 0;
      } else if (end.reason === 'closed' && end.livedMs >= this.healthyAfterMs) {
        delay = 0;
      } else {
        delay = this.backoff.next();
      }
      if (end.error !== undefined) this.lastError = `watch: ${end.error.message}`;
      this.hooks.onWatchRestart?.(this.resource.name, end.reason, delay, end.error);
      previous = end.reason;
      if (delay > 0) await this.pause(delay);
    }
  }

  private async relist(): Promise<void> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const query: Record<string, string> = { limit: String(this.pageSize) };
      if (continueToken !== undefined) query['continue'] = continueToken;
      const page = await this.transport.list(this.resource.path, query);
      if (this.stopped) return;
      for (const raw of page.items) {
        const slim = this.resource.slim(raw, this.pool);
        if (slim === undefined) this.hooks.onInvalidObject?.(this.resource.name, raw);
        else items.push(slim);
      }
      resourceVersion = page.resourceVersion;
      continueToken = page.continueToken;
    } while (continueToken !== undefined);
    const changes = this.objects.replace(items);
    this.resourceVersion = resourceVersion;
    this.relists++;
    this.hooks.onRelist?.(this.resource.name, items.length);
    this.emit(changes);
    if (!this.synced) {
      this.synced = true;
      this.resolveSynced();
      this.hooks.onSynced?.(this.resource.name);
    }
  }

  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      const started = this.clock.now();
      const timeoutSeconds = this.watchTimeoutSeconds + Math.floor(this.random() * this.watchTimeoutSeconds);
      const idleMs = timeoutSeconds * 1000 + this.idleMarginMs;
      let done = false;
      let idle: TimerHandle | undefined;
      // Set once transport.watch returns; onClose may fire before that.
      const stream: { handle?: WatchHandle } = {};
      const finish = (reason: WatchEndReason, error?: Error): void => {
        if (done) return;
        done = true;
        idle?.cancel();
        stream.handle?.stop();
        this.watching = false;
        this.endWatch = undefined;
        const livedMs = this.clock.now() - started;
        resolve(error === undefined ? { reason, livedMs } : { reason, error, livedMs });
      };
      const armIdle = (): void => {
        idle?.cancel();
        idle = this.clock.setTimer(idleMs, () => finish('idle', new Error(`no watch event or close for ${idleMs} ms`)));
      };
      this.watching = true;
      this.endWatch = () => finish('stopped');
      armIdle();
      stream.handle = this.transport.watch(
        this.resource.path,
        { resourceVersion: this.resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutSeconds) },
        {
          onEvent: (event) => {
            if (done || this.stopped) return;
            armIdle();
            const end = this.apply(event);
            if (end !== undefined) finish(end.reason, end.error);
          },
          onClose: (error) => {
            if (error === null) finish('closed');
            else finish(isExpired(error) ? 'expired' : 'error', error);
          },
        },
      );
      if (done) stream.handle.stop();
    });
  }

  /** Applies one watch event; returns how the watch ends when the event ends it. */
  private apply(event: WatchEvent): { reason: WatchEndReason; error: Error } | undefined {
    if (event.type === 'ERROR') {
      const error = statusToError(event.object, 500, `watch ${this.resource.path}`);
      return { reason: error.status === 410 ? 'expired' : 'error', error };
    }
    const rv = resourceVersionOf(event.object);
    if (event.type !== 'BOOKMARK') {
      const slim = this.resource.slim(event.object, this.pool);
      if (slim === undefined) {
        this.hooks.onInvalidObject?.(this.resource.name, event.object);
      } else {
        const change = event.type === 'DELETED' ? this.objects.remove(objectKey(slim)) : this.objects.upsert(slim);
        if (change !== undefined) this.emit([change]);
      }
    }
    if (rv !== undefined) this.resourceVersion = rv;
    return undefined;
  }

  private emit(changes: readonly StoreChange<T>[]): void {
    if (changes.length === 0) return;
    for (const l of [...this.listeners]) {
      try {
        l(changes);
      } catch (e) {
        // A listener's bug must not stop the watch that feeds every other listener.
        this.lastError = `change listener failed: ${asError(e).message}`;
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.setTimer(ms, () => {
        this.wake = undefined;
        resolve();
      });
      this.wake = () => {
        timer.cancel();
        this.wake = undefined;
        resolve();
      };
    });
  }
}
