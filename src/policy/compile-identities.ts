/**
 * Identities for the map compiler, made exact for everything a rule can
 * tell apart about a remote peer.
 *
 * The datapath resolves a remote address to ONE identity (ipcache: the pod's
 * /32 in a hash, else the longest CIDR prefix, else WORLD) and looks the
 * identity up in the policy map. That is exact only if two addresses with
 * the same identity are matched by exactly the same rules. A rule sees of a
 * remote peer:
 *  1. its pod labels, its namespace's labels and name (pod/namespace selectors);
 *  2. for each ipBlock term (cidr + except list) of any policy, whether the
 *     address is inside the term;
 *  3. for an egress rule with a named port, what that name means on the
 *     remote (destination) pod.
 * So an identity is the set of exactly those facts (identity.ts's labels
 * plus `cidr:<term>` and `port:<name>/<proto>=<n>` labels):
 *  - a pod: its labels and namespace (identity.ts), the ipBlock terms that
 *    contain its IP, and the container ports whose (name, protocol) some
 *    egress rule names. Pods with equal labels share an identity unless some
 *    policy can actually tell them apart (an ipBlock around one of them, a
 *    named port that differs).
 *  - an address that is not a pod's: only fact 2 applies. The cidrs and
 *    excepts of all terms ("boundary prefixes") cut the address space; for
 *    an address, every boundary prefix containing it lies on one chain, and
 *    its term set is decided by the longest boundary prefix L containing it:
 *    a term contains the address iff its cidr contains L and none of its
 *    excepts does. Each boundary prefix becomes an ipcache LPM entry whose
 *    identity is the set of `cidr:` labels of L (WORLD when empty); one that
 *    would resolve exactly like its nearest containing boundary is left out.
 * Ingress named ports resolve on the local pod, whose entries are its own
 * (the policy map is keyed by endpoint), so they need no identity facts.
 *
 * Identity ids are allocated by identity.ts's policy (stable across
 * recompiles for an unchanged label set).
 */
import { formatCidr, type Cidr } from './cidr.js';
import type { Cluster } from './cluster.js';
import { PolicyError } from './errors.js';
import {
  allocateIdentities, identityLabels, ReservedIdentity, type AllocationOptions, type IdentityTable, type LabelSet,
} from './identity.js';
import type { ClusterPod } from './objects.js';
import type { NamespaceScope, Policy, Protocol } from './policy-types.js';
import { matchesSelector, type Selector } from './selectors.js';
import { ipcachePrefix } from './datapath-state.js';

/** An IPv4 prefix with the address in natural order. */
export interface V4Prefix {
  readonly addr: number;
  readonly len: number;
}

/** One distinct ipBlock of some policy: `10.0.0.0/8 except 10.1.0.0/16`. */
export interface IpBlockTerm {
  readonly key: string;
  readonly cidr: V4Prefix;
  readonly except: readonly V4Prefix[];
}

export type SecurityIdentity =
  | (LabelSet & {
      readonly kind: 'pod';
      readonly namespace: string;
      readonly podLabels: Readonly<Record<string, string>>;
      /** Keys of the ipBlock terms containing the pod's IP. */
      readonly terms: readonly string[];
      /** "name/PROTO" → port, for the names egress rules use. */
      readonly namedPorts: ReadonlyMap<string, number>;
    })
  | (LabelSet & { readonly kind: 'cidr'; readonly terms: readonly string[] });

/** What, in the policies, can tell peers apart beyond labels. */
export interface IdentityUniverse {
  readonly terms: ReadonlyMap<string, IpBlockTerm>;
  /** "name/PROTO" of every named port of an egress rule. */
  readonly egressPortNames: ReadonlySet<string>;
  /** Equal fingerprints ⇔ equal universes. */
  readonly fingerprint: string;
}

export interface IdentityAssignment {
  readonly table: IdentityTable<SecurityIdentity>;
  readonly universe: IdentityUniverse;
  /** Pod id → identity, for pods with an IPv4 address. */
  readonly podIdentity: ReadonlyMap<string, number>;
  /** ipcache prefix (datapath-state.ts) → identity: every pod /32 and the boundary prefixes. */
  readonly ipcache: ReadonlyMap<number, number>;
  /** Pod identities by namespace name. */
  readonly byNamespace: ReadonlyMap<string, readonly number[]>;
  /** Identities (pod and CIDR) inside each term. */
  readonly byTerm: ReadonlyMap<string, readonly number[]>;
  /** "name/PROTO" → [identity, port] of the pod identities that define it. */
  readonly byPortName: ReadonlyMap<string, readonly (readonly [number, number])[]>;
}

