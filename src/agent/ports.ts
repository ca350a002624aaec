/**
 * What the agent needs from the datapath, as small interfaces of its own:
 * rounds over the map owners (SyncDatapath) and counters read at scrape time
 * (DatapathStats). datapath/reconcilers.ts implements them over
 * src/reconcile; tests use fakes.
 */
import type { MapFailure } from '../reconcile/reconciler.js';
import type { SluiceEvent } from '../datapath/generated/abi.js';
import type { AppliedView } from '../reconcile/applied-view.js';
import type { AgentSnapshot } from './snapshot.js';

/** Counts the agent exports as metrics after a round. */
export interface StateSummary {
  readonly identities: number;
  /** Entries the owners want per map, by map job name. */
  readonly entries?: Readonly<Record<string, number>>;
}

export type { MapFailure };

/** One owner's part of a round, as the sync loop sees it. */
export interface OwnerOutcome {
  readonly name: string;
  /** Its maps hold what the snapshot asks (nothing failed or was closed in its group). */
  readonly complete: boolean;
  readonly failures: readonly MapFailure[];
  /** Time in its plan and in its writes this round, ms (absent: not measured). */
  readonly planMs?: number;
  readonly writeMs?: number;
}

export interface RoundOutcome {
  /** Entries the round's plans asked to write or delete (0: nothing to do). */
  readonly planned: number;
  /** Entries written or deleted. */
  readonly operations: number;
  readonly owners: readonly OwnerOutcome[];
  readonly summary: StateSummary;
  /** Time spent before the writes (read-back, compile, plan) and in them, in ms, for the phase metrics. */
  readonly timings?: { readonly prepareMs: number; readonly writeMs: number };
}

/**
 * The datapath as the sync loop drives it: a list of map owners
 * (src/reconcile) run as one round per snapshot. What each owner wants and
 * holds is opaque to the loop; it schedules rounds, tracks each owner's
 * applied revision, retries and reports.
 */
export interface SyncDatapath {
  /** The owners' names, in the order they run. */
  readonly owners: readonly string[];
  /** The owners whose maps decide a local endpoint's packets: an endpoint ADD waits on these only. */
  readonly endpointOwners: readonly string[];
  /** One round for this snapshot. Rejects only when no owner could run (e.g. the compile threw). */
  reconcile(snapshot: AgentSnapshot): Promise<RoundOutcome>;
  /** Every owner forgets its view of its maps: the next round reads them back. */
  invalidate(): void;
}

export interface MapUsage {
  readonly map: string;
  readonly entries: number;
  readonly maxEntries: number;
}

export interface PacketCounter {
  /** INGRESS | EGRESS. */
  readonly direction: string;
  /** Drop reason name from the generated enum; NONE = forwarded. */
  readonly reason: string;
  readonly packets: bigint;
  readonly bytes: bigint;
}

/** Read at scrape time for metrics. */
export interface DatapathStats {
  mapUsage(): readonly MapUsage[];
  /** Cumulative counters from the metrics map, summed over CPUs. */
  packetCounters(): readonly PacketCounter[];
}

/** What the flow pipeline reads from the datapath (datapath/reconcilers.ts; tests use fakes). */
export interface FlowSource {
  /** Starts delivering decoded datapath events; returns stop. */
  readEvents(onEvents: (events: SluiceEvent[]) => void): { stop(): void };
  /** Events the datapath could not emit (ring buffer full), per CPU, cumulative. */
  lostEventsPerCpu(): readonly bigint[];
  /** What the numbers in the maps mean now. */
  applied(): AppliedView;
  /** Which allowed packets the datapath reports (drops always are). */
  setTraceMode(mode: 'off' | 'policy' | 'tcp-flags' | 'all'): void;
}
