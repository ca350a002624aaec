/**
 * The map compiler: a cluster snapshot and the pods local to this node in,
 * the desired datapath state out (datapath-state.ts) — identities and the
 * ipcache (compile-identities.ts), isolation flags and port-class masks per
 * endpoint, and policy entries per endpoint and direction
 * (compile-endpoint.ts) whose rule ids map back to rules (rule-ids.ts).
 *
 * Pure, and cheap to rerun after a change: given the previous result, it
 * reuses whatever the change cannot have affected, by reference —
 * - the identity assignment (and the ipcache), when pods and namespaces are
 *   the same objects and the policies' ipBlocks and egress port names are
 *   the same;
 * - an endpoint-direction's entries, when moreover its pod and the policies
 *   that isolate it are the same objects (a policy change re-evaluates only
 *   the endpoints of its namespace);
 * - an entry map that came out equal to the previous one.
 * The diff (diff.ts) skips reused maps, so a change costs in proportion to
 * what it affects. Ids stay stable: identities and rules keep their ids
 * while their label set / rule exists, and an endpoint's revision is bumped
 * only when its flags or entries change.
 */
import type { Cluster } from './cluster.js';
import { assignIdentities, identityUniverse, sameFacts, samePolicies, type IdentityAssignment, type PolicyFacts } from './compile-identities.js';
import { compileEndpointDirection } from './compile-endpoint.js';
import { endpointDirection, policyClassMask, type DatapathState } from './datapath-state.js';
import { PolicyError } from './errors.js';
import { EMPTY_IDENTITY_TABLE, type AllocationOptions, type IdentityTable, type LabelSet } from './identity.js';
import { isolatingPolicies } from './model.js';
import type { ClusterPod } from './objects.js';
import { policyId, type Direction, type Policy } from './policy-types.js';
import { allocateRuleIds, EMPTY_RULE_TABLE, type RuleTable } from './rule-ids.js';
import { SluiceEndpointFlags, type EndpointEntry } from '../datapath/generated/abi.js';

export const DIRECTIONS: readonly Direction[] = ['ingress', 'egress'];
const ISOLATED_FLAG: Readonly<Record<Direction, number>> = {
  ingress: SluiceEndpointFlags.INGRESS_ISOLATED,
  egress: SluiceEndpointFlags.EGRESS_ISOLATED,
};
const MAX_ENDPOINT_ID = 0xffffffff;

export interface CompileInput {
  readonly cluster: Cluster;
  /** Pods local to this node ("namespace/name") → endpoint id; only they get endpoint and policy entries. */
  readonly endpoints: ReadonlyMap<string, number>;
}

export interface CompiledEndpoint {
  readonly endpointId: number;
  readonly pod: ClusterPod;
  readonly entry: EndpointEntry;
  /** Policies that isolate the pod, per direction (sorted ids); empty = not isolated. */
  readonly isolatedBy: Readonly<Record<Direction, readonly string[]>>;
}

export interface CompileStats {
  readonly identities: number;
  readonly podIdentities: number;
  readonly cidrIdentities: number;
  readonly ipcacheEntries: number;
  readonly endpoints: number;
  readonly policyEntries: number;
  /** The identity assignment was taken over from the previous compile. */
  readonly identitiesReused: boolean;
  /** Endpoint-directions whose entries were recomputed / taken over. */
  readonly recomputed: number;
  readonly reused: number;
}

/** What a compile keeps for the next one; internal to compile.ts. */
interface CompileMemo {
  readonly selectorCache: Map<string, readonly number[]>;
  readonly termKeys: WeakMap<object, string>;
  readonly isolating: ReadonlyMap<number, readonly Policy[]>;
  /** A small number per policy object, for keys of shared entry maps. */
  readonly policyTags: PolicyTags;
  /** Each policy's ipBlock terms and egress port names. */
  readonly policyFacts: WeakMap<Policy, PolicyFacts>;
  /** The port-class mask of each entry map (shared maps: computed once). */
  readonly classMasks: WeakMap<ReadonlyMap<number, number>, number>;
  /** The endpoints input and what checkEndpoints made of it. */
  readonly endpointsInput: ReadonlyMap<string, number>;
  readonly local: readonly (readonly [ClusterPod, number])[];
  readonly localByNamespace: ReadonlyMap<string, readonly (readonly [ClusterPod, number])[]>;
}

/** Numbers for policy objects, handed out in order. */
class PolicyTags {
  private readonly tags = new WeakMap<Policy, number>();
  private next = 1;

