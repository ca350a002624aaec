/**
 * The order in which a diff is written to the maps so that no packet is
 * ever allowed by a state that is neither the old nor the new one, and what
 * to do, fail-closed, when a write fails.
 *
 * The principle: every write that only restricts goes before every write
 * that only relaxes. Adding allows first is not enough: with source S and
 * destination D, if the old policy allowed S's egress but not D's ingress
 * and the new one the reverse, D's new allow next to S's old allow passes a
 * packet that neither state passes. So:
 *  1. endpoint restrict — an endpoint that becomes isolated in a direction
 *     gets the union of old and new isolation bits (revision and port-class
 *     masks unchanged);
 *  2. policy deletes — old allows go: every direction now allows at most
 *     what both the old and the new state allow (old ∩ new entries, old ∪
 *     new isolation);
 *  3. ipcache upserts, longest prefix first. Identities stand for facts
 *     (labels, ipBlock membership, named ports) and the entries left from
 *     step 2 hold in both states, so an address resolving to its old or its
 *     new identity is decided as in the old or the new state. Longest first
 *     puts an except hole (or any longer boundary) in place before the
 *     shorter prefix around it takes an identity the hole must not have
 *     (identities new in this apply have no allows before step 5, so this
 *     is defense in depth);
 *  4. ipcache deletes, shortest prefix first — a prefix around a hole goes
 *     before the hole;
 *  5. policy upserts — new allows (and changed rule ids);
 *  6. endpoint upserts — final flags (isolation, and a POLICY_INCOMPLETE
 *     mark read back from a failed apply, cleared last), port-class masks
 *     and bumped revisions; new endpoints appear (until then they drop
 *     everything);
 *  7. endpoint deletes.
 * Port-class masks (which classes of sl_policy_v3 the datapath looks up for
 * an endpoint) hold the old state's value until step 6. A class the old
 * mask lacks hides only entries written in step 5, and hiding an ALLOW only
 * denies; a class the new mask lacks has no entries left after step 2 (a
 * failed delete closes the endpoint). So no mask ever lets through what
 * neither state allows; new allows of a class new to the endpoint count
 * from step 6 instead of step 5. Masks are never widened earlier: read back
 * after a crash, the maps may hold entries a mask hides, and widening
 * before step 2 deleted them would show them.
 * The price is safe: a connection both states allow, but through different
 * entries (an identity that changed, a rule rewritten), can be refused while
 * the apply runs (milliseconds); established connections keep their
 * conntrack entries.
 *
 * Failures (a full map; anything else the kernel refuses) never leave a pod
 * less protected than both states would; they are reported:
 *  - a write of an endpoint's own that fails (a policy upsert, a policy
 *    delete, its endpoint entry) closes the endpoint as a unit: its entry is
 *    rewritten in place with SLUICE_EP_F_POLICY_INCOMPLETE and a revision
 *    bump (every decision then drops, established connections included),
 *    later steps leave it so, and the next complete apply clears it; only
 *    if that write fails too is the entry deleted (no entry drops
 *    everything);
 *  - an ipcache write that fails at prefix P may leave P's addresses with
 *    P's old identity or with the identity of a shorter prefix around P,
 *    either of which may claim facts (labels, ipBlocks) those addresses do
 *    not have: every policy entry (old or new) that allows one of those
 *    "tainted" identities is deleted (entries for any peer stay: they ask
 *    for no facts);
 * After a failed apply, the maps no longer hold what the last compile says:
 * diff the next compile against the maps as read back, not against it.
 */
import type { EndpointEntry, IpcacheEntry, IpcacheKey, PolicyEntry, PolicyKey } from '../datapath/generated/abi.js';
import {
  ipcacheEntryOf, ipcacheKeyOf, ipcachePrefix, policyEntryOf, policyKeyOf, unpackPolicyKey, type DatapathState,
} from './datapath-state.js';
import { diffDatapath, diffSize, type DatapathDiff } from './diff.js';

export type ApplyStep =
  | { readonly kind: 'endpoint-restrict'; readonly entries: readonly (readonly [number, EndpointEntry])[] }
  | { readonly kind: 'policy-upsert'; readonly entries: readonly (readonly [PolicyKey, PolicyEntry])[] }
  | { readonly kind: 'ipcache-upsert'; readonly entries: readonly (readonly [IpcacheKey, IpcacheEntry])[] }
  | { readonly kind: 'endpoint-upsert'; readonly entries: readonly (readonly [number, EndpointEntry])[] }
  | { readonly kind: 'ipcache-delete'; readonly keys: readonly IpcacheKey[] }
  | { readonly kind: 'policy-delete'; readonly keys: readonly PolicyKey[] }
  | { readonly kind: 'endpoint-delete'; readonly keys: readonly number[] };

