/**
 * Readiness and liveness, computed from the parts' status:
 * - ready once every informer has listed once and the first full sync is in
 *   the maps, and not while a map update is failing (the detail names the
 *   maps and the pods of the endpoints that fail closed), with one check per
 *   map owner (datapath/<owner>: its applied revision, or what fails);
 * - after that, a lost API-server connection is reported but does not make
 *   the agent unready: the datapath keeps enforcing the last known state,
 *   which is what a ready agent promises;
 * - live unless a sync has been running for longer than `stuckAfterMs`.
 */
import type { InformerStatus } from './k8s/informer.js';
import type { SyncStatus } from './sync-loop.js';
import type { Check, ReadinessReport } from '../endpoint/contract.js';

export type { Check, ReadinessReport };

export function readiness(informers: readonly InformerStatus[], sync: SyncStatus): ReadinessReport {
  const checks: Check[] = [];
  for (const i of informers) {
    let detail = i.synced ? `synced, ${i.objects} objects` : 'waiting for the first list';
    if (i.failures > 0 && i.lastError !== undefined) detail += `; retrying after ${i.failures} failures: ${i.lastError}`;
    checks.push({ name: `informer/${i.resource}`, ok: i.synced, detail });
  }
  const failing = sync.failingMaps;
  const closed = [...new Set(failing.flatMap((f) => f.endpointNames ?? f.endpoints?.map((id) => `endpoint ${id}`) ?? []))];
  checks.push({
    name: 'datapath',
    ok: sync.firstSyncDone && failing.length === 0,
    detail: failing.length > 0
      ? `map updates failing: ${failing.map((f) => `${f.map}: ${f.message}`).join('; ')}${
        closed.length > 0 ? `; endpoints failing closed (POLICY_INCOMPLETE): ${closed.join(', ')}` : ''}`
      : sync.firstSyncDone
        ? `in sync (revision ${sync.appliedRevision} of ${sync.requestedRevision})`
        : `first sync not in the maps yet${sync.lastError !== undefined ? `: ${sync.lastError}` : ''}`,
  });
  // Each map owner on its own: which one holds the datapath back, and since which revision.
  for (const o of sync.owners) {
    const failing = o.failing.map((f) => `${f.map}: ${f.message}`).join('; ');
    checks.push({
      name: `datapath/${o.name}`,
      ok: o.appliedRevision > 0 && o.failing.length === 0,
      detail: failing !== '' ? `failing: ${failing}` : o.appliedRevision > 0 ? `applied revision ${o.appliedRevision}` : 'no round completed yet',
    });
  }
  return { ready: checks.every((c) => c.ok), checks };
}

export function liveness(sync: SyncStatus, now: number, stuckAfterMs: number): Check {
  if (sync.runningSince !== undefined && now - sync.runningSince > stuckAfterMs) {
    return { name: 'sync', ok: false, detail: `a sync has been running for ${Math.round(now - sync.runningSince)} ms` };
  }
  return { name: 'sync', ok: true, detail: 'ok' };
}
