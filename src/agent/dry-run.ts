/**
 * The "none" datapath: no map owners, rounds that only count what they
 * would enforce. It lets the agent run — watch, report bad objects, serve
 * endpoints and probes — where there are no maps (a host without BPF, a test
 * of the control-plane side, a shadow agent beside a real one). Readiness
 * then means "the first full snapshot was built".
 */
import type { RoundOutcome, SyncDatapath } from './ports.js';
import type { AgentSnapshot } from './snapshot.js';

export const dryRunDatapath: SyncDatapath = {
  owners: [],
  endpointOwners: [],
  reconcile(snapshot: AgentSnapshot): Promise<RoundOutcome> {
    return Promise.resolve({
      planned: 0,
      operations: 0,
      owners: [],
      summary: { identities: 0, entries: { pods: snapshot.cluster.pods.length, policies: snapshot.cluster.policies.length } },
    });
  },
  invalidate: () => undefined,
};
