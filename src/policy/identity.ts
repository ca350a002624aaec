/**
 * Security identities: the set of labels policies can select a pod by (its
 * own labels, its namespace's labels and its namespace's name), canonicalized,
 * and a numeric id per distinct set, shared by every pod that has it. Policy
 * then costs O(identities), not O(pods), and the datapath maps a pod IP to
 * an id through the ipcache.
 *
 * Label strings carry a source prefix so that sources cannot collide: label
 * keys cannot contain ":", so `pod:app=x` (a pod label), `ns:app=x` (a label
 * of the pod's namespace) and `k8s:io.kubernetes.pod.namespace=x` (the
 * namespace name) are always distinct.
 *
 * Allocation is a pure function from the previous table and the wanted label
 * sets to the next table (so an agent restores the table from its pinned maps
 * and keeps every id stable across restarts). Reuse policy, deterministic:
 * - a label set that is still wanted keeps its id;
 * - new label sets, taken in ascending order of their canonical key, get
 *   fresh ids counting up from 256 (SLUICE_IDENTITY_FIRST);
 * - an id is released when no wanted set has it any more, and is reused only
 *   once the fresh ids are exhausted (the smallest released id first), never
 *   in the same allocation that released it. Delaying reuse keeps a stale id
 *   that is still in a conntrack entry or a half-applied map diff from
 *   suddenly meaning other pods.
 * Ids 0..255 are reserved (0 unknown, 1 host, 2 world).
 */
import { SluiceIdentityReserved } from '../datapath/generated/abi.js';
import { PolicyError } from './errors.js';
import type { ClusterNamespace, ClusterPod } from './objects.js';

export const ReservedIdentity = {
  UNKNOWN: SluiceIdentityReserved.UNKNOWN,
  HOST: SluiceIdentityReserved.HOST,
  WORLD: SluiceIdentityReserved.WORLD,
} as const;
/** First id handed out to a label set. */
export const FIRST_IDENTITY = SluiceIdentityReserved.FIRST;
/** Identities are __u32 in the datapath. */
export const MAX_IDENTITY = 0xffffffff;

/** The label of an identity that names the pod's namespace. */
export const NAMESPACE_IDENTITY_LABEL = 'k8s:io.kubernetes.pod.namespace';

/** What allocation needs of a label set: its canonical key. */
export interface LabelSet {
  /** Sorted label strings. */
  readonly labels: readonly string[];
  /** Canonical and injective: equal keys ⇔ equal label sets. */
  readonly key: string;
}

export interface IdentityLabels extends LabelSet {
  readonly namespace: string;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  /** "k8s:io.kubernetes.pod.namespace=x", "ns:<key>=<value>"…, "pod:<key>=<value>"…, sorted. */
  readonly labels: readonly string[];
  /** Canonical and injective: equal keys ⇔ equal label sets. */
  readonly key: string;
}

/** The identity labels of `pod`, which lives in `namespace`. */
export function identityLabels(pod: Pick<ClusterPod, 'namespace' | 'labels'>, namespace: ClusterNamespace): IdentityLabels {
  if (namespace.name !== pod.namespace) {
    throw new PolicyError('invalid', `pod of namespace "${pod.namespace}" given namespace "${namespace.name}"`, 'namespace');
  }
  const podLabels = sortedRecord(pod.labels);
  const namespaceLabels = sortedRecord(namespace.labels);
  const labels = [
    `${NAMESPACE_IDENTITY_LABEL}=${pod.namespace}`,
    ...Object.entries(namespaceLabels).map(([k, v]) => `ns:${k}=${v}`),
    ...Object.entries(podLabels).map(([k, v]) => `pod:${k}=${v}`),
  ].sort(compare);
  return { namespace: pod.namespace, podLabels, namespaceLabels, labels, key: JSON.stringify(labels) };
}

/**
 * Ids and the label sets they stand for. Generic in the label set so that the
 * map compiler can allocate richer sets (labels plus the ipBlocks and named
 * ports that tell pods apart, see compile-identities.ts) by the same policy.
 */
export interface IdentityTable<L extends LabelSet = IdentityLabels> {
  readonly byId: ReadonlyMap<number, L>;
  readonly byKey: ReadonlyMap<string, number>;
  /** The next never-used id. */
  readonly next: number;
  /** Released ids, ascending, reused once `next` passes the maximum. */
  readonly free: readonly number[];
}

export const EMPTY_IDENTITY_TABLE: IdentityTable<never> = {
  byId: new Map<number, never>(),
  byKey: new Map<string, number>(),
  next: FIRST_IDENTITY,
  free: [],
};

export interface Allocation<L extends LabelSet = IdentityLabels> {
  readonly table: IdentityTable<L>;
  /** Ids given to new label sets in this allocation, ascending. */
  readonly added: readonly number[];
  /** Ids no longer used, ascending. */
  readonly released: readonly number[];
}

