/**
 * Writes an apply plan (src/policy/apply-plan.ts) to the maps, in its order,
 * and carries out its fail-closed rules when a write fails: the plan says
 * what to do, this module does it against three small writer interfaces
 * that the typed maps of src/datapath/maps satisfy (and tests fake).
 *
 * Batches where the map has them: a batch that fails part-way reports how
 * many entries it wrote (BpfError.applied), the failing entry is recorded
 * and the rest is retried, so one full map costs one failure per entry that
 * did not fit, not an abandoned apply. Deleting a key that is already gone
 * is not a failure.
 */
import { constants } from 'node:os';
import { SluiceEndpointFlags, SluicePolicyClass, type EndpointEntry, type IpcacheEntry, type IpcacheKey, type PolicyEntry, type PolicyKey } from '../datapath/generated/abi.js';
import { entriesAllowing, ipcacheTaint, type ApplyPlan, type ApplyStep } from '../policy/apply-plan.js';
import { formatPolicyPorts } from '../datapath/maps/policy-key.js';
import { formatIpcachePrefix, ipcachePrefixOf } from '../policy/datapath-state.js';
import { ipProtocolName } from '../policy/protocols.js';

/** What the applier needs of a map; TypedMap and IpcacheMap have it. */
export interface MapWriter<K, V> {
  update(key: K, value: V): void;
  /** true when the key was there. */
  delete(key: K): boolean;
  /** Returns how many were written; on failure throws an error whose `applied` says how many were. */
  updateBatch?(entries: ReadonlyArray<readonly [K, V]>): number;
}

export interface PolicyMapWriters {
  readonly ipcache: MapWriter<IpcacheKey, IpcacheEntry>;
  readonly endpoints: MapWriter<number, EndpointEntry>;
  readonly policy: MapWriter<PolicyKey, PolicyEntry>;
}

export type MapName = 'ipcache' | 'endpoints' | 'policy';

export interface ApplyFailure {
  /** The plan's step, or endpoint-incomplete: marking a closed endpoint POLICY_INCOMPLETE failed. */
  readonly step: ApplyStep['kind'] | 'endpoint-incomplete';
  readonly map: MapName;
  /** The entry, readably: "10.1.0.0/16", "endpoint 3", "endpoint 3 ingress identity 260 TCP port 8000-8063". */
  readonly key: string;
  readonly message: string;
  /** errno when the kernel refused (E2BIG/ENOSPC: the map is full). */
  readonly errno?: number;
}

export interface ApplyReport {
  readonly ok: boolean;
  /** Entries written or deleted, per map. */
  readonly written: Readonly<Record<MapName, number>>;
  readonly failures: readonly ApplyFailure[];
  /** Fail-closed actions taken because of failures. */
  readonly failClosed: {
    /** Identities whose specific allows were removed (an ipcache write failed). */
    readonly taintedIdentities: readonly number[];
    readonly policyEntriesRemoved: number;
    /**
     * Endpoints with a failed write (policy or endpoint entry): marked
     * POLICY_INCOMPLETE, or, when even that write failed, their entry
     * removed. Either way they drop every new connection until an apply
     * writes their policy completely.
     */
    readonly endpointsClosed: readonly number[];
  };
}

/** Applies `plan` to `maps`; never throws for a refused write, reports it (see the plan's rules). */
export function applyPlan(plan: ApplyPlan, maps: PolicyMapWriters): ApplyReport {
  const written: Record<MapName, number> = { ipcache: 0, endpoints: 0, policy: 0 };
  const failures: ApplyFailure[] = [];
  const tainted = new Set<number>();
  const closed = new Set<number>();
  let policyEntriesRemoved = 0;
  const fail = (step: ApplyFailure['step'], map: MapName, key: string, e: unknown): void => {
    const errno = errnoOf(e);
    failures.push({ step, map, key, message: e instanceof Error ? e.message : String(e), ...(errno === undefined ? {} : { errno }) });
  };
  // Fail-closed actions take effect at once, and later steps respect them (a closed endpoint's entry is not rewritten).
  const closeEndpoint = (id: number): void => {
    if (closed.has(id)) return;
    closed.add(id);
    const entry = incompleteEntry(plan, id);
    if (entry !== undefined) {
      try {
        // The endpoint has its entry already (or gets a new one): an update in place needs no free slot.
        maps.endpoints.update(id, entry);
        return;
      } catch (e) {
        fail('endpoint-incomplete', 'endpoints', `endpoint ${id}`, e);
      }
    }
    // No entry to mark (or marking failed): without an entry the endpoint drops everything.
    try {
      maps.endpoints.delete(id);
    } catch (e) {
      if (errnoOf(e) !== constants.errno.ENOENT) fail('endpoint-delete', 'endpoints', `endpoint ${id}`, e);
    }
  };
  const taint = (key: IpcacheKey): void => {
    const fresh = ipcacheTaint(plan, key).filter((id) => !tainted.has(id));
    if (fresh.length === 0) return;
    for (const id of fresh) tainted.add(id);
    policyEntriesRemoved += remove(maps.policy, entriesAllowing(plan, new Set(fresh)), (k, e) => {
      fail('policy-delete', 'policy', describePolicyKey(k), e);
      closeEndpoint(k.endpointId);
    });
  };

  for (const step of plan.steps) {
    switch (step.kind) {
      case 'endpoint-restrict':
      case 'endpoint-upsert':
        written.endpoints += upsert(maps.endpoints, step.entries.filter(([id]) => !closed.has(id)), (id, e) => {
          fail(step.kind, 'endpoints', `endpoint ${id}`, e);
          closeEndpoint(id);
        });
        break;
      case 'policy-delete':
        written.policy += remove(maps.policy, step.keys, (k, e) => {
          fail(step.kind, 'policy', describePolicyKey(k), e);
          closeEndpoint(k.endpointId);
        });
        break;
      case 'ipcache-upsert':
      case 'ipcache-delete': {
        const failed: IpcacheKey[] = [];
        const onFail = (k: IpcacheKey, e: unknown): void => {
          fail(step.kind, 'ipcache', formatIpcachePrefix(ipcachePrefixOf(k)), e);
          failed.push(k);
        };
        written.ipcache += step.kind === 'ipcache-upsert' ? upsert(maps.ipcache, step.entries, onFail) : remove(maps.ipcache, step.keys, onFail);
        failed.forEach(taint);
        break;
      }
      case 'policy-upsert':
        // A missing allow would deny on its own, but the allows that did fit are not the policy either: the
        // endpoint is closed as a unit (POLICY_INCOMPLETE). Tainted identities get no new allows.
        written.policy += upsert(
          maps.policy,
          step.entries.filter(([k]) => k.remoteIdentity === 0 || !tainted.has(k.remoteIdentity)),
          (k, e) => {
            fail(step.kind, 'policy', describePolicyKey(k), e);
            closeEndpoint(k.endpointId);
          },
        );
        break;
      case 'endpoint-delete':
        written.endpoints += remove(maps.endpoints, step.keys, (id, e) => fail(step.kind, 'endpoints', `endpoint ${id}`, e));
        break;
    }
  }
  return {
    ok: failures.length === 0,
    written,
    failures,
    failClosed: {
      taintedIdentities: [...tainted].sort((a, b) => a - b),
      policyEntriesRemoved,
      endpointsClosed: [...closed].sort((a, b) => a - b),
    },
  };
}

