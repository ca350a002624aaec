/**
 * A fake compiler and map writer for wiring tests. The "state" is the set of
 * local pod ids with their IPs; a plan is the pair of states; the writer
 * keeps what it was last told, can be made to fail, and records calls.
 */
import type { ApplyResult, DatapathStats, DatapathWriter, MapFailure, PolicyCompiler } from '../../../src/agent/ports.js';
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

export class FakeCompiler implements PolicyCompiler<FakeState, FakePlan> {
  readonly compiled: { snapshot: AgentSnapshot; current: FakeState }[] = [];
  throwNext: Error | undefined;

  compile(snapshot: AgentSnapshot, current: FakeState): FakeState {
    this.compiled.push({ snapshot, current });
    if (this.throwNext !== undefined) {
      const e = this.throwNext;
      this.throwNext = undefined;
      throw e;
    }
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

  plan(from: FakeState, to: FakeState): FakePlan {
    return { from, to };
  }

  planSize(plan: FakePlan): number {
    let n = 0;
    for (const [k, v] of plan.to) if (plan.from.get(k) !== v) n++;
    for (const k of plan.from.keys()) if (!plan.to.has(k)) n++;
    return n;
  }

  summary(state: FakeState): { identities: number; entries: Record<string, number> } {
    return { identities: state.size, entries: { fake: state.size } };
  }
}

export class FakeWriter implements DatapathWriter<FakeState, FakePlan>, DatapathStats {
  maps: FakeState;
  readonly applied: FakePlan[] = [];
  reads = 0;
  /** Failures to report on the next applies (one per apply), writing nothing. */
  readonly failures: MapFailure[][] = [];
  /** Resolves apply only when released (to hold a sync in flight). */
  gate: Promise<void> | undefined;

  constructor(initial: FakeState = new Map()) {
    this.maps = initial;
  }

  readCurrent(): Promise<FakeState> {
    this.reads++;
    return Promise.resolve(this.maps);
  }

  async apply(plan: FakePlan): Promise<ApplyResult> {
    if (this.gate !== undefined) await this.gate;
    this.applied.push(plan);
    const fail = this.failures.shift();
    if (fail !== undefined) return { applied: 0, failures: fail };
    this.maps = plan.to;
    return { applied: plan.to.size, failures: [] };
  }

  mapUsage(): { map: string; entries: number; maxEntries: number }[] {
    return [{ map: 'sl_fake_v1', entries: this.maps.size, maxEntries: 200 }];
  }

  packetCounters(): { direction: string; reason: string; packets: bigint; bytes: bigint }[] {
    return [];
  }
}
