/**
 * The policy group's shared desired state: a snapshot's cluster and its
 * local endpoints → compilePolicy → the DatapathState that the endpoints,
 * ipcache and policy owners (src/reconcile) each take their map's part of.
 *
 * Local endpoints whose pod is unknown or has no IPv4 address are left out:
 * they get no endpoint entry, so the datapath drops their traffic (fail
 * closed). The compile is incremental against the last one while the
 * owners' views are exactly what it produced; otherwise (a view read back
 * after a restart or a failure) it is seeded with the last compile's ids
 * (identities, rules, revisions), or before any compile with those of the
 * previous process (seed-file.ts), and diffed against what the maps hold.
 */
import { compilePolicy, seedOf, type CompiledPolicy, type CompileSeed } from '../../policy/compile.js';
import type { DatapathState } from '../../policy/datapath-state.js';
import type { AgentSnapshot } from '../snapshot.js';

/** Local endpoints with a pod that has an IP, as compilePolicy wants them (pod id → endpoint id). */
export function compileEndpoints(snapshot: AgentSnapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const { endpoint, pod } of snapshot.localEndpoints) {
    if (pod?.ip === undefined) continue;
    out.set(pod.id, endpoint.endpointId);
  }
  return out;
}

export class PolicyStage {
  /** The last compile, for its ids when the maps were read back. */
  private last: CompiledPolicy | undefined;

  /** `seed`: the ids of an earlier process (seed-file.ts), for the first compile against maps read back. */
  constructor(private readonly seed: CompileSeed = {}) {}

  /** `current`: what the maps hold now, as the owners see them. */
  compile(snapshot: AgentSnapshot, current: DatapathState): CompiledPolicy {
    const input = { cluster: snapshot.cluster, endpoints: compileEndpoints(snapshot) };
    const last = this.last;
    const incremental = last !== undefined && last.datapath.ipcache === current.ipcache &&
      last.datapath.endpoints === current.endpoints && last.datapath.policy === current.policy;
    const previous: CompiledPolicy | CompileSeed = incremental ? last : { ...(last !== undefined ? seedOf(last) : this.seed), datapath: current };
    this.last = compilePolicy(input, previous);
    return this.last;
  }
}
