/**
 * Owner of sl_policy_v3 (src/datapath/maps/policy-v3.ts): per endpoint and
 * direction, the allows of its NetworkPolicies as exact-match entries
 * (remote identity, protocol, port prefix) → rule id. Member of the
 * "policy" group:
 *
 *  - REMOVE_ALLOWS: allows that go, and keys read back that this compiler
 *    never writes, before anything is relaxed. Every write that only
 *    restricts goes before every write that only relaxes: adding allows
 *    first is not enough — with source S and destination D, if the old
 *    policy allowed S's egress but not D's ingress and the new one the
 *    reverse, D's new allow next to S's old allow passes a packet neither
 *    state passes;
 *  - ADD_ALLOWS: new allows and changed rule ids, after the ipcache moved,
 *    none for a tainted identity.
 *
 * A refused write of an endpoint's own (a missing allow would only deny,
 * but the allows that did fit are not the policy either) closes that
 * endpoint as a unit. dropAllowsOf carries out a taint: every allow naming a
 * tainted identity goes (allows for any peer stay: they ask for no facts),
 * and every endpoint whose desired policy has such an allow is closed, so
 * its drops read POLICY_INCOMPLETE rather than a plain denial.
 */
import type { PolicyEntry, PolicyKey } from '../datapath/generated/abi.js';
import { describePolicyKey, policyEntryOf, policyKeyOf, readPolicyEntries } from '../datapath/maps/policy-key.js';
import { splitEndpointDirection, unpackPolicyKey, type DatapathState } from '../policy/datapath-state.js';
import { deleteAll, upsertAll, type MapStore } from './map-writes.js';
import { MapView } from './map-view.js';
import type { PolicyRoundInput } from './policy-input.js';
import { Phase, type FailClosed, type Reconciler, type StepFailure, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';

const MAP = 'policy';
type Policy = DatapathState['policy'];

export class PolicyOwner implements Reconciler<PolicyRoundInput> {
  readonly name = MAP;
  readonly group = 'policy';
  private readonly view: MapView<{ readonly policy: Policy; readonly foreign: readonly PolicyKey[] }>;
  private round: { readonly from: Policy; readonly to: Policy } | undefined;

  constructor(private readonly map: MapStore<PolicyKey, PolicyEntry>) {
    this.view = new MapView(() => readPolicyEntries(map.entries()));
  }

  /** What the map holds, in the compiler's form, and the keys it would never write. */
  current(): { readonly policy: Policy; readonly foreign: readonly PolicyKey[] } {
    return this.view.current();
  }

  plan(input: PolicyRoundInput): readonly WriteStep[] {
    const { policy: from, foreign } = this.current();
    const to = input.datapath.policy;
    this.view.ask({ policy: to, foreign: [] });
    this.round = { from, to };
    const removed: PolicyKey[] = [...foreign];
    const added: (readonly [PolicyKey, PolicyEntry])[] = [];
    for (const [epdir, next] of to) {
      const prev = from.get(epdir);
      if (prev === next) continue;
      for (const [packed, rule] of next) if (prev?.get(packed) !== rule) added.push([policyKeyOf(epdir, packed), policyEntryOf(rule)]);
      for (const packed of prev?.keys() ?? []) if (!next.has(packed)) removed.push(policyKeyOf(epdir, packed));
    }
    for (const [epdir, prev] of from) {
      if (to.has(epdir)) continue;
      for (const packed of prev.keys()) removed.push(policyKeyOf(epdir, packed));
    }
    const steps: WriteStep[] = [];
    const onFail = (kind: string, failClosed: FailClosed, fail: (f: StepFailure) => void) => (k: PolicyKey, e: unknown): void => {
      fail(stepFailure(kind, MAP, describePolicyKey(k), e));
      failClosed.closeEndpoint(k.endpointId);
    };
    if (removed.length > 0) {
      steps.push({
        phase: Phase.REMOVE_ALLOWS, kind: 'policy-delete', size: removed.length,
        run: (fc, fail) => deleteAll(this.map, removed, onFail('policy-delete', fc, fail)),
      });
    }
    if (added.length > 0) {
      steps.push({
        phase: Phase.ADD_ALLOWS, kind: 'policy-upsert', size: added.length,
        run: (fc, fail) => upsertAll(
          this.map,
          added.filter(([k]) => k.remoteIdentity === 0 || !fc.taintedIdentities.has(k.remoteIdentity)),
          onFail('policy-upsert', fc, fail),
        ),
      });
    }
    return steps;
  }

  dropAllowsOf(identities: ReadonlySet<number>, failClosed: FailClosed, fail: (f: StepFailure) => void): number {
    if (this.round === undefined) return 0;
    const seen = new Set<string>();
    const keys: PolicyKey[] = [];
    const wanted = new Set<number>();
    for (const state of [this.round.from, this.round.to]) {
      for (const [epdir, entries] of state) {
        for (const packed of entries.keys()) {
          const { remoteIdentity } = unpackPolicyKey(packed);
          if (remoteIdentity === 0 || !identities.has(remoteIdentity)) continue;
          const key = policyKeyOf(epdir, packed);
          if (state === this.round.to) wanted.add(key.endpointId);
          const tag = `${epdir}:${packed}`;
          if (seen.has(tag)) continue;
          seen.add(tag);
          keys.push(key);
        }
      }
    }
    const removed = deleteAll(this.map, keys, onFailClose(failClosed, fail));
    for (const id of wanted) failClosed.closeEndpoint(id);
    return removed;
  }

  endpointsAllowing(identities: ReadonlySet<number>): readonly number[] {
    const out = new Set<number>();
    for (const [epdir, entries] of this.round?.to ?? []) {
      for (const packed of entries.keys()) {
        const { remoteIdentity } = unpackPolicyKey(packed);
        if (remoteIdentity !== 0 && identities.has(remoteIdentity)) out.add(splitEndpointDirection(epdir).endpointId);
      }
    }
    return [...out].sort((a, b) => a - b);
  }

  settle(complete: boolean): void {
    this.view.settle(complete);
    this.round = undefined;
  }

  invalidate(): void {
    this.view.invalidate();
  }

  entries(): Readonly<Record<string, number>> {
    let n = 0;
    for (const m of this.view.known()?.policy.values() ?? []) n += m.size;
    return { policy: n };
  }
}

function onFailClose(failClosed: FailClosed, fail: (f: StepFailure) => void) {
  return (k: PolicyKey, e: unknown): void => {
    fail(stepFailure('policy-delete', MAP, describePolicyKey(k), e));
    failClosed.closeEndpoint(k.endpointId);
  };
}