export interface AllocationOptions {
  /** Highest id to hand out (tests shrink it). Default MAX_IDENTITY. */
  readonly maxId?: number;
}

/**
 * The next table: exactly the `wanted` label sets (duplicates are fine), ids
 * kept, allocated and released by the policy in the module comment.
 * Throws PolicyError 'exhausted' when there are more sets than ids.
 */
export function allocateIdentities<L extends LabelSet = IdentityLabels>(
  /** Only its ids, keys, `next` and `free` are read: a table restored with bare label sets will do. */
  previous: IdentityTable<LabelSet>,
  wanted: Iterable<L>,
  options: AllocationOptions = {},
): Allocation<L> {
  const maxId = options.maxId ?? MAX_IDENTITY;
  const wantedByKey = new Map<string, L>();
  for (const w of wanted) wantedByKey.set(w.key, w);

  const byId = new Map<number, L>();
  const byKey = new Map<string, number>();
  for (const [key, labels] of wantedByKey) {
    const id = previous.byKey.get(key);
    if (id !== undefined) {
      byId.set(id, labels);
      byKey.set(key, id);
    }
  }
  const released = [...previous.byId.keys()].filter((id) => !byId.has(id)).sort((a, b) => a - b);

  let next = previous.next;
  const free = [...previous.free];
  const added: number[] = [];
  const fresh = [...wantedByKey.keys()].filter((k) => !byKey.has(k)).sort(compare);
  for (const key of fresh) {
    let id: number | undefined;
    if (next <= maxId) id = next++;
    else id = free.shift();
    if (id === undefined) {
      throw new PolicyError('exhausted', `no identity left for ${key}: all ${maxId - FIRST_IDENTITY + 1} ids are in use`, 'identity');
    }
    const labels = wantedByKey.get(key);
    if (labels === undefined) continue;
    byId.set(id, labels);
    byKey.set(key, id);
    added.push(id);
  }
  const nextFree = [...free, ...released].sort((a, b) => a - b);
  return { table: { byId, byKey, next, free: nextFree }, added: added.sort((a, b) => a - b), released };
}

/**
 * Rebuilds a table from ids found in the datapath (after an agent restart).
 * `next` defaults to one past the highest id; every id from FIRST_IDENTITY
 * below `next` that is not in use counts as released (O(next) to rebuild).
 */
export function restoreIdentityTable<L extends LabelSet = IdentityLabels>(
  entries: Iterable<readonly [number, L]>,
  next?: number,
): IdentityTable<L> {
  const byId = new Map<number, L>();
  const byKey = new Map<string, number>();
  for (const [id, labels] of entries) {
    if (!Number.isInteger(id) || id < FIRST_IDENTITY || id > MAX_IDENTITY) {
      throw new PolicyError('invalid', `identity ${id} is outside ${FIRST_IDENTITY}..${MAX_IDENTITY}`, 'identity');
    }
    const other = byKey.get(labels.key);
    if (byId.has(id) || (other !== undefined && other !== id)) {
      throw new PolicyError('duplicate', `identity ${id} or its label set ${labels.key} appears twice`, 'identity');
    }
    byId.set(id, labels);
    byKey.set(labels.key, id);
  }
  let highest: number = FIRST_IDENTITY - 1;
  for (const id of byId.keys()) highest = Math.max(highest, id);
  const start = next ?? highest + 1;
  if (start <= highest) throw new PolicyError('invalid', `next ${start} must be above the highest id in use (${highest})`, 'next');
  const free: number[] = [];
  for (let id: number = FIRST_IDENTITY; id < start; id++) if (!byId.has(id)) free.push(id);
  return { byId, byKey, next: start, free };
}

export interface PodIdentities extends Allocation {
  /** Pod id ("namespace/name") → identity. */
  readonly byPod: ReadonlyMap<string, number>;
}

/** Allocates the identities of every pod of a snapshot. */
export function allocatePodIdentities(
  previous: IdentityTable,
  pods: readonly ClusterPod[],
  namespaces: ReadonlyMap<string, ClusterNamespace>,
  options: AllocationOptions = {},
): PodIdentities {
  const perPod = pods.map((pod) => {
    const ns = namespaces.get(pod.namespace);
    if (ns === undefined) throw new PolicyError('not-found', `Pod ${pod.id}: namespace "${pod.namespace}" is unknown`, 'namespace');
    return [pod.id, identityLabels(pod, ns)] as const;
  });
  const allocation = allocateIdentities(previous, perPod.map(([, l]) => l), options);
  const byPod = new Map<string, number>();
  for (const [id, labels] of perPod) {
    const identity = allocation.table.byKey.get(labels.key);
    if (identity !== undefined) byPod.set(id, identity);
  }
  return { ...allocation, byPod };
}

function sortedRecord(r: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(r).sort(compare)) out[k] = r[k] ?? '';
  return out;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
