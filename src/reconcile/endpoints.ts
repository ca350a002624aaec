/**
 * Owner of sl_endpoints_v2 (src/datapath/maps/endpoints.ts): per local
 * endpoint its isolation flags, policy revision and per direction the mask
 * of port classes its policy entries use. Member of the "policy" group with
 * the ipcache and policy owners, whose writes it brackets:
 *
 *  - RESTRICT: an endpoint that becomes isolated in a direction gets the
 *    union of old and new isolation (revision and masks unchanged) before
 *    any allow changes;
 *  - PUBLISH: final entries — isolation, a POLICY_INCOMPLETE mark read back
 *    from a failed round cleared, port-class masks, bumped revisions; new
 *    endpoints appear (until then their programs drop everything). Masks
 *    are never widened earlier: read back after a crash, the policy map may
 *    hold entries a mask hides, and widening before the deletes ran would
 *    show them;
 *  - RETIRE: entries of endpoints that went, and their conntrack entries
 *    (a later pod with the same endpoint id must not inherit connections).
 *
 * closeEndpoint (a fail-closed request of any owner) rewrites the entry in
 * place with SLUICE_EP_F_POLICY_INCOMPLETE and a revision past both states'
 * — an update in place needs no free slot — so every decision of that
 * endpoint, established connections included, drops until a complete round
 * clears the mark; only if that write fails too is the entry deleted (no
 * entry drops everything).
 */
import { SluiceEndpointFlags, type EndpointEntry } from '../datapath/generated/abi.js';
import { sameEndpointEntry } from '../policy/datapath-state.js';
import { deleteAll, upsertAll, type MapStore } from './map-writes.js';
import { Phase, type FailClosed, type Reconciler, type StepFailure, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';
import { MapView } from './map-view.js';
import type { PolicyRoundInput } from './policy-input.js';

const MAP = 'endpoints';

/** What RETIRE needs of conntrack: drop every entry of an endpoint, return how many. */
export type FlushEndpointConnections = (endpointId: number) => number;

export class EndpointsOwner implements Reconciler<PolicyRoundInput> {
  readonly name = MAP;
  readonly group = 'policy';
  private readonly view: MapView<ReadonlyMap<number, EndpointEntry>>;
  private round: { readonly from: ReadonlyMap<number, EndpointEntry>; readonly to: ReadonlyMap<number, EndpointEntry> } | undefined;
  private readonly closed = new Set<number>();

  /** flushConnections: conntrack cleanup for retired endpoints (absent: none, e.g. maps without conntrack). */
  constructor(private readonly map: MapStore<number, EndpointEntry>, private readonly flushConnections?: FlushEndpointConnections) {
    this.view = new MapView(() => {
      const read = new Map<number, EndpointEntry>();
      for (const [id, e] of map.entries()) {
        read.set(id, { flags: e.flags, policyRevision: e.policyRevision, ingressPolicyClasses: e.ingressPolicyClasses, egressPolicyClasses: e.egressPolicyClasses });
      }
      return read;
    });
  }

  /** What the map holds (read back when no round has been trusted since the last failure). */
  current(): ReadonlyMap<number, EndpointEntry> {
    return this.view.current();
  }

  plan(input: PolicyRoundInput): readonly WriteStep[] {
    const from = this.current();
    const to = input.datapath.endpoints;
    this.view.ask(to);
    this.round = { from, to };
    this.closed.clear();
    const restrict: [number, EndpointEntry][] = [];
    const upserts: [number, EndpointEntry][] = [];
    for (const [id, next] of to) {
      const old = from.get(id);
      if (old === undefined) upserts.push([id, next]);
      else if (!sameEndpointEntry(old, next)) {
        upserts.push([id, next]);
        if ((next.flags & ~old.flags) !== 0) restrict.push([id, { ...old, flags: (old.flags | next.flags) >>> 0 }]);
      }
    }
    const removed = [...from.keys()].filter((id) => !to.has(id));
    const steps: WriteStep[] = [];
    const write = (kind: string, entries: readonly (readonly [number, EndpointEntry])[], failClosed: FailClosed, fail: (f: StepFailure) => void): number =>
      upsertAll(this.map, entries.filter(([id]) => !this.closed.has(id)), (id, e) => {
        fail(stepFailure(kind, MAP, `endpoint ${id}`, e));
        failClosed.closeEndpoint(id);
      });
    if (restrict.length > 0) steps.push({ phase: Phase.RESTRICT, kind: 'endpoint-restrict', size: restrict.length, run: (fc, fail) => write('endpoint-restrict', restrict, fc, fail) });
    if (upserts.length > 0) steps.push({ phase: Phase.PUBLISH, kind: 'endpoint-upsert', size: upserts.length, run: (fc, fail) => write('endpoint-upsert', upserts, fc, fail) });
    if (removed.length > 0) {
      steps.push({
        phase: Phase.RETIRE,
        kind: 'endpoint-delete',
        size: removed.length,
        run: (_fc, fail) => {
          const n = deleteAll(this.map, removed, (id, e) => fail(stepFailure('endpoint-delete', MAP, `endpoint ${id}`, e)));
          for (const id of removed) this.flush(id, fail);
          return n;
        },
      });
    }
    return steps;
  }

  closeEndpoint(id: number, fail: (f: StepFailure) => void): void {
    if (this.closed.has(id)) return;
    this.closed.add(id);
    const entry = this.round === undefined ? undefined : incompleteEntry(this.round.from.get(id), this.round.to.get(id));
    if (entry !== undefined) {
      try {
        this.map.update(id, entry);
        return;
      } catch (e) {
        fail(stepFailure('endpoint-incomplete', MAP, `endpoint ${id}`, e));
      }
    }
    // No entry to mark (or marking failed): without an entry the endpoint drops everything.
    deleteAll(this.map, [id], (_, e) => fail(stepFailure('endpoint-delete', MAP, `endpoint ${id}`, e)));
  }

  settle(complete: boolean): void {
    this.view.settle(complete);
    this.round = undefined;
  }

  invalidate(): void {
    this.view.invalidate();
  }

  entries(): Readonly<Record<string, number>> {
    return { endpoints: this.view.known()?.size ?? 0 };
  }

  private flush(id: number, fail: (f: StepFailure) => void): void {
    if (this.flushConnections === undefined) return;
    try {
      this.flushConnections(id);
    } catch (e) {
      // Stale connections of a gone endpoint match only a new pod that reuses its id; reported, retried by no one.
      fail(stepFailure('conntrack-flush', 'conntrack', `endpoint ${id}`, e));
    }
  }
}

/**
 * The entry that closes an endpoint as a unit: POLICY_INCOMPLETE with the
 * revision past both states' (so conntrack re-checks, and drops, every
 * established connection), isolation and port-class masks the union of both
 * states' (the datapath ignores them while the flag is set; a superset keeps
 * the read-back state honest for the next plan). undefined when neither state
 * has the endpoint.
 */
export function incompleteEntry(from: EndpointEntry | undefined, to: EndpointEntry | undefined): EndpointEntry | undefined {
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
