/**
 * What the agent needs from the policy compiler and the datapath, as small
 * interfaces of its own. The agent only wires: snapshot → compile → plan →
 * apply; what a compiled state or a plan contains is opaque to it (type
 * parameters S and P). Adapters over src/policy/compile*.ts and
 * src/datapath/** implement these; tests use fakes.
 */
import type { AgentSnapshot } from './snapshot.js';

/** Counts the agent exports as metrics for a compiled state. */
export interface StateSummary {
  readonly identities: number;
  /** Entries the state wants per map, by map name. */
  readonly entries?: Readonly<Record<string, number>>;
}

/**
 * Pure: snapshot → desired datapath state, and the ordered change from one
 * state to another. S is both what the maps hold (DatapathWriter.readCurrent)
 * and what a compile wants; an implementation may carry its memo for the next
 * incremental compile inside the states it returns.
 */
export interface PolicyCompiler<S, P> {
  /** `current` is what the maps hold now: the baseline for ids and revisions. */
  compile(snapshot: AgentSnapshot, current: S): S;
  /**
   * The change that takes the maps from `current` to `desired`, ordered so
   * that no step allows what either state denies (the compiler's guarantee).
   */
  plan(current: S, desired: S): P;
  /** Map operations in the plan; 0 means nothing to write. */
  planSize(plan: P): number;
  summary(state: S): StateSummary;
}

/** A map update that failed (e.g. E2BIG/ENOSPC: the map is full). */
export interface MapFailure {
  readonly map: string;
  readonly message: string;
  /** errno name or other machine-readable code, when known. */
  readonly code?: string;
  /** Endpoints with a failed write: they fail closed (drop reason POLICY_INCOMPLETE) until a complete apply. */
  readonly endpoints?: readonly number[];
  /** The same endpoints by pod ("default/b (endpoint 3)"), added by the sync loop, which knows the pods. */
  readonly endpointNames?: readonly string[];
}

export interface ApplyResult {
  /** Operations written. */
  readonly applied: number;
  /** Empty when the whole plan reached the maps. */
  readonly failures: readonly MapFailure[];
}

/** The maps, as seen by the agent. */
export interface DatapathWriter<S, P> {
  /** What the pinned maps hold now, in the compiler's terms: the start of a restart, and the truth after a failure. */
  readCurrent(): Promise<S>;
  apply(plan: P): Promise<ApplyResult>;
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
