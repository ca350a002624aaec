/**
 * A fake datapath for wiring tests. The "state" is the set of pod ids with
 * their IPs and labels; a plan is the pair of states; the one owner keeps
 * what it was last told, can be made to fail, and records calls.
 */
import type { DatapathStats, MapFailure, RoundOutcome, SyncDatapath } from '../../../src/agent/ports.js';
import type { AgentSnapshot } from '../../../src/agent/snapshot.js';
import { formatIp } from '../../../src/policy/cidr.js';

export type FakeState = ReadonlyMap<string, string>;

export interface FakePlan {
  readonly from: FakeState;
  readonly to: FakeState;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',');
}

/** The time an applied round reports for the fake owner's plan and writes. */
export const FAKE_PLAN_MS = 3;
export const FAKE_WRITE_MS = 7;

/**
 * A SyncDatapath with one owner ("fake") whose map is a FakeState: a round
 * compiles the snapshot against what the owner last saw (read back after a
 * failure or an error, as real owners do), then "writes" the new state.
 */
export class FakeDatapath implements SyncDatapath, DatapathStats {
  readonly owners = ['fake'];
  readonly endpointOwners = ['fake'];
  maps: FakeState;
  /** Every compile: the snapshot and the state it was compiled against. */
  readonly compiled: { snapshot: AgentSnapshot; current: FakeState }[] = [];
  /** Every round that reached its writes, with what it wrote. */
  readonly applied: FakePlan[] = [];
  reads = 0;
  throwNext: Error | undefined;
  /** Failures to report on the next rounds (one per round), writing nothing. */
  readonly failures: MapFailure[][] = [];
  /** Resolves a round's writes only when released (to hold a sync in flight). */
  gate: Promise<void> | undefined;
  private view: FakeState | undefined;

  constructor(initial: FakeState = new Map()) {
    this.maps = initial;
  }

  async reconcile(snapshot: AgentSnapshot): Promise<RoundOutcome> {
    if (this.view === undefined) {
      this.reads++;
      this.view = this.maps;
    }
    const current = this.view;
    this.compiled.push({ snapshot, current });
    if (this.throwNext !== undefined) {
      const e = this.throwNext;
      this.throwNext = undefined;
      throw e;
    }
    const to = fakeCompile(snapshot);
    const plan = { from: current, to };
    const planned = fakePlanSize(plan);
    const summary = { identities: to.size, entries: { fake: to.size } };
    if (planned === 0) return { planned, operations: 0, owners: [{ name: 'fake', complete: true, failures: [] }], summary };
    if (this.gate !== undefined) await this.gate;
    this.applied.push(plan);
    const fail = this.failures.shift();
    if (fail !== undefined) {
      this.view = undefined;
      return { planned, operations: 0, owners: [{ name: 'fake', complete: false, failures: fail }], summary };
    }
    this.maps = to;
    this.view = to;
    return { planned, operations: planned, owners: [{ name: 'fake', complete: true, failures: [], planMs: FAKE_PLAN_MS, writeMs: FAKE_WRITE_MS }], summary };
  }

  invalidate(): void {
    this.view = undefined;
  }

  mapUsage(): { map: string; entries: number; maxEntries: number }[] {
    return [{ map: 'sl_fake_v1', entries: this.maps.size, maxEntries: 200 }];
  }

  packetCounters(): { direction: string; reason: string; packets: bigint; bytes: bigint }[] {
    return [];
  }
}

/** The fake "compile": pods with their IPs and labels, local endpoints, the policy count. */
export function fakeCompile(snapshot: AgentSnapshot): FakeState {
  const out = new Map<string, string>();
  for (const p of snapshot.cluster.pods) {
    out.set(p.id, p.ip === undefined ? '-' : formatIp(p.ip));
    const ns = snapshot.cluster.namespaces.get(p.namespace)?.labels ?? {};
    out.set(`labels/${p.id}`, labelText({ ...p.labels, ...Object.fromEntries(Object.entries(ns).map(([k, v]) => [`ns:${k}`, v])) }));
  }
  for (const e of snapshot.localEndpoints) out.set(`endpoint/${e.endpoint.endpointId}`, e.pod?.id ?? '?');
  out.set('policies', String(snapshot.cluster.policies.length));
  return out;
}

/** Entries that differ between the plan's states. */
export function fakePlanSize(plan: FakePlan): number {
  let n = 0;
  for (const [k, v] of plan.to) if (plan.from.get(k) !== v) n++;
  for (const k of plan.from.keys()) if (!plan.to.has(k)) n++;
  return n;
}