/** What one policy adds to the universe. */
export interface PolicyFacts {
  readonly terms: readonly IpBlockTerm[];
  readonly egressPortNames: readonly string[];
}

/**
 * The ipBlock terms and egress port names of every policy. IPv6 blocks
 * match nothing here (IPv4 datapath). `cache` keeps each policy object's
 * facts, so a recompile after one change re-reads one policy.
 */
export function identityUniverse(policies: readonly Policy[], cache?: WeakMap<Policy, PolicyFacts>): IdentityUniverse {
  const terms = new Map<string, IpBlockTerm>();
  const egressPortNames = new Set<string>();
  for (const policy of policies) {
    const facts = policyFactsOf(policy, cache);
    for (const term of facts.terms) if (!terms.has(term.key)) terms.set(term.key, term);
    for (const name of facts.egressPortNames) egressPortNames.add(name);
  }
  const fingerprint = JSON.stringify([[...terms.keys()].sort(), [...egressPortNames].sort()]);
  return { terms, egressPortNames, fingerprint };
}

/** A policy's facts, from `cache` when it has them. */
export function policyFactsOf(policy: Policy, cache?: WeakMap<Policy, PolicyFacts>): PolicyFacts {
  let facts = cache?.get(policy);
  if (facts === undefined) {
    facts = policyFacts(policy);
    cache?.set(policy, facts);
  }
  return facts;
}

/**
 * Two policy lists pair up one to one, in order, under `same`; identical
 * objects pair without asking (recompiles share unchanged policies).
 */
export function samePolicies(a: readonly Policy[], b: readonly Policy[], same: (x: Policy, y: Policy) => boolean): boolean {
  return a.length === b.length && a.every((x, i) => {
    const y = b[i];
    return x === y || (y !== undefined && same(x, y));
  });
}

/** Both lists add the same facts (policy by policy, in order): the universe is the same. */
export function sameFacts(a: readonly Policy[], b: readonly Policy[], cache: WeakMap<Policy, PolicyFacts>): boolean {
  return samePolicies(a, b, (x, y) => {
    const fx = policyFactsOf(x, cache);
    const fy = policyFactsOf(y, cache);
    return fx.terms.length === fy.terms.length && fx.egressPortNames.length === fy.egressPortNames.length &&
      fx.terms.every((t, j) => t.key === fy.terms[j]?.key) && fx.egressPortNames.every((n, j) => n === fy.egressPortNames[j]);
  });
}

function policyFacts(policy: Policy): PolicyFacts {
  const terms: IpBlockTerm[] = [];
  const names: string[] = [];
  for (const rule of [...policy.ingress, ...policy.egress]) {
    if (rule.peers !== 'all') {
      for (const peer of rule.peers) if (peer.kind === 'ipBlock' && peer.cidr.family === 4) terms.push(ipBlockTerm(peer.cidr, peer.except));
    }
    if (rule.direction === 'egress' && rule.ports !== 'all') {
      for (const m of rule.ports) if (m.port.kind === 'named') names.push(portName(m.port.name, m.protocol));
    }
  }
  return { terms, egressPortNames: names };
}

export function portName(name: string, protocol: Protocol): string {
  return `${name}/${protocol}`;
}

/**
 * Identities for every pod with an IPv4 address and every boundary prefix,
 * allocated against `previous` (ids of unchanged label sets are kept).
 */
