/**
 * Drives the agent datapath's policy group (endpoints, ipcache, policy
 * owners) with a compiled state directly, as one round, and reports what the
 * sync loop would: failures per map with the endpoints closed. For tests
 * that start from a DatapathState rather than a cluster snapshot.
 */
import { ownerFailures, type BpfDatapath } from '../../../src/agent/datapath/reconcilers.js';
import type { MapFailure } from '../../../src/agent/ports.js';
import type { DatapathState } from '../../../src/policy/datapath-state.js';
import { runRound } from '../../../src/reconcile/round.js';

export function applyState(dp: BpfDatapath, to: DatapathState): { readonly applied: number; readonly failures: readonly MapFailure[] } {
  const report = runRound([dp.endpointsOwner, dp.ipcacheOwner, dp.policyOwner], { datapath: to });
  return { applied: report.operations, failures: report.owners.flatMap((o) => ownerFailures(o, report.closedEndpoints)) };
}

/** What the owners see in the maps (read back after a failed round). */
export function currentState(dp: BpfDatapath): DatapathState {
  return { ipcache: dp.ipcacheOwner.current(), endpoints: dp.endpointsOwner.current(), policy: dp.policyOwner.current().policy };
}
