/**
 * The policy group — the endpoints, ipcache and policy owners — over one
 * set of maps, for callers that write a compiled state once rather than in
 * the agent's rounds: `sluice lab policy apply`, the BPF policy engine,
 * bench/policy. Same owners, same phases, same fail-closed rules as the
 * agent; the maps are read back first, so only the difference is written.
 */
import type { EndpointEntry, IpcacheEntry, IpcacheKey, PolicyEntry, PolicyKey } from '../datapath/generated/abi.js';
import type { DatapathState } from '../policy/datapath-state.js';
import { EndpointsOwner, type FlushEndpointConnections } from './endpoints.js';
import { IpcacheOwner } from './ipcache.js';
import type { MapStore } from './map-writes.js';
import { PolicyOwner } from './policy.js';
import type { StepFailure } from './reconciler.js';
import { runRound } from './round.js';

export interface PolicyMaps {
  readonly ipcache: MapStore<IpcacheKey, IpcacheEntry>;
  readonly endpoints: MapStore<number, EndpointEntry>;
  readonly policy: MapStore<PolicyKey, PolicyEntry>;
}

export interface PolicyGroup {
  readonly endpoints: EndpointsOwner;
  readonly ipcache: IpcacheOwner;
  readonly policy: PolicyOwner;
  /** What the three maps hold now (read back, or the last complete round's state). */
  current(): DatapathState;
}

export function policyGroup(maps: PolicyMaps, flushConnections?: FlushEndpointConnections): PolicyGroup {
  const endpoints = new EndpointsOwner(maps.endpoints, flushConnections);
  const ipcache = new IpcacheOwner(maps.ipcache);
  const policy = new PolicyOwner(maps.policy);
  return {
    endpoints,
    ipcache,
    policy,
    current: () => ({ ipcache: ipcache.current(), endpoints: endpoints.current(), policy: policy.current().policy }),
  };
}

export interface ApplyReport {
  readonly ok: boolean;
  /** Entries written or deleted, per owner. */
  readonly written: Readonly<Record<'ipcache' | 'endpoints' | 'policy', number>>;
  /** Entries the plans asked to write or delete. */
  readonly planned: number;
  readonly failures: readonly StepFailure[];
  readonly failClosed: {
    /** Identities whose specific allows were removed (an ipcache write failed). */
    readonly taintedIdentities: readonly number[];
    readonly policyEntriesRemoved: number;
    /** Endpoints marked POLICY_INCOMPLETE (or, when even that failed, with their entry removed). */
    readonly endpointsClosed: readonly number[];
  };
}

/** Takes `group`'s maps to `to` in one round; never throws for a refused write, reports it. */
export function applyDatapathState(group: PolicyGroup, to: DatapathState): ApplyReport {
  const report = runRound([group.endpoints, group.ipcache, group.policy], { datapath: to });
  const written = { ipcache: 0, endpoints: 0, policy: 0 };
  const failures: StepFailure[] = [];
  for (const o of report.owners) {
    if (o.name === 'ipcache' || o.name === 'endpoints' || o.name === 'policy') written[o.name] = o.operations;
    failures.push(...o.failures);
    if (o.planError !== undefined) failures.push({ step: 'read-back', map: o.name, key: '*', message: o.planError.message });
  }
  return {
    ok: failures.length === 0,
    written,
    planned: report.planned,
    failures,
    failClosed: {
      taintedIdentities: report.taintedIdentities,
      policyEntriesRemoved: report.allowsDropped,
      endpointsClosed: report.closedEndpoints,
    },
  };
}