export function assignIdentities(
  cluster: Cluster,
  universe: IdentityUniverse,
  previous: IdentityTable<LabelSet>,
  options: AllocationOptions = {},
): IdentityAssignment {
  const boundaries = boundaryPrefixes(universe);
  const shared = new SharedValues();
  const podSets: [ClusterPod, SecurityIdentity][] = [];
  for (const pod of cluster.pods) {
    if (pod.ip === undefined) continue;
    const ns = cluster.namespaces.get(pod.namespace);
    if (ns === undefined) throw new PolicyError('not-found', `Pod ${pod.id}: namespace "${pod.namespace}" is unknown`, 'namespace');
    const ip = Number(pod.ip.value);
    const terms = boundaries.termsOf(ip);
    const ports: [string, number][] = [];
    for (const p of pod.ports) {
      if (p.name === undefined) continue;
      const name = portName(p.name, p.protocol);
      if (universe.egressPortNames.has(name)) ports.push([name, p.port]);
    }
    const base = identityLabels(pod, ns);
    const labels = [...base.labels, ...terms.map((t) => `cidr:${t}`), ...ports.map(([n, port]) => `port:${n}=${port}`)].sort(compare).map(shared.string);
    podSets.push([pod, {
      kind: 'pod', namespace: pod.namespace, podLabels: shared.record(base.podLabels), terms, namedPorts: shared.portMap(ports), labels, key: JSON.stringify(labels),
    }]);
  }

  const podPrefixes = new Set(podSets.map(([pod]) => ipcachePrefix(Number(pod.ip?.value ?? 0), 32)));
  const cidrSets: [number, SecurityIdentity | undefined][] = [];
  for (const b of boundaries.list) {
    const prefix = ipcachePrefix(b.prefix.addr, b.prefix.len);
    if (podPrefixes.has(prefix)) continue; // the pod's own identity already says which terms hold it
    const labels = b.terms.map((t) => `cidr:${t}`);
    cidrSets.push([prefix, labels.length === 0 ? undefined : { kind: 'cidr', terms: b.terms, labels, key: JSON.stringify(labels) }]);
  }

  const wanted: SecurityIdentity[] = [...podSets.map(([, s]) => s), ...cidrSets.flatMap(([, s]) => (s === undefined ? [] : [s]))];
  const { table } = allocateIdentities<SecurityIdentity>(previous, wanted, options);
  const idOf = (s: SecurityIdentity | undefined): number => (s === undefined ? ReservedIdentity.WORLD : (table.byKey.get(s.key) ?? ReservedIdentity.WORLD));

  const podIdentity = new Map<string, number>();
  const ipcache = new Map<number, number>();
  for (const [pod, s] of podSets) {
    const id = idOf(s);
    podIdentity.set(pod.id, id);
    ipcache.set(ipcachePrefix(Number(pod.ip?.value ?? 0), 32), id);
  }
  // A boundary that resolves like its nearest containing boundary adds nothing.
  const boundaryId = new Map<number, number>(cidrSets.map(([prefix, s]) => [prefix, idOf(s)]));
  for (const b of boundaries.list) {
    const prefix = ipcachePrefix(b.prefix.addr, b.prefix.len);
    const id = boundaryId.get(prefix);
    if (id === undefined) continue;
    const parent = b.parent === undefined ? ReservedIdentity.WORLD : (boundaryId.get(ipcachePrefix(b.parent.addr, b.parent.len)) ?? ReservedIdentity.WORLD);
    if (id !== parent) ipcache.set(prefix, id);
  }

  const byNamespace = new Map<string, number[]>();
  const byTerm = new Map<string, number[]>();
  const byPortName = new Map<string, [number, number][]>();
  for (const [id, s] of table.byId) {
    for (const t of s.terms) push(byTerm, t, id);
    if (s.kind !== 'pod') continue;
    push(byNamespace, s.namespace, id);
    for (const [name, port] of s.namedPorts) push(byPortName, name, [id, port] as [number, number]);
  }
  return { table, universe, podIdentity, ipcache, byNamespace, byTerm, byPortName };
}

/**
 * One instance per distinct value within an assignment: thousands of pod
 * identities repeat the same label strings (`ns:team=a`, `pod:app=web`),
 * label sets and named-port maps, and every identity is kept in the table
 * until the next assignment. Values are never mutated once made.
 */
class SharedValues {
  private readonly strings = new Map<string, string>();
  private readonly records = new Map<string, Readonly<Record<string, string>>>();
  private readonly portMaps = new Map<string, ReadonlyMap<string, number>>();

  readonly string = (s: string): string => {
    const hit = this.strings.get(s);
    if (hit !== undefined) return hit;
    this.strings.set(s, s);
    return s;
  };

  /** `r` (keys already in canonical order), or an equal record given before. */
  record(r: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    const key = JSON.stringify(r);
    const hit = this.records.get(key);
    if (hit !== undefined) return hit;
    this.records.set(key, r);
    return r;
  }

  /** A map of "name/PROTO" → port from `entries` (in pod order), shared with equal ones. */
  portMap(entries: readonly (readonly [string, number])[]): ReadonlyMap<string, number> {
    const key = JSON.stringify(entries);
    let m = this.portMaps.get(key);
    if (m === undefined) this.portMaps.set(key, (m = new Map(entries)));
    return m;
  }
}

