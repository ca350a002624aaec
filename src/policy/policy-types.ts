/**
 * The engine's own form of a NetworkPolicy: validated, defaulted and
 * compiled (selectors canonical, CIDRs parsed, policyTypes resolved), so that
 * the evaluator and the map compiler never re-interpret API corner cases.
 * Produced only by validate.ts.
 */
import type { Cidr } from './cidr.js';
import { PORT_PROTOCOL_NAMES } from './protocols.js';
import type { Selector } from './selectors.js';

export const PROTOCOLS = PORT_PROTOCOL_NAMES;
/** Protocols a NetworkPolicy port can name. */
export type Protocol = (typeof PROTOCOLS)[number];

export type Direction = 'ingress' | 'egress';

/** Which namespaces a pod peer draws from. */
export type NamespaceScope =
  /** podSelector alone: the policy's own namespace. */
  | { readonly kind: 'policy-namespace'; readonly namespace: string }
  /** namespaceSelector, alone (podSelector = everything) or with a podSelector (AND). */
  | { readonly kind: 'selector'; readonly selector: Selector };

export type PeerMatcher =
  | { readonly kind: 'pods'; readonly namespaces: NamespaceScope; readonly pods: Selector }
  /** ipBlock: addresses in `cidr` but in none of `except`; matches pod IPs too. */
  | { readonly kind: 'ipBlock'; readonly cidr: Cidr; readonly except: readonly Cidr[] };

export type PortSpec =
  /** `protocol` with no `port`: every port of that protocol. */
  | { readonly kind: 'all' }
  /** A number (from = to) or a range port..endPort, inclusive. */
  | { readonly kind: 'range'; readonly from: number; readonly to: number }
  /** A container port name, resolved on each destination pod. */
  | { readonly kind: 'named'; readonly name: string };

export interface PortMatcher {
  readonly protocol: Protocol;
  readonly port: PortSpec;
}

export interface PolicyRule {
  readonly direction: Direction;
  /** Position in spec.ingress / spec.egress, for explanations: `ingress[1]`. */
  readonly index: number;
  /** `from`/`to` omitted (or empty, which the API cannot tell apart): every peer, pods and external addresses alike. */
  readonly peers: 'all' | readonly PeerMatcher[];
  /** `ports` omitted or empty: every port of every protocol (ICMP included). */
  readonly ports: 'all' | readonly PortMatcher[];
}

export interface Policy {
  readonly namespace: string;
  readonly name: string;
  /** Pods of `namespace` the policy applies to. */
  readonly podSelector: Selector;
  /** Effective policyTypes: explicit, or defaulted as the API server does. */
  readonly affects: { readonly ingress: boolean; readonly egress: boolean };
  /** Rules of a direction the policy does not affect are dropped (with a warning). */
  readonly ingress: readonly PolicyRule[];
  readonly egress: readonly PolicyRule[];
}

/** "namespace/name", the way explanations and the CLI name a policy. */
export function policyId(p: { readonly namespace: string; readonly name: string }): string {
  return `${p.namespace}/${p.name}`;
}
