/**
 * The contract every map owner meets. One reconciler owns one BPF map (or a
 * small family written as one unit): its desired state from the round's
 * input, the read-back of what the map holds, an ordered diff, the writes,
 * and the report of what failed. The agent's sync loop runs the list
 * in rounds over one shared input; nothing else writes the owner's maps.
 *
 * Writes are phased so that owners whose maps decide together (endpoints,
 * ipcache, policy) can interleave "restrict before relax" across maps: every
 * owner returns steps tagged with a phase, and a round (round.ts) runs all steps
 * of phase 1 (of every owner), then phase 2, and so on. A failed write is
 * never thrown: the owner reports it, and may ask the others, through the
 * round's FailClosed, to close what the failure leaves uncertain.
 */

/** Write phases, in the order a round runs them (docs/architecture.md). */
export const Phase = {
  /** Endpoints that become more isolated get the union of old and new isolation. */
  RESTRICT: 1,
  /** Allows that go (policy deletes). */
  REMOVE_ALLOWS: 2,
  /** Address → identity upserts, longest prefix first. */
  IPCACHE_UPSERT: 3,
  /** Address → identity deletes, shortest prefix first. */
  IPCACHE_DELETE: 4,
  /** New allows. */
  ADD_ALLOWS: 5,
  /** Final endpoint entries (isolation, masks, revisions), and whatever depends on them being in place. */
  PUBLISH: 6,
  /** Endpoints and state that went away. */
  RETIRE: 7,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** A map write that failed (E2BIG/ENOSPC: the map is full; anything else the kernel refused). */
export interface MapFailure {
  /** The map by its job ("policy", "ipcache", "iphost", "endpoints", "lxc", "ct-config"). */
  readonly map: string;
  readonly message: string;
  /** errno name or other machine-readable code, when known. */
  readonly code?: string;
  /** Endpoints closed because of this failure: they drop everything (POLICY_INCOMPLETE) until a complete round. */
  readonly endpoints?: readonly number[];
  /** The same endpoints by pod ("default/b (endpoint 3)"), added by the scheduler, which knows the pods. */
  readonly endpointNames?: readonly string[];
}

/**
 * Fail-closed actions an owner may ask of the others during a round. They
 * take effect at once; later steps respect them.
 */
export interface FailClosed {
  /** Close an endpoint as a unit: it drops everything until a complete round. */
  closeEndpoint(endpointId: number): void;
  /** These identities may now stand for addresses that lack their facts: remove every allow that names one. */
  taintIdentities(identities: readonly number[]): void;
  /** Addresses meant to carry these identities do not (yet): close every endpoint whose wanted allows name one. */
  closeEndpointsAllowing(identities: readonly number[]): void;
  readonly closedEndpoints: ReadonlySet<number>;
  readonly taintedIdentities: ReadonlySet<number>;
}

/** One phase's writes of one owner. run() writes and returns how many entries it wrote or deleted. */
export interface WriteStep {
  readonly phase: Phase;
  /** For logs and tests: "policy-delete", "ipcache-upsert". */
  readonly kind: string;
  /** Entries this step writes or deletes. */
  readonly size: number;
  run(failClosed: FailClosed, fail: (failure: StepFailure) => void): number;
}

/** One refused write, as an owner reports it to the scheduler. */
export interface StepFailure {
  readonly step: string;
  readonly map: string;
  /** The entry, readably: "10.1.0.0/16", "endpoint 3", "endpoint 3 ingress identity 260 TCP port 8000-8063". */
  readonly key: string;
  readonly message: string;
  readonly errno?: number;
}

/**
 * A map owner. A round: plan(input) diffs what `input` wants against what
 * the map holds (its cached view, or a read-back when it has none) and
 * returns the steps; the scheduler runs them in phase order with every
 * other owner's, then settles each owner: `complete` when nothing in its
 * group failed or was closed, so the desired state is now the map's;
 * otherwise the owner drops its view and reads the map back next time.
 *
 * I is the round's shared input (the agent's or the lab's).
 */
export interface Reconciler<I> {
  /** The owner's name: metrics label, /readyz, logs ("endpoints", "policy"). */
  readonly name: string;
  /**
   * Owners whose maps decide together ("policy": endpoints, ipcache,
   * policy) plan, fail and settle as one: when one of them cannot plan,
   * none of them writes this round, and a failure in one makes all of them
   * read back.
   */
  readonly group?: string;
  /** Steps that take the map from what it holds to what `input` wants. Throws only when the map cannot be read. */
  plan(input: I): readonly WriteStep[];
  /** The round is over (see above). */
  settle(complete: boolean): void;
  /** Forget the cached view of the map: the next plan reads it back. */
  invalidate(): void;
  /** Fail-closed request: close this endpoint as a unit (the endpoints owner marks it). */
  closeEndpoint?(endpointId: number, fail: (f: StepFailure) => void): void;
  /** Fail-closed request: remove the allows that name one of these identities (the policy owner); returns entries removed. */
  dropAllowsOf?(identities: ReadonlySet<number>, failClosed: FailClosed, fail: (f: StepFailure) => void): number;
  /** The endpoints whose wanted allows (this round's desired state) name one of these identities specifically. */
  endpointsAllowing?(identities: ReadonlySet<number>): readonly number[];
  /** Desired entries after the last plan, for metrics (map job name → count). */
  entries?(): Readonly<Record<string, number>>;
}
