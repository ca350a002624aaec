/**
 * Two ways to answer "may A reach B on port/protocol, and why": the model
 * (src/policy/model.ts, the reference) and the BPF datapath itself
 * (bpf-engine.ts: the compiled maps loaded into the real programs). Both
 * answer in the same shapes, so the CLI prints either and tests compare them.
 */
import type { Cluster } from '../policy/cluster.js';
import type { TrafficProtocol } from '../policy/match.js';
import { evaluate, type DirectionVerdict, type RuleRef } from '../policy/model.js';
import type { Direction } from '../policy/policy-types.js';
import { reachability, type Reachability } from '../policy/reachability.js';

export type EngineName = 'model' | 'bpf';

export interface DirectionExplanation {
  readonly direction: Direction;
  /** The pod whose policies decide: the source for egress, the destination for ingress. */
  readonly pod: string;
  /** Policies that select the pod for this direction (sorted); empty = not isolated. */
  readonly isolatedBy: readonly string[];
  /** not-reached: the packet was dropped at egress, so ingress never saw it (BPF). */
  readonly verdict: 'not-isolated' | 'allowed' | 'denied' | 'not-reached';
  /**
   * The model: every rule that allows. BPF: the rule of the entry that
   * decided, read back from the datapath's event (rule_id).
   */
  readonly rules: readonly RuleRef[];
  /** BPF: the datapath's drop reason ("POLICY_DENIED"). */
  readonly dropReason?: string;
  /** BPF: the peer identity the datapath resolved (ipcache). */
  readonly remoteIdentity?: number;
}

export interface Explanation {
  readonly engine: EngineName;
  readonly from: string;
  readonly to: string;
  readonly protocol: TrafficProtocol;
  readonly port: number;
  readonly allowed: boolean;
  readonly egress: DirectionExplanation;
  readonly ingress: DirectionExplanation;
  /** BPF, for an allowed connection: whether its reply passed both programs. */
  readonly reply?: 'passed' | 'dropped';
}

export interface PolicyEngine {
  readonly name: EngineName;
  /** Every ordered pair of `pods` (default: every pod). */
  reachability(cluster: Cluster, port: number, protocol: TrafficProtocol, pods?: readonly string[]): Promise<Reachability>;
  explain(cluster: Cluster, from: string, to: string, port: number, protocol: TrafficProtocol): Promise<Explanation>;
}

export const modelEngine: PolicyEngine = {
  name: 'model',
  reachability: (cluster, port, protocol, pods) => Promise.resolve(reachability(cluster, port, protocol, pods)),
  explain: (cluster, from, to, port, protocol) => {
    const v = evaluate(cluster, from, to, port, protocol);
    return Promise.resolve({
      engine: 'model',
      from,
      to,
      protocol,
      port,
      allowed: v.allowed,
      egress: fromModel(v.egress, from),
      ingress: fromModel(v.ingress, to),
    });
  },
};

function fromModel(d: DirectionVerdict, pod: string): DirectionExplanation {
  const verdict = d.isolatedBy.length === 0 ? 'not-isolated' : d.allowed ? 'allowed' : 'denied';
  return { direction: d.direction, pod: d.pod ?? pod, isolatedBy: d.isolatedBy, verdict, rules: d.allowedBy };
}