export interface ApplyPlan {
  readonly from: DatapathState;
  readonly to: DatapathState;
  readonly diff: DatapathDiff;
  /** Non-empty steps, in the order above. */
  readonly steps: readonly ApplyStep[];
  /** Entries written or deleted. */
  readonly size: number;
}

/**
 * The ordered writes that take the maps from `from` to `to`. `stale` policy
 * keys (read back from the maps but never written by this compiler) are
 * deleted with the other policy deletes.
 */
export function planApply(
  from: DatapathState,
  to: DatapathState,
  diff: DatapathDiff = diffDatapath(from, to),
  stale: readonly PolicyKey[] = [],
): ApplyPlan {
  // ipcache prefixes are addr · 64 + prefixlen.
  const longestFirst = (a: number, b: number): number => (b % 64) - (a % 64) || a - b;
  const shortestFirst = (a: number, b: number): number => (a % 64) - (b % 64) || a - b;
  const restrict: [number, EndpointEntry][] = [];
  for (const [id, next, old] of diff.endpoints.changed) {
    if ((next.flags & ~old.flags) !== 0) restrict.push([id, { ...old, flags: (old.flags | next.flags) >>> 0 }]);
  }
  const steps: ApplyStep[] = [
    { kind: 'endpoint-restrict', entries: restrict },
    { kind: 'policy-delete', keys: [...diff.policy.removed.map(([s]) => policyKeyOf(s.epdir, s.packed)), ...stale] },
    {
      kind: 'ipcache-upsert',
      entries: [...diff.ipcache.added, ...diff.ipcache.changed]
        .sort(([a], [b]) => longestFirst(a, b))
        .map(([prefix, id]) => [ipcacheKeyOf(prefix), ipcacheEntryOf(id)] as const),
    },
    { kind: 'ipcache-delete', keys: diff.ipcache.removed.map(([p]) => p).sort(shortestFirst).map(ipcacheKeyOf) },
    {
      kind: 'policy-upsert',
      entries: [...diff.policy.added, ...diff.policy.changed].map(([s, rule]) => [policyKeyOf(s.epdir, s.packed), policyEntryOf(rule)] as const),
    },
    { kind: 'endpoint-upsert', entries: [...diff.endpoints.added, ...diff.endpoints.changed].map(([id, e]) => [id, e] as const) },
    { kind: 'endpoint-delete', keys: diff.endpoints.removed.map(([id]) => id) },
  ];
  return {
    from,
    to,
    diff,
    steps: steps.filter((s) => ('entries' in s ? s.entries.length : s.keys.length) > 0),
    size: diffSize(diff) + stale.length + restrict.length,
  };
}

/**
 * Identities that addresses of `key` may resolve to when a write at `key`
 * failed: its old identity, and those of every shorter prefix containing
 * it, in either state.
 */
export function ipcacheTaint(plan: ApplyPlan, key: IpcacheKey): number[] {
  const out = new Set<number>();
  const at = plan.from.ipcache.get(ipcachePrefix(key.addr, key.prefixlen));
  if (at !== undefined) out.add(at);
  for (let len = key.prefixlen - 1; len >= 0; len--) {
    const network = len === 0 ? 0 : Math.floor(key.addr / 2 ** (32 - len)) * 2 ** (32 - len);
    const p = ipcachePrefix(network, len);
    for (const state of [plan.from, plan.to]) {
      const id = state.ipcache.get(p);
      if (id !== undefined) out.add(id);
    }
  }
  return [...out].sort((a, b) => a - b);
}

/** Every policy entry of either state that allows one of `identities` specifically (not "any peer"). */
export function entriesAllowing(plan: ApplyPlan, identities: ReadonlySet<number>): PolicyKey[] {
  const seen = new Set<string>();
  const out: PolicyKey[] = [];
  for (const state of [plan.from, plan.to]) {
    for (const [epdir, entries] of state.policy) {
      for (const packed of entries.keys()) {
        const { remoteIdentity } = unpackPolicyKey(packed);
        if (remoteIdentity === 0 || !identities.has(remoteIdentity)) continue;
        const tag = `${epdir}:${packed}`;
        if (seen.has(tag)) continue;
        seen.add(tag);
        out.push(policyKeyOf(epdir, packed));
      }
    }
  }
  return out;
}