/**
 * The pod identities a pod peer selects (namespaces by scope, then pods by
 * selector), memoized per assignment in `cache` by the selectors' canonical
 * text, since many rules repeat the same peer.
 */
export function selectPodIdentities(
  cluster: Cluster,
  assignment: IdentityAssignment,
  scope: NamespaceScope,
  pods: Selector,
  cache: Map<string, readonly number[]>,
): readonly number[] {
  const key = `${scope.kind === 'policy-namespace' ? `ns:${scope.namespace}` : `sel:${scope.selector.text}`}|${pods.text}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const namespaces =
    scope.kind === 'policy-namespace'
      ? [scope.namespace]
      : [...cluster.namespaces.values()].filter((ns) => matchesSelector(scope.selector, ns.labels)).map((ns) => ns.name);
  const out: number[] = [];
  for (const ns of namespaces) {
    for (const id of assignment.byNamespace.get(ns) ?? []) {
      const s = assignment.table.byId.get(id);
      if (s?.kind === 'pod' && matchesSelector(pods, s.podLabels)) out.push(id);
    }
  }
  cache.set(key, out);
  return out;
}

interface Boundary {
  readonly prefix: V4Prefix;
  /** Keys of the terms that contain every address of the prefix not covered by a longer boundary. */
  readonly terms: readonly string[];
  /** The nearest shorter boundary containing it. */
  readonly parent: V4Prefix | undefined;
}

interface Boundaries {
  /** Ordered by prefix length, then address. */
  readonly list: readonly Boundary[];
  /** Terms containing an address: those of its longest boundary. */
  termsOf(addr: number): readonly string[];
}

function boundaryPrefixes(universe: IdentityUniverse): Boundaries {
  const prefixes = new Map<number, V4Prefix>();
  for (const term of universe.terms.values()) {
    for (const p of [term.cidr, ...term.except]) prefixes.set(ipcachePrefix(p.addr, p.len), p);
  }
  const sorted = [...prefixes.values()].sort((a, b) => a.len - b.len || a.addr - b.addr);
  const terms = [...universe.terms.values()];
  const byLen = new Map<number, Map<number, number>>(); // len → network → index in list
  const list: Boundary[] = [];
  const longestAbove = (addr: number, maxLen: number): number | undefined => {
    for (let len = maxLen; len >= 0; len--) {
      const at = byLen.get(len)?.get(network(addr, len));
      if (at !== undefined) return at;
    }
    return undefined;
  };
  for (const p of sorted) {
    const inside = terms.filter((t) => contains(t.cidr, p) && !t.except.some((e) => contains(e, p))).map((t) => t.key).sort(compare);
    const parentAt = p.len === 0 ? undefined : longestAbove(p.addr, p.len - 1);
    list.push({ prefix: p, terms: inside, parent: parentAt === undefined ? undefined : list[parentAt]?.prefix });
    let level = byLen.get(p.len);
    if (level === undefined) byLen.set(p.len, (level = new Map<number, number>()));
    level.set(network(p.addr, p.len), list.length - 1);
  }
  const EMPTY: readonly string[] = [];
  return {
    list,
    termsOf: (addr) => {
      const at = longestAbove(addr, 32);
      return at === undefined ? EMPTY : (list[at]?.terms ?? EMPTY);
    },
  };
}

/** The canonical term of an IPv4 ipBlock (excepts deduplicated and sorted). */
export function ipBlockTerm(cidr: Cidr, except: readonly Cidr[]): IpBlockTerm {
  const v4 = (c: Cidr): V4Prefix => ({ addr: Number(c.base), len: c.prefixlen });
  const ex = [...new Map(except.filter((e) => e.family === 4).map((e) => [formatCidr(e), e])).entries()]
    .sort(([, a], [, b]) => (a.base < b.base ? -1 : a.base > b.base ? 1 : a.prefixlen - b.prefixlen));
  const key = ex.length === 0 ? formatCidr(cidr) : `${formatCidr(cidr)} except ${ex.map(([t]) => t).join(',')}`;
  return { key, cidr: v4(cidr), except: ex.map(([, e]) => v4(e)) };
}

/** The first `len` bits of addr, as a number (0 for len 0). */
function network(addr: number, len: number): number {
  return len === 0 ? 0 : Math.floor(addr / 2 ** (32 - len));
}

/** Every address of `inner` is in `outer`. */
export function contains(outer: V4Prefix, inner: V4Prefix): boolean {
  return outer.len <= inner.len && network(outer.addr, outer.len) === network(inner.addr, outer.len);
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
