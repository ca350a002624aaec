/**
 * The "none" datapath: a compiler that only counts what it would enforce and
 * a writer that writes nothing. It lets the agent run — watch, report bad
 * objects, serve endpoints and probes — where there are no maps (a host
 * without BPF, a test of the control-plane side, a shadow agent beside a
 * real one). Readiness then means "the first full snapshot was built".
 */
import type { ApplyResult, DatapathWriter, PolicyCompiler, StateSummary } from './ports.js';
import type { AgentSnapshot } from './snapshot.js';

export interface DryRunState {
  readonly pods: number;
  readonly policies: number;
  readonly localEndpoints: number;
}

const EMPTY: DryRunState = { pods: 0, policies: 0, localEndpoints: 0 };

export const dryRunCompiler: PolicyCompiler<DryRunState, null> = {
  compile(snapshot: AgentSnapshot): DryRunState {
    return { pods: snapshot.cluster.pods.length, policies: snapshot.cluster.policies.length, localEndpoints: snapshot.localEndpoints.length };
  },
  plan: () => null,
  planSize: () => 0,
  summary: (): StateSummary => ({ identities: 0 }),
};

export const dryRunWriter: DatapathWriter<DryRunState, null> = {
  readCurrent: () => Promise.resolve(EMPTY),
  apply: (): Promise<ApplyResult> => Promise.resolve({ applied: 0, failures: [] }),
};
