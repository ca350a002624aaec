/**
 * The endpoint sweep: frees the attachments whose pod network namespace
 * vanished without a CNI DEL (runtime crash, a netns deleted by hand). The
 * host veth dies with the namespace, but the registration, the CNI's IPAM
 * allocation, the veth's sl_lxc_v1 entry and (through the registration) the
 * endpoint's map entries would stay forever: nobody is left to send DEL, and
 * the runtime's GC only runs when the runtime comes back and remembers.
 *
 * Evidence, all of it, for one registered endpoint:
 *   1. its host veth is gone: no link named hostIfname, and the link at
 *      hostIfindex (if any) does not carry the attachment's alias;
 *   2. its netns path (CNI_NETNS) does not exist;
 *   3. both held at two sweeps at least `graceMs` apart, with nothing seen
 *      alive in between.
 * Why this cannot race with an ADD or a DEL in progress: ADD creates the veth
 * (step 2) before it registers (step 3), and the registrations are read
 * before the links are listed, so an endpoint of an ADD in progress has its
 * veth in the listing; an ADD needs its netns path to exist (a rerun ADD that
 * replaces its veth keeps the netns); and a DEL in progress competes for the
 * same registry entry, which is deleted under the registry's serialisation
 * by exactly one of them — the sweep releases nothing of an endpoint it did
 * not deregister itself. The grace period covers whatever is not ordered:
 * tools that delete a veth and recreate it, clocks at start-up.
 *
 * Release, in DEL's order: the sl_lxc_v1 entry (only if it still names this
 * endpoint id), the registration (the next sync removes the endpoint's map
 * entries), then the address (only if its IPAM link still names the
 * attachment): the address is freed only after no endpoint holds it, so a
 * new pod never gets an address the agent still has a registration for.
 * An address that could not be released is retried at the next sweeps.
 *
 * One record's failure is logged, counted and skipped; a failed link listing
 * skips the whole round (no evidence, nothing judged).
 */
import type { Clock, TimerHandle } from '../clock.js';
import { asError } from '../errors.js';
import type { Logger } from '../logger.js';
import { attachmentKey, type EndpointRecord } from '../../endpoint/contract.js';

export interface SweepRegistry {
  list(): EndpointRecord[];
  delete(containerId: string, ifname: string): Promise<EndpointRecord | undefined>;
}

/** What the sweep reads and frees outside the registry (sweep-host.ts on a node, fakes in tests). */
export interface SweepHost {
  /** Whether the endpoint's host veth is among the node's links; the listing is taken by snapshotLinks(). */
  snapshotLinks(): LinkSnapshot;
  /** false only when the path does not exist (ENOENT); other errors throw. */
  netnsExists(path: string): boolean;
  /** Deletes sl_lxc_v1[ifindex] if it names endpointId; false when there was no such entry. */
  releaseLxcEntry(ifindex: number, endpointId: number): boolean;
  /** Frees the address if its IPAM link still names the attachment; false when it did not. */
  releaseAddress(ip: string, e: EndpointRecord): boolean;
}

export interface LinkSnapshot {
  hasHostVeth(e: EndpointRecord): boolean;
}

export interface SweepMetrics {
  removed(): void;
  error(step: SweepStep): void;
  pending(n: number): void;
}

export type SweepStep = 'links' | 'evidence' | 'lxc' | 'registry' | 'ipam';

export interface SweepOptions {
  readonly registry: SweepRegistry;
  readonly host: SweepHost;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: SweepMetrics;
  readonly intervalMs: number;
  readonly graceMs: number;
  /** Told after each deregistration (the agent triggers a sync to remove the map entries). */
  readonly onRemoved: (e: EndpointRecord) => void;
}

export interface SweptEndpoint {
  readonly endpoint: EndpointRecord;
  readonly lxcEntry: boolean;
  readonly addressReleased: boolean;
}

export class EndpointSweeper {
  /** attachment key → when it was first seen without veth and netns (clock ms). */
  private readonly goneSince = new Map<string, number>();
  /** Deregistered endpoints whose address is not released yet. */
  private readonly unreleased = new Map<string, EndpointRecord>();
  private timer: TimerHandle | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = true;

  constructor(private readonly o: SweepOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Cancels the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.running;
  }

  /** One round; resolves with what it removed. Never throws. */
  sweep(): Promise<SweptEndpoint[]> {
    const run = this.running.then(() => this.round());
    this.running = run.catch(() => undefined);
    return run;
  }

  private schedule(): void {
    this.timer = this.o.clock.setTimer(this.o.intervalMs, () => {
      void this.sweep().finally(() => {
        if (!this.stopped) this.schedule();
      });
    });
  }