/**
 * The entry that closes endpoint `id` as a unit: POLICY_INCOMPLETE with the
 * revision past both states' (so conntrack re-checks, and drops, every
 * established connection), isolation and port-class masks the union of
 * both states' (the datapath ignores them while the flag is set; a superset
 * keeps the read-back state honest for the next plan). undefined when
 * neither state has the endpoint.
 */
export function incompleteEntry(plan: ApplyPlan, id: number): EndpointEntry | undefined {
  const from = plan.from.endpoints.get(id);
  const to = plan.to.endpoints.get(id);
  if (from === undefined && to === undefined) return undefined;
  const either = (pick: (e: EndpointEntry) => number): number => ((from === undefined ? 0 : pick(from)) | (to === undefined ? 0 : pick(to))) >>> 0;
  const revision = Math.max(from?.policyRevision ?? 0, to?.policyRevision ?? 0);
  return {
    flags: (either((e) => e.flags) | SluiceEndpointFlags.POLICY_INCOMPLETE) >>> 0,
    policyRevision: (revision + 1) >>> 0,
    ingressPolicyClasses: either((e) => e.ingressPolicyClasses),
    egressPolicyClasses: either((e) => e.egressPolicyClasses),
  };
}

/** Writes entries, batched when possible; returns how many went in. */
function upsert<K, V>(map: MapWriter<K, V>, entries: readonly (readonly [K, V])[], onFail: (key: K, e: unknown) => void): number {
  let done = 0;
  let at = 0;
  while (at < entries.length) {
    const rest = entries.slice(at);
    if (map.updateBatch !== undefined && rest.length > 1) {
      try {
        done += map.updateBatch(rest);
        return done;
      } catch (e) {
        const applied = appliedOf(e);
        if (applied === undefined) {
          // No count: fall back to one write per entry for the rest.
          return done + upsertEach(map, rest, onFail);
        }
        done += applied;
        const failed = rest[applied];
        if (failed !== undefined) onFail(failed[0], e);
        at += applied + 1;
        continue;
      }
    }
    return done + upsertEach(map, rest, onFail);
  }
  return done;
}

function upsertEach<K, V>(map: MapWriter<K, V>, entries: readonly (readonly [K, V])[], onFail: (key: K, e: unknown) => void): number {
  let done = 0;
  for (const [k, v] of entries) {
    try {
      map.update(k, v);
      done++;
    } catch (e) {
      onFail(k, e);
    }
  }
  return done;
}

/** Deletes keys one by one (a missing key counts as deleted: someone was first). */
function remove<K>(map: MapWriter<K, unknown>, keys: readonly K[], onFail: (key: K, e: unknown) => void): number {
  let done = 0;
  for (const k of keys) {
    try {
      map.delete(k);
      done++;
    } catch (e) {
      if (errnoOf(e) === constants.errno.ENOENT) done++;
      else onFail(k, e);
    }
  }
  return done;
}

function describePolicyKey(k: PolicyKey): string {
  const dir = k.direction === 0 ? 'ingress' : 'egress';
  const peer = k.remoteIdentity === 0 ? 'any peer' : `identity ${k.remoteIdentity}`;
  const what = k.portPrefixlen === SluicePolicyClass.NO_PORTS
    ? 'every protocol and port'
    : `${ipProtocolName(k.protocol)} port ${formatPolicyPorts(k)}`;
  return `endpoint ${k.endpointId} ${dir} ${peer} ${what}`;
}

function errnoOf(e: unknown): number | undefined {
  const n = (e as { errno?: unknown } | null)?.errno;
  return typeof n === 'number' ? n : undefined;
}

function appliedOf(e: unknown): number | undefined {
  const n = (e as { applied?: unknown } | null)?.applied;
  return typeof n === 'number' ? n : undefined;
}
