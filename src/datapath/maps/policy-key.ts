/**
 * Policy keys of sl_policy_v3 (policy-v3.ts) and the port-class masks of
 * sl_endpoints_v2, built in this one place so that nobody does the class
 * arithmetic by hand: a rule without ports is the class NO_PORTS (protocol
 * and port 0), `protocol` alone class 0, a port class 16, and a port range
 * the aligned blocks that cover exactly its ports (portRangeToPrefixes),
 * each of its own prefix length. Pure: the compiler (src/policy) uses it
 * too.
 */
import {
  SluiceDirection, SluicePolicyAction, SluicePolicyClass, type EndpointEntry, type IpcacheEntry, type IpcacheKey, type PolicyEntry,
  type PolicyKey,
} from '../generated/abi.js';
import {
  DIRECTION_NUMBER, endpointDirection, ipcachePrefixOf, packPolicyKey, PROTOCOL_SLOT, splitEndpointDirection, unpackPolicyKey,
  type DatapathState,
} from '../../policy/datapath-state.js';
import type { Protocol } from '../../policy/policy-types.js';
import { portPrefixRange, portRangeToPrefixes, type PortPrefix } from '../../policy/ports.js';
import { carriesPorts, IP_PROTOCOL, ipProtocolName, PORT_PROTOCOL_NAMES } from '../../policy/protocols.js';

// Port prefixes are pure arithmetic shared with the compiler: one definition.
export { portPrefixRange, portRangeToPrefixes, type PortPrefix };

const PORT_BITS = SluicePolicyClass.PORT_FULL;

/** Every class: a mask that is correct for any entries (each packet may pay up to 2 × 18 lookups). */
export const ALL_POLICY_CLASSES = 2 ** SluicePolicyClass.CLASSES - 1;

/** What one entry matches. */
export interface PolicyMatch {
  readonly endpointId: number;
  /** 0 = any peer (a rule whose from/to is omitted). */
  readonly remoteIdentity: number;
  readonly direction: number; // SluiceDirection
  /** An IP protocol that carries ports (TCP, UDP, SCTP); absent = every protocol and port (a rule without ports). */
  readonly protocol?: number;
  /** Absent = every port of the protocol. */
  readonly port?: PortPrefix;
}

/**
 * The hash key of m. Throws on what the datapath could never match: a port
 * without a protocol, a protocol without ports (ICMP is only matched by rules
 * without ports), a prefix with bits set past its length.
 */
export function policyKey(m: PolicyMatch): PolicyKey {
  // Literal objects, not spreads: this runs once per entry of a full apply (millions), and spreads cost µs each.
  const { endpointId, remoteIdentity, direction } = m;
  if (m.protocol === undefined) {
    if (m.port !== undefined) throw new RangeError(`policy key: a port (${m.port.port}/${m.port.bits}) needs a protocol`);
    return { endpointId, remoteIdentity, direction, protocol: 0, portPrefixlen: SluicePolicyClass.NO_PORTS, dport: 0 };
  }
  if (!carriesPorts(m.protocol)) {
    throw new RangeError(`policy key: protocol ${m.protocol} has no ports; want one of ${PORT_PROTOCOL_NAMES.join(', ')} or none`);
  }
  const port = m.port ?? { port: 0, bits: 0 };
  if (!isPortPrefix(port)) throw new RangeError(`policy key: port prefix ${port.port}/${port.bits} has bits set past its length`);
  return { endpointId, remoteIdentity, direction, protocol: m.protocol, portPrefixlen: port.bits, dport: port.port };
}

/** The keys of a rule allowing protocol ports start..end (a single port: start === end). */
export function policyKeysForPorts(base: Omit<PolicyMatch, 'protocol' | 'port'>, protocol: number, start: number,
  end: number): PolicyKey[] {
  return portRangeToPrefixes(start, end).map((port) => policyKey({ ...base, protocol, port }));
}

/**
 * The inverse of policyKey for a key read back from the map; undefined for
 * a key policyKey never makes (another protocol, a NO_PORTS key with a
 * protocol or port, bits set past the prefix, a class out of range), which
 * the datapath may never match as intended: a sync deletes those.
 */
export function policyMatchOf(key: PolicyKey): PolicyMatch | undefined {
  const { endpointId, remoteIdentity, direction } = key;
  if (key.portPrefixlen === SluicePolicyClass.NO_PORTS) {
    return key.protocol === 0 && key.dport === 0 ? { endpointId, remoteIdentity, direction } : undefined;
  }
  const port = { port: key.dport, bits: key.portPrefixlen };
  if (!carriesPorts(key.protocol) || !isPortPrefix(port)) return undefined;
  return { endpointId, remoteIdentity, direction, protocol: key.protocol, port };
}

/** The mask bit of a key's port class (endpoint_entry.*_policy_classes). */
export function policyClassBit(key: PolicyKey): number {
  return 2 ** key.portPrefixlen;
}

/** The class mask covering `keys` (of one endpoint and direction). */
export function policyClassesOf(keys: Iterable<PolicyKey>): number {
  let mask = 0;
  for (const k of keys) mask |= policyClassBit(k);
  return mask >>> 0;
}

/** "16,0,*": the classes of a mask, most specific first ("*" = NO_PORTS), as the datapath tries them. */
export function formatPolicyClasses(mask: number): string {
  const out: string[] = [];
  for (let c = PORT_BITS; c >= 0; c--) if ((mask & (2 ** c)) !== 0) out.push(String(c));
  if ((mask & (2 ** SluicePolicyClass.NO_PORTS)) !== 0) out.push('*');
  const unknown = (mask & ~ALL_POLICY_CLASSES) >>> 0;
  if (unknown !== 0) out.push(`0x${unknown.toString(16)}?`);
  return out.join(',');
}

