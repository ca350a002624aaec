/**
 * One reconcile round over a list of owners: every owner plans against the
 * shared input, then the steps of all owners run phase by phase (every
 * phase-1 step of every owner, then phase 2, …; within a phase, in list
 * order), then every owner is settled.
 *
 * Fail-closed requests (FailClosed) reach the owners that carry them out at
 * once: closing an endpoint goes to every owner with closeEndpoint (the
 * endpoints owner marks it POLICY_INCOMPLETE), tainting identities to every
 * owner with dropAllowsOf (the policy owner removes their allows). An owner
 * that cannot plan (its map cannot be read) writes nothing this round, and
 * neither does the rest of its group.
 */
import { errnoOf } from './map-writes.js';
import type { FailClosed, Reconciler, StepFailure, WriteStep } from './reconciler.js';

export interface OwnerReport {
  readonly name: string;
  readonly group?: string;
  /** Entries written or deleted. */
  readonly operations: number;
  readonly failures: readonly StepFailure[];
  /** Set when the owner could not plan (nothing of its group was written). */
  readonly planError?: Error;
  /** No failure in its group and nothing closed there: the owner now holds what was asked. */
  readonly complete: boolean;
  /** Time in its plan (desired state, diff, any read-back) and in its write steps, ms. */
  readonly planMs: number;
  readonly writeMs: number;
}

export interface RoundReport {
  readonly owners: readonly OwnerReport[];
  /** Entries written or deleted, all owners. */
  readonly operations: number;
  /** Entries the plans asked for (0: nothing to do). */
  readonly planned: number;
  readonly closedEndpoints: readonly number[];
  readonly taintedIdentities: readonly number[];
  /** Entries removed because their identity was tainted. */
  readonly allowsDropped: number;
}

/** Runs one round; never throws for a refused write or an unreadable map, reports both. */
export function runRound<I>(owners: readonly Reconciler<I>[], input: I): RoundReport {
  const planned = new Map<Reconciler<I>, readonly WriteStep[]>();
  const planErrors = new Map<Reconciler<I>, Error>();
  const planMs = new Map<Reconciler<I>, number>();
  const writeMs = new Map<Reconciler<I>, number>(owners.map((o) => [o, 0]));
  for (const owner of owners) {
    const t0 = performance.now();
    try {
      planned.set(owner, owner.plan(input));
    } catch (e) {
      planErrors.set(owner, e instanceof Error ? e : new Error(String(e)));
    }
    planMs.set(owner, performance.now() - t0);
  }
  // A group plans as one: an owner that could not plan holds back the rest of its group.
  const blockedGroups = new Set([...planErrors.keys()].map((o) => o.group).filter((g): g is string => g !== undefined));
  const runs = (o: Reconciler<I>): boolean => planned.has(o) && (o.group === undefined || !blockedGroups.has(o.group));

  const failures = new Map<Reconciler<I>, StepFailure[]>(owners.map((o) => [o, []]));
  const operations = new Map<Reconciler<I>, number>(owners.map((o) => [o, 0]));
  const closedGroups = new Set<string | undefined>();
  const ownerOfFailure = (owner: Reconciler<I>) => (f: StepFailure): void => {
    failures.get(owner)?.push(f);
  };
  const closed = new Set<number>();
  const tainted = new Set<number>();
  let allowsDropped = 0;
  const failClosed: FailClosed = {
    closedEndpoints: closed,
    taintedIdentities: tainted,
    closeEndpoint(id) {
      if (closed.has(id)) return;
      closed.add(id);
      for (const o of owners) {
        if (o.closeEndpoint === undefined || !runs(o)) continue;
        closedGroups.add(o.group);
        o.closeEndpoint(id, ownerOfFailure(o));
      }
    },
    closeEndpointsAllowing(ids) {
      const set = new Set(ids);
      for (const o of owners) {
        if (o.endpointsAllowing === undefined || !runs(o)) continue;
        for (const id of o.endpointsAllowing(set)) failClosed.closeEndpoint(id);
      }
    },
    taintIdentities(ids) {
      const fresh = new Set(ids.filter((id) => !tainted.has(id)));
      if (fresh.size === 0) return;
      for (const id of fresh) tainted.add(id);
      for (const o of owners) {
        if (o.dropAllowsOf === undefined || !runs(o)) continue;
        closedGroups.add(o.group);
        allowsDropped += o.dropAllowsOf(fresh, failClosed, ownerOfFailure(o));
      }
    },
  };

  const steps = owners.filter(runs).flatMap((owner) => (planned.get(owner) ?? []).map((step, order) => ({ owner, step, order })));
  steps.sort((a, b) => a.step.phase - b.step.phase || owners.indexOf(a.owner) - owners.indexOf(b.owner) || a.order - b.order);
  let total = 0;
  for (const { owner, step } of steps) {
    const t0 = performance.now();
    const n = step.run(failClosed, ownerOfFailure(owner));
    writeMs.set(owner, (writeMs.get(owner) ?? 0) + performance.now() - t0);
    operations.set(owner, (operations.get(owner) ?? 0) + n);
    total += n;
  }

  const failedGroups = new Set<string | undefined>();
  for (const o of owners) if ((failures.get(o)?.length ?? 0) > 0 || planErrors.has(o)) failedGroups.add(o.group);
  const reports: OwnerReport[] = owners.map((o) => {
    const own = failures.get(o) ?? [];
    const complete = runs(o) && own.length === 0 &&
      (o.group === undefined || (!failedGroups.has(o.group) && !closedGroups.has(o.group)));
    o.settle(complete);
    const planError = planErrors.get(o);
    return {
      name: o.name, ...(o.group !== undefined ? { group: o.group } : {}), operations: operations.get(o) ?? 0, failures: own, complete,
      planMs: planMs.get(o) ?? 0, writeMs: writeMs.get(o) ?? 0, ...(planError !== undefined ? { planError } : {}),
    };
  });
  return {
    owners: reports,
    operations: total,
    planned: steps.reduce((n, s) => n + s.step.size, 0),
    closedEndpoints: [...closed].sort((a, b) => a - b),
    taintedIdentities: [...tainted].sort((a, b) => a - b),
    allowsDropped,
  };
}

/** A StepFailure for error `e` of a write at `key`. */
export function stepFailure(step: string, map: string, key: string, e: unknown): StepFailure {
  const errno = errnoOf(e);
  return { step, map, key, message: e instanceof Error ? e.message : String(e), ...(errno === undefined ? {} : { errno }) };
}
