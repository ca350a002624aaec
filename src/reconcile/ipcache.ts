/**
 * Owner of the ipcache (sl_iphost_v1 for /32s, sl_ipcache_v1 for shorter
 * prefixes; src/datapath/maps/ipcache.ts): address prefix → identity, for
 * every pod of the cluster and every ipBlock boundary. Member of the
 * "policy" group:
 *
 *  - IPCACHE_UPSERT, longest prefix first, after the policy owner removed
 *    the allows that go: identities stand for facts (labels, ipBlock
 *    membership, named ports) and the allows left hold in both states, so an
 *    address resolving to its old or its new identity is decided as in the
 *    old or the new state. Longest first puts an except hole (or any longer
 *    boundary) in place before the shorter prefix around it takes an
 *    identity the hole must not have;
 *  - IPCACHE_DELETE, shortest prefix first: a prefix around a hole goes
 *    before the hole.
 *
 * A write that fails at prefix P may leave P's addresses with P's old
 * identity or with the identity of a shorter prefix around P, either of
 * which may claim facts those addresses do not have: those identities are
 * tainted (FailClosed.taintIdentities), so the policy owner removes every
 * allow naming them and closes the endpoints that wanted one. The identity
 * P should have had is missing there: every endpoint whose wanted allows
 * name it is closed too (FailClosed.closeEndpointsAllowing), so its drops
 * read POLICY_INCOMPLETE, not a plain denial.
 */
import type { IpcacheEntry, IpcacheKey } from '../datapath/generated/abi.js';
import { formatIpcachePrefix, ipcacheEntryOf, ipcacheKeyOf, ipcachePrefix, ipcachePrefixOf } from '../policy/datapath-state.js';
import { deleteAll, upsertAll, type MapStore } from './map-writes.js';
import type { PolicyRoundInput } from './policy-input.js';
import { MapView } from './map-view.js';
import { Phase, type FailClosed, type Reconciler, type StepFailure, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';

type Ipcache = ReadonlyMap<number, number>;

export class IpcacheOwner implements Reconciler<PolicyRoundInput> {
  readonly name = 'ipcache';
  readonly group = 'policy';
  private readonly view: MapView<Ipcache>;

  constructor(private readonly map: MapStore<IpcacheKey, IpcacheEntry>) {
    this.view = new MapView(() => {
      const read = new Map<number, number>();
      for (const [k, v] of map.entries()) read.set(ipcachePrefixOf(k), v.identity);
      return read;
    });
  }

  current(): Ipcache {
    return this.view.current();
  }

  plan(input: PolicyRoundInput): readonly WriteStep[] {
    const from = this.current();
    const to = input.datapath.ipcache;
    this.view.ask(to);
    if (from === to) return [];
    // Prefixes are addr · 64 + prefixlen.
    const upserts: number[] = [];
    for (const [p, id] of to) if (from.get(p) !== id) upserts.push(p);
    const deletes = [...from.keys()].filter((p) => !to.has(p));
    upserts.sort((a, b) => (b % 64) - (a % 64) || a - b);
    deletes.sort((a, b) => (a % 64) - (b % 64) || a - b);
    const steps: WriteStep[] = [];
    // A failed write at P: P's old identity and those of the prefixes around it may claim facts P's addresses
    // lack (tainted), and the identity P should have had is missing there (whoever wants an allow for it is closed).
    const write = (kind: string, op: (onFail: (k: IpcacheKey, e: unknown) => void) => number) =>
      (failClosed: FailClosed, fail: (f: StepFailure) => void): number => {
        const tainted: number[][] = [];
        const missing: number[] = [];
        const n = op((k, e) => {
          fail(stepFailure(kind, k.prefixlen === 32 ? 'iphost' : 'ipcache', formatIpcachePrefix(ipcachePrefixOf(k)), e));
          tainted.push(ipcacheTaint(from, to, k));
          const wanted = to.get(ipcachePrefixOf(k));
          if (wanted !== undefined) missing.push(wanted);
        });
        for (const ids of tainted) failClosed.taintIdentities(ids);
        if (missing.length > 0) failClosed.closeEndpointsAllowing(missing);
        return n;
      };
    if (upserts.length > 0) {
      steps.push({
        phase: Phase.IPCACHE_UPSERT, kind: 'ipcache-upsert', size: upserts.length,
        run: write('ipcache-upsert', (onFail) => upsertAll(this.map, upserts.map((p) => [ipcacheKeyOf(p), ipcacheEntryOf(to.get(p) ?? 0)] as const), onFail)),
      });
    }
    if (deletes.length > 0) {
      steps.push({
        phase: Phase.IPCACHE_DELETE, kind: 'ipcache-delete', size: deletes.length,
        run: write('ipcache-delete', (onFail) => deleteAll(this.map, deletes.map(ipcacheKeyOf), onFail)),
      });
    }
    return steps;
  }

  settle(complete: boolean): void {
    this.view.settle(complete);
  }

  invalidate(): void {
    this.view.invalidate();
  }

  entries(): Readonly<Record<string, number>> {
    const held = this.view.known();
    let iphost = 0;
    for (const p of held?.keys() ?? []) if (p % 64 === 32) iphost++;
    return { iphost, ipcache: (held?.size ?? 0) - iphost };
  }
}

/**
 * Identities that addresses of `key` may resolve to when a write at `key`
 * failed: its old identity, and those of every shorter prefix containing it,
 * in either state.
 */
export function ipcacheTaint(from: Ipcache, to: Ipcache, key: IpcacheKey): number[] {
  const out = new Set<number>();
  const at = from.get(ipcachePrefix(key.addr, key.prefixlen));
  if (at !== undefined) out.add(at);
  for (let len = key.prefixlen - 1; len >= 0; len--) {
    const network = len === 0 ? 0 : Math.floor(key.addr / 2 ** (32 - len)) * 2 ** (32 - len);
    const p = ipcachePrefix(network, len);
    for (const state of [from, to]) {
      const id = state.get(p);
      if (id !== undefined) out.add(id);
    }
  }
  return [...out].sort((a, b) => a - b);
}
