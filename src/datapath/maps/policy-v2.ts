/**
 * sl_policy_v2: the NetworkPolicy LPM trie (bpf/lib/policy.h), one for every
 * endpoint: (endpoint, remote identity, direction[, protocol[, port prefix]])
 * → ALLOW and the rule's id. Keys are built here so that nobody does the
 * prefix arithmetic by hand: a rule without ports is prefixlen 72, a
 * protocol without ports 80, a port 96, and a port range the few prefixes
 * between 80 and 96 that cover exactly its ports (portRangeToPrefixes).
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import {
  policyEntryCodec, policyLpmKeyCodec, SluicePolicyPrefix, sluiceDirectionName, sluicePolicyActionName,
  type PolicyEntry, type PolicyLpmKey,
} from '../generated/abi.js';
import { checkLayout, type MapLayout } from './layout.js';

export const POLICY_V2_LAYOUT: MapLayout = {
  name: 'sl_policy_v2',
  type: BpfMapType.LPM_TRIE,
  keySize: policyLpmKeyCodec.size,
  valueSize: policyEntryCodec.size,
};

export type PolicyV2Map = TypedMap<PolicyLpmKey, PolicyEntry>;

/** Types raw after checking it is the policy trie of this layout. */
export function openPolicyV2(raw: RawMap): PolicyV2Map {
  checkLayout(raw.info, POLICY_V2_LAYOUT);
  return typedMap(raw, policyLpmKeyCodec, policyEntryCodec);
}

/** The IP protocols a rule's ports apply to (NetworkPolicy: TCP, UDP, SCTP). */
export const PORT_PROTOCOLS: Readonly<Record<'TCP' | 'UDP' | 'SCTP', number>> = { TCP: 6, UDP: 17, SCTP: 132 };
const PROTOCOL_NAMES = new Map<number, string>(Object.entries(PORT_PROTOCOLS).map(([n, p]) => [p, n]));

// Port prefixes are pure arithmetic shared with the compiler: one definition.
import { portPrefixRange, portRangeToPrefixes, type PortPrefix } from '../../policy/ports.js';
export { portPrefixRange, portRangeToPrefixes, type PortPrefix };

const PORT_BITS = 16;

/** What one trie entry matches. */
export interface PolicyMatch {
  readonly endpointId: number;
  /** 0 = any peer (a rule whose from/to is omitted). */
  readonly remoteIdentity: number;
  readonly direction: number; // SluiceDirection
  /** An IP protocol of PORT_PROTOCOLS; absent = every protocol and port (a rule without ports). */
  readonly protocol?: number;
  /** Absent = every port of the protocol. */
  readonly port?: PortPrefix;
}

/**
 * The LPM key of m. Throws on what the datapath could never match: a port
 * without a protocol, a protocol without ports (ICMP is only matched by rules
 * without ports), a prefix with bits set past its length.
 */
export function policyLpmKey(m: PolicyMatch): PolicyLpmKey {
  const base = { endpointId: m.endpointId, remoteIdentity: m.remoteIdentity, direction: m.direction };
  if (m.protocol === undefined) {
    if (m.port !== undefined) throw new RangeError(`policy key: a port (${m.port.port}/${m.port.bits}) needs a protocol`);
    return { prefixlen: SluicePolicyPrefix.PEER, ...base, protocol: 0, dport: 0 };
  }
  if (!PROTOCOL_NAMES.has(m.protocol)) {
    throw new RangeError(`policy key: protocol ${m.protocol} has no ports; want one of ${[...PROTOCOL_NAMES.values()].join(', ')} or none`);
  }
  const port = m.port ?? { port: 0, bits: 0 };
  if (!Number.isInteger(port.bits) || port.bits < 0 || port.bits > PORT_BITS || !isPort(port.port) ||
    port.port % 2 ** (PORT_BITS - port.bits) !== 0) {
    throw new RangeError(`policy key: port prefix ${port.port}/${port.bits} has bits set past its length`);
  }
  return { prefixlen: SluicePolicyPrefix.PROTO + port.bits, ...base, protocol: m.protocol, dport: port.port };
}

/** The keys of a rule allowing protocol ports start..end (a single port: start === end). */
export function policyLpmKeysForPorts(base: Omit<PolicyMatch, 'protocol' | 'port'>, protocol: number, start: number,
  end: number): PolicyLpmKey[] {
  return portRangeToPrefixes(start, end).map((port) => policyLpmKey({ ...base, protocol, port }));
}

export interface PolicyV2Row {
  readonly endpointId: number;
  readonly direction: string; // INGRESS | EGRESS
  /** 0 = any peer. */
  readonly remoteIdentity: number;
  /** TCP | UDP | SCTP, "*" for every protocol, or the number of one this module does not name. */
  readonly protocol: string;
  /** "80", "8000-8063", or "*" for every port. */
  readonly ports: string;
  readonly action: string; // ALLOW | DENY | UNKNOWN(n)
  readonly ruleId: number;
}

/** Every entry with names, ordered by endpoint, direction, identity, protocol, port, prefix. */
export function dumpPolicyV2(map: PolicyV2Map): PolicyV2Row[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.endpointId - b.endpointId || a.direction - b.direction || a.remoteIdentity - b.remoteIdentity ||
      a.protocol - b.protocol || a.dport - b.dport || a.prefixlen - b.prefixlen)
    .map(([key, entry]) => ({
      endpointId: key.endpointId,
      direction: sluiceDirectionName(key.direction),
      remoteIdentity: key.remoteIdentity,
      protocol: key.prefixlen < SluicePolicyPrefix.PROTO ? '*' : (PROTOCOL_NAMES.get(key.protocol) ?? String(key.protocol)),
      ports: formatPorts(key),
      action: sluicePolicyActionName(entry.action),
      ruleId: entry.ruleId,
    }));
}

function formatPorts(key: PolicyLpmKey): string {
  const bits = key.prefixlen - SluicePolicyPrefix.PROTO;
  if (bits <= 0) return '*';
  const { from: start, to: end } = portPrefixRange({ port: key.dport, bits: Math.min(bits, PORT_BITS) });
  return start === end ? String(start) : `${start}-${end}`;
}

function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}