  of(p: Policy): number {
    let t = this.tags.get(p);
    if (t === undefined) this.tags.set(p, (t = this.next++));
    return t;
  }
}

export interface CompiledPolicy {
  readonly cluster: Cluster;
  readonly identities: IdentityAssignment;
  readonly rules: RuleTable;
  /** By endpoint id. */
  readonly endpoints: ReadonlyMap<number, CompiledEndpoint>;
  readonly datapath: DatapathState;
  readonly stats: CompileStats;
  readonly memo: CompileMemo;
}

/**
 * Ids to keep when there is no previous compile in memory (an agent or CLI
 * restoring what it applied before): identity and rule tables and the last
 * revision of each endpoint.
 */
export interface CompileSeed {
  /** Only ids and keys matter (identity.ts restoreIdentityTable rebuilds one from stored keys). */
  readonly identityTable?: IdentityTable<LabelSet>;
  readonly ruleTable?: RuleTable;
  readonly revisions?: ReadonlyMap<number, number>;
  /** What the maps hold now (read back): revisions are bumped only where it differs. */
  readonly datapath?: DatapathState;
}

/**
 * Compiles `input`. Throws PolicyError when an endpoint names an unknown pod
 * or a pod without an IPv4 address, or endpoint ids are invalid or repeated,
 * or ids run out.
 */
