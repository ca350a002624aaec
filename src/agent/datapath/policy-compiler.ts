/**
 * The agent's PolicyCompiler over src/policy: a snapshot's cluster and its
 * local endpoints → compilePolicy → the desired DatapathState; plan =
 * planApply (the ordering that never opens a hole, apply-plan.ts).
 *
 * Local endpoints whose pod is unknown or has no IPv4 address are left out:
 * they get no endpoint entry, so the datapath drops their traffic (fail
 * closed). The state carries the CompiledPolicy it came from, so the next
 * compile is incremental; a state read back from the maps has none, and the
 * compile is then seeded with the last compile's ids (identities, rules,
 * revisions), or before any compile with those of the previous process
 * (seed-file.ts), and diffed against what the maps really hold.
 */
import type { PolicyKey } from '../../datapath/generated/abi.js';
import { planApply, type ApplyPlan } from '../../policy/apply-plan.js';
import { compilePolicy, seedOf, type CompiledPolicy, type CompileSeed } from '../../policy/compile.js';
import { countPolicyEntries, type DatapathState } from '../../policy/datapath-state.js';
import type { PolicyCompiler, StateSummary } from '../ports.js';
import type { AgentSnapshot } from '../snapshot.js';

export interface BpfState {
  readonly datapath: DatapathState;
  /** Policy keys read back that this compiler never writes; the next plan deletes them. */
  readonly foreignPolicyKeys: readonly PolicyKey[];
  /** The compile that produced this state (absent when read back from the maps). */
  readonly compiled?: CompiledPolicy;
}

/** Local endpoints with a pod that has an IP, as compilePolicy wants them (pod id → endpoint id). */
export function compileEndpoints(snapshot: AgentSnapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const { endpoint, pod } of snapshot.localEndpoints) {
    if (pod?.ip === undefined) continue;
    out.set(pod.id, endpoint.endpointId);
  }
  return out;
}

/** Entries per agent map name (the names of config mapSizes / DatapathStats). */
export function stateEntries(state: DatapathState): Record<string, number> {
  let iphost = 0;
  for (const prefix of state.ipcache.keys()) if (prefix % 64 === 32) iphost++;
  return { iphost, ipcache: state.ipcache.size - iphost, endpoints: state.endpoints.size, policy: countPolicyEntries(state) };
}

export class BpfPolicyCompiler implements PolicyCompiler<BpfState, ApplyPlan> {
  /** The last compile, for its ids when `current` was read back from the maps. */
  private last: CompiledPolicy | undefined;

  /** `seed`: the ids of an earlier process (seed-file.ts), for the first compile against maps read back. */
  constructor(private readonly seed: CompileSeed = {}) {}

  compile(snapshot: AgentSnapshot, current: BpfState): BpfState {
    const input = { cluster: snapshot.cluster, endpoints: compileEndpoints(snapshot) };
    let previous: CompiledPolicy | CompileSeed;
    if (current.compiled !== undefined && current.compiled.datapath === current.datapath) previous = current.compiled;
    else previous = { ...(this.last !== undefined ? seedOf(this.last) : this.seed), datapath: current.datapath };
    const compiled = compilePolicy(input, previous);
    this.last = compiled;
    return { datapath: compiled.datapath, foreignPolicyKeys: [], compiled };
  }

  plan(current: BpfState, desired: BpfState): ApplyPlan {
    return planApply(current.datapath, desired.datapath, undefined, current.foreignPolicyKeys);
  }

  planSize(plan: ApplyPlan): number {
    return plan.size;
  }

  summary(state: BpfState): StateSummary {
    return { identities: state.compiled?.stats.identities ?? 0, entries: stateEntries(state.datapath) };
  }
}
