/**
 * The applied view: what the numbers in the maps mean, for the compile
 * whose entries the maps hold now. Endpoint id → pod, identity → namespace,
 * labels and pods, rule id → policy, rule index and direction. Built once
 * per complete round of the policy group and published read-only (frozen
 * maps behind a small interface), so the flow observer, `policy explain`
 * and the CLI name what a datapath event carries without reaching into the
 * compiler. Pure.
 */
import type { CompiledPolicy } from '../policy/compile.js';
import type { RuleRef } from '../policy/model.js';
import type { Direction } from '../policy/policy-types.js';
import type { Workload } from '../policy/workload.js';

export interface AppliedEndpoint {
  readonly endpointId: number;
  readonly namespace: string;
  readonly pod: string;
  readonly identity?: number;
  readonly workload?: Workload;
}

export interface AppliedIdentity {
  readonly id: number;
  /** 'pod': a label set of pods; 'cidr': addresses outside the cluster's pods (ipBlock). */
  readonly kind: 'pod' | 'cidr';
  /** Pod identities: the namespace of its pods. */
  readonly namespace?: string;
  /** Pod identities: the pods' own labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** "namespace/name" of the pods that have it (all nodes), sorted. */
  readonly pods: readonly string[];
  /** ipBlock terms ("10.0.0.0/8 except 10.1.0.0/16") whose addresses carry it. */
  readonly terms: readonly string[];
}

export interface AppliedRule {
  readonly ruleId: number;
  /** "namespace/name" of the NetworkPolicy. */
  readonly policy: string;
  readonly direction: Direction;
  /** Index of the rule in the policy's ingress or egress list. */
  readonly index: number;
}

/** Read-only answers about what the maps hold now. */
export interface AppliedView {
  /** The compile revision this view describes (increments with every complete round that changed it). */
  readonly generation: number;
  endpoint(id: number): AppliedEndpoint | undefined;
  identity(id: number): AppliedIdentity | undefined;
  rule(id: number): AppliedRule | undefined;
  endpoints(): readonly AppliedEndpoint[];
  /** The pod (any node) whose IPv4 address this is ("10.9.0.1"), with its identity. */
  podAt(address: string): AppliedPod | undefined;
}

export interface AppliedPod {
  readonly namespace: string;
  readonly pod: string;
  readonly identity?: number;
  readonly workload?: Workload;
}

export const EMPTY_APPLIED_VIEW: AppliedView = {
  generation: 0,
  endpoint: () => undefined,
  identity: () => undefined,
  rule: () => undefined,
  endpoints: () => [],
  podAt: () => undefined,
};

/** The view of a compile; `generation` numbers successive views. */
export function appliedViewOf(compiled: CompiledPolicy, generation: number): AppliedView {
  const endpoints = new Map<number, AppliedEndpoint>();
  for (const [endpointId, ep] of compiled.endpoints) {
    const { pod } = ep;
    const identity = compiled.identities.podIdentity.get(pod.id);
    endpoints.set(endpointId, {
      endpointId, namespace: pod.namespace, pod: pod.name, ...(identity !== undefined ? { identity } : {}),
      ...(pod.workload !== undefined ? { workload: pod.workload } : {}),
    });
  }
  const podsOf = new Map<number, string[]>();
  for (const [podId, id] of compiled.identities.podIdentity) {
    const list = podsOf.get(id);
    if (list === undefined) podsOf.set(id, [podId]);
    else list.push(podId);
  }
  const identities = new Map<number, AppliedIdentity>();
  for (const [id, set] of compiled.identities.table.byId) {
    const pods = (podsOf.get(id) ?? []).sort();
    identities.set(id, set.kind === 'pod'
      ? { id, kind: 'pod', namespace: set.namespace, labels: set.podLabels, pods, terms: set.terms }
      : { id, kind: 'cidr', labels: {}, pods, terms: set.terms });
  }
  const rules = new Map<number, AppliedRule>();
  for (const [ruleId, ref] of compiled.rules.byId) rules.set(ruleId, appliedRule(ruleId, ref));
  const podAt = (address: string): AppliedPod | undefined => {
    const pod = compiled.cluster.podsByIp.get(address);
    if (pod === undefined) return undefined;
    const identity = compiled.identities.podIdentity.get(pod.id);
    return {
      namespace: pod.namespace, pod: pod.name, ...(identity !== undefined ? { identity } : {}), ...(pod.workload !== undefined ? { workload: pod.workload } : {}),
    };
  };
  const list = Object.freeze([...endpoints.values()].sort((a, b) => a.endpointId - b.endpointId));
  return Object.freeze({
    generation,
    endpoint: (id: number) => endpoints.get(id),
    identity: (id: number) => identities.get(id),
    rule: (id: number) => rules.get(id),
    endpoints: () => list,
    podAt,
  });
}

function appliedRule(ruleId: number, ref: RuleRef): AppliedRule {
  return Object.freeze({ ruleId, policy: ref.policy, direction: ref.direction, index: ref.index });
}