export function compilePolicy(input: CompileInput, previous?: CompiledPolicy | CompileSeed, options: AllocationOptions = {}): CompiledPolicy {
  const { cluster } = input;
  const prev = previous !== undefined && 'memo' in previous ? previous : undefined;
  const seed: CompileSeed = prev === undefined ? (previous ?? {}) : {};
  const samePods = prev !== undefined && sameElements(prev.cluster.pods, cluster.pods);
  const local = samePods && prev.memo.endpointsInput === input.endpoints ? prev.memo.local : checkEndpoints(input);

  const policyFacts = prev?.memo.policyFacts ?? new WeakMap<Policy, PolicyFacts>();
  const universe =
    prev !== undefined && sameFacts(prev.cluster.policies, cluster.policies, policyFacts) ? prev.identities.universe : identityUniverse(cluster.policies, policyFacts);
  const identitiesReused =
    prev !== undefined && samePods && prev.identities.universe.fingerprint === universe.fingerprint && sameNamespaces(prev.cluster, cluster);
  const identities = identitiesReused
    ? prev.identities
    : assignIdentities(cluster, universe, prev?.identities.table ?? seed.identityTable ?? EMPTY_IDENTITY_TABLE, options);
  // Same policy ids with the same numbers of rules: the same rule keys, so the same table.
  const rules =
    prev !== undefined && sameRuleShapes(prev.cluster.policies, cluster.policies)
      ? prev.rules
      : allocateRuleIds(prev?.rules ?? seed.ruleTable ?? EMPTY_RULE_TABLE, cluster.policies);
  // Incremental: the same identities and endpoints, so only the endpoints of
  // namespaces whose policies changed need a look; the rest is taken over by
  // copying the previous maps (native copies, not 20,000 JS-level sets).
  const incremental = identitiesReused && local === prev.memo.local;
  const memo: CompileMemo = {
    selectorCache: identitiesReused ? prev.memo.selectorCache : new Map<string, readonly number[]>(),
    termKeys: prev?.memo.termKeys ?? new WeakMap(),
    isolating: incremental ? new Map(prev.memo.isolating) : new Map<number, readonly Policy[]>(),
    policyTags: prev?.memo.policyTags ?? new PolicyTags(),
    policyFacts,
    classMasks: prev?.memo.classMasks ?? new WeakMap(),
    endpointsInput: input.endpoints,
    local,
    localByNamespace: local === prev?.memo.local ? prev.memo.localByNamespace : byNamespace(local),
  };
  const ctx = { cluster, identities, rules, selectorCache: memo.selectorCache, termKeys: memo.termKeys };
  const isolatingMemo = memo.isolating as Map<number, readonly Policy[]>;

  const namespaceUnchanged = new Map<string, boolean>();
  const policiesUnchanged = (ns: string): boolean => {
    let same = namespaceUnchanged.get(ns);
    if (same === undefined) {
      same = prev !== undefined && sameElements(prev.cluster.policiesByNamespace.get(ns) ?? [], cluster.policiesByNamespace.get(ns) ?? []);
      namespaceUnchanged.set(ns, same);
    }
    return same;
  };

  const endpoints = incremental ? new Map(prev.endpoints) : new Map<number, CompiledEndpoint>();
  const policy = incremental ? new Map(prev.datapath.policy) : new Map<number, ReadonlyMap<number, number>>();
  const entryMap = incremental ? new Map(prev.datapath.endpoints) : new Map<number, EndpointEntry>();
  let policyEntries = incremental ? prev.stats.policyEntries : 0;
  let entriesChanged = !incremental;
  let recomputed = 0;
  let reused = 0;
  const shared = new Map<string, ReadonlyMap<number, number>>();
  const tagOf = (p: Policy): number => memo.policyTags.of(p);
  const classesOf = (entries: ReadonlyMap<number, number>): number => {
    let mask = memo.classMasks.get(entries);
    if (mask === undefined) memo.classMasks.set(entries, (mask = policyClassMask(entries)));
    return mask;
  };
  // What the maps hold now, for change detection: the previous compile's, or a seed's (read back from the maps).
  const baseline = prev?.datapath ?? seed.datapath;
  let todo: readonly (readonly [ClusterPod, number])[] = local;
  if (incremental) {
    const namespaces = new Set([...prev.cluster.policiesByNamespace.keys(), ...cluster.policiesByNamespace.keys()]);
    todo = [...namespaces].filter((ns) => !policiesUnchanged(ns)).flatMap((ns) => prev.memo.localByNamespace.get(ns) ?? []);
    reused = 2 * (local.length - todo.length);
  }
  for (const [pod, endpointId] of todo) {
    const before = prev?.endpoints.get(endpointId);
    const samePod = before !== undefined && before.pod === pod;
    if (!incremental && identitiesReused && samePod && policiesUnchanged(pod.namespace)) {
      // Nothing this endpoint depends on changed: take it over whole.
      endpoints.set(endpointId, before);
      entryMap.set(endpointId, before.entry);
      for (const direction of DIRECTIONS) {
        const epdir = endpointDirection(endpointId, direction);
        const isolating = prev.memo.isolating.get(epdir);
        if (isolating !== undefined) isolatingMemo.set(epdir, isolating);
        const entries = prev.datapath.policy.get(epdir);
        if (entries !== undefined) {
          policy.set(epdir, entries);
          policyEntries += entries.size;
        }
        reused++;
      }
      continue;
    }
    const baseEntry = baseline?.endpoints.get(endpointId);
    let flags = 0;
    const classes: Record<Direction, number> = { ingress: 0, egress: 0 };
    let changed = baseEntry === undefined;
    const isolatedBy: Record<Direction, readonly string[]> = { ingress: [], egress: [] };
    for (const direction of DIRECTIONS) {
      const epdir = endpointDirection(endpointId, direction);
      const oldIsolating = prev?.memo.isolating.get(epdir);
      const isolating =
        samePod && oldIsolating !== undefined && policiesUnchanged(pod.namespace) ? oldIsolating : isolatingPolicies(cluster, pod, direction);
      isolatingMemo.set(epdir, isolating);
      const oldEntries = baseline?.policy.get(epdir);
      if (incremental) {
        policyEntries -= policy.get(epdir)?.size ?? 0;
        policy.delete(epdir);
      }
      if (isolating.length === 0) {
        if (oldEntries !== undefined) changed = true;
        continue;
      }
      flags |= ISOLATED_FLAG[direction];
      isolatedBy[direction] = isolating.map(policyId);
      let entries: ReadonlyMap<number, number>;
      if (identitiesReused && samePod && oldEntries !== undefined && oldIsolating !== undefined && sameElements(oldIsolating, isolating)) {
        entries = oldEntries;
        reused++;
      } else {
        // Pods isolated by the same policies (and, for ingress, with the same
        // container ports) have the same entries: compute them once, share the map.
        const key = `${direction}|${isolating.map(tagOf).join(',')}|${direction === 'ingress' ? portsSignature(pod) : ''}`;
        let fresh = shared.get(key);
        if (fresh === undefined) {
          fresh = compileEndpointDirection(ctx, pod, direction, isolating);
          shared.set(key, fresh);
          recomputed++;
        }
        entries = oldEntries !== undefined && sameEntries(oldEntries, fresh) ? oldEntries : fresh;
      }
      // No map for an isolated direction without entries (default deny): "none" either way.
      if (entries.size === 0 ? oldEntries !== undefined : entries !== oldEntries) changed = true;
      if (entries.size > 0) {
        policy.set(epdir, entries);
        classes[direction] = classesOf(entries);
      }
      policyEntries += entries.size;
    }
    // Masks follow the entries, so they differ only when the entries do, or when read-back maps disagree.
    if (baseEntry !== undefined && (baseEntry.flags !== flags || baseEntry.ingressPolicyClasses !== classes.ingress ||
      baseEntry.egressPolicyClasses !== classes.egress)) {
      changed = true;
    }
    const oldRevision = baseEntry?.policyRevision ?? seed.revisions?.get(endpointId) ?? 0;
    const revision = changed ? (oldRevision >= MAX_ENDPOINT_ID ? 1 : oldRevision + 1) : oldRevision;
    const entry: EndpointEntry = baseEntry !== undefined && !changed
      ? baseEntry
      : { flags, policyRevision: revision, ingressPolicyClasses: classes.ingress, egressPolicyClasses: classes.egress };
    if (entry !== baseEntry) entriesChanged = true;
    endpoints.set(endpointId, { endpointId, pod, entry, isolatedBy });
    entryMap.set(endpointId, entry);
  }
  // Endpoints that went away (full compile only: incremental means the same endpoints).
  if (!incremental && prev !== undefined && prev.endpoints.size !== local.length) entriesChanged = true;

  let podIdentities = 0;
  if (identitiesReused) podIdentities = prev.stats.podIdentities;
  else for (const s of identities.table.byId.values()) if (s.kind === 'pod') podIdentities++;
  const datapath: DatapathState = {
    ipcache: identities.ipcache,
    endpoints: !entriesChanged && prev !== undefined ? prev.datapath.endpoints : entryMap,
    policy,
  };
  return {
    cluster,
    identities,
    rules,
    endpoints,
    datapath,
    memo,
    stats: {
      identities: identities.table.byId.size,
      podIdentities,
      cidrIdentities: identities.table.byId.size - podIdentities,
      ipcacheEntries: identities.ipcache.size,
      endpoints: endpoints.size,
      policyEntries,
      identitiesReused,
      recomputed,
      reused,
    },
  };
}

