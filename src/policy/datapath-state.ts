/**
 * The desired contents of the policy-related datapath maps, in a compact
 * form the compiler, the diff and the apply plan share:
 *
 * - ipcache (sl_iphost_v1 + sl_ipcache_v1): IPv4 prefix → identity, keyed by
 *   `addr · 64 + prefixlen` (a safe integer; addr in natural order);
 * - endpoints (sl_endpoints_v1): endpoint id → isolation flags + revision;
 * - policy (sl_policy_v2): per endpoint and direction (`endpointId · 2 +
 *   direction`), a map from a packed key to the rule id of the entry.
 *
 * Packed policy key (51 bits, exact in a JS number):
 *   remote identity (32 bits) · 2^19 + protocol slot (2 bits) · 2^17 + port node (17 bits)
 * where slot 0 = no protocol (prefix 72: every protocol and port, ICMP too,
 * node 0), slots 1..3 = TCP, UDP, SCTP, and the port node of a prefix of
 * `bits` bits is `2^bits | port >> (16 − bits)` (1 = every port of the
 * protocol, prefix 80; 2^16 | port = exactly that port, prefix 96). Strings
 * would cost several times the memory at millions of entries.
 *
 * Conversion to and from the generated ABI structs lives here too, so that
 * nobody else does LPM prefix arithmetic.
 */
import {
  SluiceDirection, SluicePolicyAction, SluicePolicyPrefix, type EndpointEntry, type IpcacheEntry, type IpcacheKey,
  type PolicyEntry, type PolicyLpmKey,
} from '../datapath/generated/abi.js';
import type { Direction, Protocol } from './policy-types.js';
import { IP_PROTOCOL, type PortPrefix } from './ports.js';

export interface DatapathState {
  readonly ipcache: ReadonlyMap<number, number>;
  readonly endpoints: ReadonlyMap<number, EndpointEntry>;
  readonly policy: ReadonlyMap<number, ReadonlyMap<number, number>>;
}

export const EMPTY_DATAPATH_STATE: DatapathState = { ipcache: new Map(), endpoints: new Map(), policy: new Map() };

// ---- ipcache -------------------------------------------------------------------

export function ipcachePrefix(addr: number, prefixlen: number): number {
  return addr * 64 + prefixlen;
}

export function ipcacheKeyOf(prefix: number): IpcacheKey {
  return { prefixlen: prefix % 64, addr: Math.floor(prefix / 64) };
}

export function ipcachePrefixOf(key: IpcacheKey): number {
  return ipcachePrefix(key.addr, key.prefixlen);
}

export function ipcacheEntryOf(identity: number): IpcacheEntry {
  return { identity, flags: 0 };
}

/** "10.0.0.0/8". */
export function formatIpcachePrefix(prefix: number): string {
  const { addr, prefixlen } = ipcacheKeyOf(prefix);
  return `${[24, 16, 8, 0].map((s) => (addr >>> s) & 255).join('.')}/${prefixlen}`;
}

// ---- policy ----------------------------------------------------------------------

const DIRECTION_NUMBER: Readonly<Record<Direction, number>> = { ingress: SluiceDirection.INGRESS, egress: SluiceDirection.EGRESS };
const PROTOCOL_SLOT: Readonly<Record<Protocol, number>> = { TCP: 1, UDP: 2, SCTP: 3 };
const SLOT_PROTOCOL: readonly (Protocol | undefined)[] = [undefined, 'TCP', 'UDP', 'SCTP'];
const NODE_BITS = 17;
const SLOT_BITS = 2;
const ID_SHIFT = 2 ** (NODE_BITS + SLOT_BITS);

export function directionNumber(d: Direction): number {
  return DIRECTION_NUMBER[d];
}

export function endpointDirection(endpointId: number, direction: Direction): number {
  return endpointId * 2 + DIRECTION_NUMBER[direction];
}

export function splitEndpointDirection(epdir: number): { readonly endpointId: number; readonly direction: Direction } {
  return { endpointId: Math.floor(epdir / 2), direction: epdir % 2 === SluiceDirection.EGRESS ? 'egress' : 'ingress' };
}

/** What a policy entry matches besides the endpoint and direction. */
export type PortMatch =
  /** prefix 72: every protocol and port. */
  | { readonly kind: 'any' }
  /** prefix 80 + bits. */
  | { readonly kind: 'port'; readonly protocol: Protocol; readonly prefix: PortPrefix };