  private async round(): Promise<SweptEndpoint[]> {
    const { log, metrics } = this.o;
    this.retryAddresses();
    // Registrations first, links second: an endpoint registered by now has its veth in the listing.
    const endpoints = this.o.registry.list();
    let links: LinkSnapshot;
    try {
      links = this.o.host.snapshotLinks();
    } catch (e) {
      metrics.error('links');
      log.warn({ err: asError(e) }, `endpoint sweep skipped: cannot list the node's links: ${asError(e).message}`);
      return [];
    }
    const now = this.o.clock.now();
    const seen = new Set<string>();
    const swept: SweptEndpoint[] = [];
    for (const e of endpoints) {
      const key = attachmentKey(e);
      seen.add(key);
      try {
        if (links.hasHostVeth(e) || this.o.host.netnsExists(e.netns)) {
          this.goneSince.delete(key);
          continue;
        }
      } catch (err) {
        metrics.error('evidence');
        this.goneSince.delete(key); // no evidence this round: the grace period starts again
        log.warn({ err: asError(err), ...fields(e) }, `endpoint sweep: cannot check ${key}: ${asError(err).message}`);
        continue;
      }
      const since = this.goneSince.get(key);
      if (since === undefined) {
        this.goneSince.set(key, now);
        log.info(fields(e), `endpoint ${key}: host veth ${e.hostIfname} and netns ${e.netns} are gone; swept after ${this.o.graceMs} ms unless they return`);
        continue;
      }
      if (now - since < this.o.graceMs) continue;
      const done = await this.release(e, now - since);
      this.goneSince.delete(key);
      if (done !== undefined) swept.push(done);
    }
    for (const key of this.goneSince.keys()) if (!seen.has(key)) this.goneSince.delete(key);
    metrics.pending(this.goneSince.size);
    return swept;
  }

  private async release(e: EndpointRecord, goneForMs: number): Promise<SweptEndpoint | undefined> {
    const { log, metrics, host } = this.o;
    const key = attachmentKey(e);
    let lxcEntry: boolean;
    try {
      lxcEntry = host.releaseLxcEntry(e.hostIfindex, e.endpointId);
    } catch (err) {
      metrics.error('lxc');
      log.warn({ err: asError(err), ...fields(e) }, `endpoint sweep: cannot delete the sl_lxc_v1 entry of ${key} (ifindex ${e.hostIfindex}), kept registered: ${asError(err).message}`);
      return undefined;
    }
    let removed: EndpointRecord | undefined;
    try {
      removed = await this.o.registry.delete(e.containerId, e.ifname);
    } catch (err) {
      metrics.error('registry');
      log.warn({ err: asError(err), ...fields(e) }, `endpoint sweep: cannot deregister ${key}: ${asError(err).message}`);
      return undefined;
    }
    // Gone meanwhile: a DEL deregistered it and releases the address itself.
    if (removed === undefined) return undefined;
    this.o.onRemoved(removed);
    const addressReleased = this.releaseAddress(removed);
    metrics.removed();
    log.info({ ...fields(removed), goneForMs: Math.round(goneForMs), lxcEntry, addressReleased },
      `endpoint swept: ${key} (pod ${removed.podNamespace}/${removed.podName}, ip ${removed.ip}, endpoint ${removed.endpointId}): its veth and netns were gone for ${Math.round(goneForMs)} ms without a CNI DEL`);
    return { endpoint: removed, lxcEntry, addressReleased };
  }

  /** false also when it failed (then retried at the next rounds). */
  private releaseAddress(e: EndpointRecord): boolean {
    const key = attachmentKey(e);
    try {
      const released = this.o.host.releaseAddress(e.ip, e);
      this.unreleased.delete(key);
      return released;
    } catch (err) {
      this.o.metrics.error('ipam');
      this.unreleased.set(key, e);
      this.o.log.warn({ err: asError(err), ...fields(e) }, `endpoint sweep: deregistered ${key} but cannot release ${e.ip} yet (retried): ${asError(err).message}`);
      return false;
    }
  }

  private retryAddresses(): void {
    for (const e of [...this.unreleased.values()]) {
      if (this.releaseAddress(e)) this.o.log.info(fields(e), `endpoint sweep: released ${e.ip} of ${attachmentKey(e)} on retry`);
    }
  }
}

function fields(e: EndpointRecord): Record<string, unknown> {
  return {
    containerId: e.containerId, ifname: e.ifname, pod: `${e.podNamespace}/${e.podName}`, ip: e.ip,
    endpointId: e.endpointId, hostIfname: e.hostIfname, hostIfindex: e.hostIfindex, netns: e.netns,
  };
}
