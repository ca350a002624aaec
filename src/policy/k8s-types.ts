/**
 * The Kubernetes objects the policy engine consumes, typed as narrowly as the
 * engine needs them. Field names and shapes follow the API's JSON (camelCase),
 * so @kubernetes/client-node's V1Namespace, V1Pod and V1NetworkPolicy are
 * assignable to these types and the agent can hand its informer caches over
 * unchanged. Everything is readonly: the engine never mutates its input.
 *
 * `null` is accepted wherever the API allows a field to be absent, because a
 * YAML manifest spells "absent" as `from:` (null) as often as by leaving the
 * key out; the Go API server decodes both to nil and so do we.
 */

/** IntOrString: a port number or an IANA service name (named port). */
export type IntOrString = number | string;

export interface ObjectMeta {
  readonly name?: string | null;
  readonly namespace?: string | null;
  readonly labels?: Readonly<Record<string, string>> | null;
}

// ---- core/v1 ---------------------------------------------------------------

export interface Namespace {
  readonly apiVersion?: string | null;
  readonly kind?: string | null;
  readonly metadata?: ObjectMeta | null;
}

export interface ContainerPort {
  readonly name?: string | null;
  readonly containerPort: number;
  /** TCP (default), UDP or SCTP. */
  readonly protocol?: string | null;
}

export interface Container {
  readonly name: string;
  readonly ports?: readonly ContainerPort[] | null;
}

export interface PodSpec {
  readonly containers: readonly Container[];
  /** Pods on the host network are not endpoints of the pod network. */
  readonly hostNetwork?: boolean | null;
}

export interface PodIP {
  readonly ip?: string | null;
}

export interface PodStatus {
  /** Pending, Running, Succeeded, Failed, Unknown. */
  readonly phase?: string | null;
  readonly podIP?: string | null;
  /** Dual-stack clusters list one address per family here. */
  readonly podIPs?: readonly PodIP[] | null;
}

export interface Pod {
  readonly apiVersion?: string | null;
  readonly kind?: string | null;
  readonly metadata?: ObjectMeta | null;
  readonly spec?: PodSpec | null;
  readonly status?: PodStatus | null;
}

// ---- meta/v1 LabelSelector ---------------------------------------------------

export interface LabelSelectorRequirement {
  readonly key: string;
  /** In, NotIn, Exists or DoesNotExist. */
  readonly operator: string;
  readonly values?: readonly string[] | null;
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>> | null;
  readonly matchExpressions?: readonly LabelSelectorRequirement[] | null;
}

// ---- networking.k8s.io/v1 NetworkPolicy ---------------------------------------

export interface IPBlock {
  readonly cidr: string;
  readonly except?: readonly string[] | null;
}

export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector | null;
  readonly namespaceSelector?: LabelSelector | null;
  readonly ipBlock?: IPBlock | null;
}

export interface NetworkPolicyPort {
  /** TCP (default), UDP or SCTP. */
  readonly protocol?: string | null;
  readonly port?: IntOrString | null;
  readonly endPort?: number | null;
}

export interface NetworkPolicyIngressRule {
  readonly from?: readonly NetworkPolicyPeer[] | null;
  readonly ports?: readonly NetworkPolicyPort[] | null;
}

export interface NetworkPolicyEgressRule {
  readonly to?: readonly NetworkPolicyPeer[] | null;
  readonly ports?: readonly NetworkPolicyPort[] | null;
}

export interface NetworkPolicySpec {
  /** Required by the API; an absent selector decodes to {} (every pod of the namespace). */
  readonly podSelector?: LabelSelector | null;
  /** Ingress and/or Egress; defaulted from the rules when absent or empty. */
  readonly policyTypes?: readonly string[] | null;
  readonly ingress?: readonly NetworkPolicyIngressRule[] | null;
  readonly egress?: readonly NetworkPolicyEgressRule[] | null;
}

export interface NetworkPolicy {
  readonly apiVersion?: string | null;
  readonly kind?: string | null;
  readonly metadata?: ObjectMeta | null;
  readonly spec?: NetworkPolicySpec | null;
}