export function packPolicyKey(remoteIdentity: number, match: PortMatch): number {
  if (match.kind === 'any') return remoteIdentity * ID_SHIFT;
  const { port, bits } = match.prefix;
  const node = 2 ** bits + Math.floor(port / 2 ** (16 - bits));
  return remoteIdentity * ID_SHIFT + PROTOCOL_SLOT[match.protocol] * 2 ** NODE_BITS + node;
}

export function unpackPolicyKey(packed: number): { readonly remoteIdentity: number; readonly match: PortMatch } {
  const remoteIdentity = Math.floor(packed / ID_SHIFT);
  const rest = packed % ID_SHIFT;
  const protocol = SLOT_PROTOCOL[Math.floor(rest / 2 ** NODE_BITS)];
  const node = rest % 2 ** NODE_BITS;
  if (protocol === undefined) return { remoteIdentity, match: { kind: 'any' } };
  const bits = Math.floor(Math.log2(node));
  const port = (node - 2 ** bits) * 2 ** (16 - bits);
  return { remoteIdentity, match: { kind: 'port', protocol, prefix: { port, bits } } };
}

export function policyLpmKeyOf(epdir: number, packed: number): PolicyLpmKey {
  const { endpointId, direction } = splitEndpointDirection(epdir);
  const { remoteIdentity, match } = unpackPolicyKey(packed);
  const base = { endpointId, remoteIdentity, direction: DIRECTION_NUMBER[direction] };
  if (match.kind === 'any') return { prefixlen: SluicePolicyPrefix.PEER, ...base, protocol: 0, dport: 0 };
  return {
    prefixlen: SluicePolicyPrefix.PROTO + match.prefix.bits,
    ...base,
    protocol: IP_PROTOCOL[match.protocol],
    dport: match.prefix.port,
  };
}

export function policyEntryOf(ruleId: number): PolicyEntry {
  return { action: SluicePolicyAction.ALLOW, ruleId };
}

/**
 * The inverse of policyLpmKeyOf for a key read back from the map; undefined
 * for a key this compiler never writes (another protocol, bits set beyond
 * the prefix, a prefix length out of range), which a sync then removes.
 */
export function packedFromLpmKey(key: PolicyLpmKey): { readonly epdir: number; readonly packed: number } | undefined {
  const direction = key.direction === SluiceDirection.INGRESS ? 'ingress' : key.direction === SluiceDirection.EGRESS ? 'egress' : undefined;
  if (direction === undefined) return undefined;
  const epdir = endpointDirection(key.endpointId, direction);
  if (key.prefixlen === SluicePolicyPrefix.PEER) {
    return key.protocol === 0 && key.dport === 0 ? { epdir, packed: packPolicyKey(key.remoteIdentity, { kind: 'any' }) } : undefined;
  }
  const bits = key.prefixlen - SluicePolicyPrefix.PROTO;
  const protocol = (Object.keys(PROTOCOL_SLOT) as Protocol[]).find((p) => IP_PROTOCOL[p] === key.protocol);
  if (protocol === undefined || bits < 0 || bits > 16) return undefined;
  if (key.dport % 2 ** (16 - bits) !== 0) return undefined;
  return { epdir, packed: packPolicyKey(key.remoteIdentity, { kind: 'port', protocol, prefix: { port: key.dport, bits } }) };
}

/** Entries in one map, counted. */
export function countPolicyEntries(state: DatapathState): number {
  let n = 0;
  for (const m of state.policy.values()) n += m.size;
  return n;
}

export interface MapContents {
  readonly ipcache: Iterable<readonly [IpcacheKey, IpcacheEntry]>;
  readonly endpoints: Iterable<readonly [number, EndpointEntry]>;
  readonly policy: Iterable<readonly [PolicyLpmKey, PolicyEntry]>;
}

export interface ReadBackState {
  readonly state: DatapathState;
  /** Policy keys this compiler never writes (wrong prefix arithmetic, unknown protocol): a sync deletes them. */
  readonly foreignPolicyKeys: readonly PolicyLpmKey[];
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
  for (const [id, e] of contents.endpoints) endpoints.set(id, { flags: e.flags, policyRevision: e.policyRevision });
  const policy = new Map<number, Map<number, number>>();
  const foreignPolicyKeys: PolicyLpmKey[] = [];
  for (const [k, v] of contents.policy) {
    const slot = packedFromLpmKey(k);
    if (slot === undefined) {
      foreignPolicyKeys.push(k);
      continue;
    }
    if (v.action !== SluicePolicyAction.ALLOW) continue;
    let m = policy.get(slot.epdir);
    if (m === undefined) policy.set(slot.epdir, (m = new Map<number, number>()));
    m.set(slot.packed, v.ruleId);
  }
  return { state: { ipcache, endpoints, policy }, foreignPolicyKeys };
}