/** "80", "8000-8063", or "*" for every port (a class without port bits, or NO_PORTS). */
export function formatPolicyPorts(key: PolicyKey): string {
  const bits = key.portPrefixlen;
  if (bits <= 0 || bits > PORT_BITS) return '*';
  const { from: start, to: end } = portPrefixRange({ port: key.dport, bits });
  return start === end ? String(start) : `${start}-${end}`;
}

function isPortPrefix(p: PortPrefix): boolean {
  return Number.isInteger(p.bits) && p.bits >= 0 && p.bits <= PORT_BITS && Number.isInteger(p.port) && p.port >= 0 &&
    p.port <= 0xffff && p.port % 2 ** (PORT_BITS - p.bits) === 0;
}

// ---- the compiler's packed entries (src/policy/datapath-state.ts) as map keys -------------

/** The sl_policy_v3 key of a packed entry. */
export function policyKeyOf(epdir: number, packed: number): PolicyKey {
  const { endpointId, direction } = splitEndpointDirection(epdir);
  const { remoteIdentity, match } = unpackPolicyKey(packed);
  const dir = DIRECTION_NUMBER[direction];
  if (match.kind === 'any') return policyKey({ endpointId, remoteIdentity, direction: dir });
  return policyKey({ endpointId, remoteIdentity, direction: dir, protocol: IP_PROTOCOL[match.protocol], port: match.prefix });
}

export function policyEntryOf(ruleId: number): PolicyEntry {
  return { action: SluicePolicyAction.ALLOW, ruleId };
}

/**
 * The inverse of policyKeyOf for a key read back from the map; undefined
 * for a key this compiler never writes (another protocol, bits set beyond
 * the prefix, a class out of range), which a sync then removes.
 */
export function slotOfPolicyKey(key: PolicyKey): { readonly epdir: number; readonly packed: number } | undefined {
  const direction = key.direction === SluiceDirection.INGRESS ? 'ingress' : key.direction === SluiceDirection.EGRESS ? 'egress' : undefined;
  const m = policyMatchOf(key);
  if (direction === undefined || m === undefined) return undefined;
  const epdir = endpointDirection(key.endpointId, direction);
  if (m.protocol === undefined || m.port === undefined) return { epdir, packed: packPolicyKey(key.remoteIdentity, { kind: 'any' }) };
  const protocol = (Object.keys(PROTOCOL_SLOT) as Protocol[]).find((p) => IP_PROTOCOL[p] === m.protocol);
  if (protocol === undefined) return undefined;
  return { epdir, packed: packPolicyKey(key.remoteIdentity, { kind: 'port', protocol, prefix: m.port }) };
}

export interface MapContents {
  readonly ipcache: Iterable<readonly [IpcacheKey, IpcacheEntry]>;
  readonly endpoints: Iterable<readonly [number, EndpointEntry]>;
  readonly policy: Iterable<readonly [PolicyKey, PolicyEntry]>;
}

export interface ReadBackState {
  readonly state: DatapathState;
  /** Policy keys this compiler never writes (wrong prefix arithmetic, unknown protocol): a sync deletes them. */
  readonly foreignPolicyKeys: readonly PolicyKey[];
}

/**
 * Map contents as read back from the kernel, in the compiler's form, so that
 * a sync diffs the desired state against what is really there. An entry
 * whose action is not ALLOW is left out of the state: the diff then sees it
 * as missing and the apply overwrites it.
 */
export function stateFromMapContents(contents: MapContents): ReadBackState {
  const ipcache = new Map<number, number>();
  for (const [k, v] of contents.ipcache) ipcache.set(ipcachePrefixOf(k), v.identity);
  const endpoints = new Map<number, EndpointEntry>();
  for (const [id, e] of contents.endpoints) {
    endpoints.set(id, {
      flags: e.flags, policyRevision: e.policyRevision, ingressPolicyClasses: e.ingressPolicyClasses, egressPolicyClasses: e.egressPolicyClasses,
    });
  }
  const { policy, foreign: foreignPolicyKeys } = readPolicyEntries(contents.policy);
  return { state: { ipcache, endpoints, policy }, foreignPolicyKeys };
}

/** The policy map's entries in the compiler's form, and the keys it never writes (a round deletes those). */
export function readPolicyEntries(entries: Iterable<readonly [PolicyKey, PolicyEntry]>): {
  readonly policy: DatapathState['policy'];
  readonly foreign: readonly PolicyKey[];
} {
  const policy = new Map<number, Map<number, number>>();
  const foreign: PolicyKey[] = [];
  for (const [k, v] of entries) {
    const slot = slotOfPolicyKey(k);
    if (slot === undefined) {
      foreign.push(k);
      continue;
    }
    if (v.action !== SluicePolicyAction.ALLOW) continue;
    let m = policy.get(slot.epdir);
    if (m === undefined) policy.set(slot.epdir, (m = new Map<number, number>()));
    m.set(slot.packed, v.ruleId);
  }
  return { policy, foreign };
}

/** "endpoint 3 ingress identity 260 TCP port 8000-8063", for failure reports. */
export function describePolicyKey(k: PolicyKey): string {
  const dir = k.direction === SluiceDirection.INGRESS ? 'ingress' : 'egress';
  const peer = k.remoteIdentity === 0 ? 'any peer' : `identity ${k.remoteIdentity}`;
  const what = k.portPrefixlen === SluicePolicyClass.NO_PORTS
    ? 'every protocol and port'
    : `${ipProtocolName(k.protocol)} port ${formatPolicyPorts(k)}`;
  return `endpoint ${k.endpointId} ${dir} ${peer} ${what}`;
}