/** The seed that keeps the ids of a compile (for storing between processes). */
export function seedOf(compiled: CompiledPolicy): CompileSeed {
  return {
    identityTable: compiled.identities.table,
    ruleTable: compiled.rules,
    revisions: new Map([...compiled.endpoints].map(([id, e]) => [id, e.entry.policyRevision])),
  };
}

function byNamespace(local: readonly (readonly [ClusterPod, number])[]): Map<string, (readonly [ClusterPod, number])[]> {
  const out = new Map<string, (readonly [ClusterPod, number])[]>();
  for (const e of local) {
    const list = out.get(e[0].namespace);
    if (list === undefined) out.set(e[0].namespace, [e]);
    else list.push(e);
  }
  return out;
}

/** Policies in the same order with the same ids and rule counts. */
function sameRuleShapes(a: readonly Policy[], b: readonly Policy[]): boolean {
  return samePolicies(a, b, (x, y) =>
    x.namespace === y.namespace && x.name === y.name && x.ingress.length === y.ingress.length && x.egress.length === y.egress.length);
}

function checkEndpoints(input: CompileInput): [ClusterPod, number][] {
  const out: [ClusterPod, number][] = [];
  const seen = new Map<number, string>();
  for (const [podRef, endpointId] of input.endpoints) {
    const pod = input.cluster.podsById.get(podRef);
    if (pod === undefined) throw new PolicyError('not-found', `endpoint ${endpointId}: no pod "${podRef}" in the cluster`, 'endpoints');
    if (pod.ip === undefined) {
      throw new PolicyError('required', `endpoint ${endpointId}: pod ${podRef} has no IPv4 address (status.podIP)`, 'endpoints');
    }
    if (!Number.isInteger(endpointId) || endpointId < 1 || endpointId > MAX_ENDPOINT_ID) {
      throw new PolicyError('invalid', `pod ${podRef}: endpoint id must be 1..${MAX_ENDPOINT_ID}, got ${endpointId}`, 'endpoints');
    }
    const other = seen.get(endpointId);
    if (other !== undefined) throw new PolicyError('duplicate', `endpoint id ${endpointId} is given to ${other} and ${podRef}`, 'endpoints');
    seen.set(endpointId, podRef);
    out.push([pod, endpointId]);
  }
  return out;
}

function portsSignature(pod: ClusterPod): string {
  return pod.ports.map((p) => `${p.name ?? ''}/${p.protocol}/${p.port}`).join(';');
}

function sameElements<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameNamespaces(a: Cluster, b: Cluster): boolean {
  if (a.namespaces.size !== b.namespaces.size) return false;
  for (const [name, ns] of b.namespaces) if (a.namespaces.get(name) !== ns) return false;
  return true;
}

function sameEntries(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of b) if (a.get(k) !== v) return false;
  return true;
}
