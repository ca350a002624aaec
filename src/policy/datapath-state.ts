/**
 * The desired contents of the policy-related datapath maps, in a compact
 * form the compiler, the diff and the apply plan share:
 *
 * - ipcache (sl_iphost_v1 + sl_ipcache_v1): IPv4 prefix → identity, keyed by
 *   `addr · 64 + prefixlen` (a safe integer; addr in natural order);
 * - endpoints (sl_endpoints_v2): endpoint id → isolation flags, revision and
 *   per direction the mask of port classes its policy entries use (exactly
 *   those of the entries below: policyClassMask);
 * - policy (sl_policy_v3): per endpoint and direction (`endpointId · 2 +
 *   direction`), a map from a packed key to the rule id of the entry.
 *
 * Packed policy key (51 bits, exact in a JS number):
 *   remote identity (32 bits) · 2^19 + protocol slot (2 bits) · 2^17 + port node (17 bits)
 * where slot 0 = no protocol (class NO_PORTS: every protocol and port, ICMP
 * too, node 0), slots 1..3 = TCP, UDP, SCTP, and the port node of a prefix
 * of `bits` bits (port class `bits`) is `2^bits | port >> (16 − bits)` (1 =
 * every port of the protocol; 2^16 | port = exactly that port). Strings
 * would cost several times the memory at millions of entries.
 *
 * Policy keys as the map holds them (the generated PolicyKey) are built
 * from this form in src/datapath/maps/policy-key.ts, the one place that
 * builds them; this module stays pure.
 */
import { SluiceDirection, SluicePolicyClass, type EndpointEntry, type IpcacheEntry, type IpcacheKey } from '../datapath/generated/abi.js';
import { formatIpv4 } from './cidr.js';
import type { Direction, Protocol } from './policy-types.js';
import type { PortPrefix } from './ports.js';

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
  return `${formatIpv4(addr)}/${prefixlen}`;
}

// ---- policy ----------------------------------------------------------------------

export const DIRECTION_NUMBER: Readonly<Record<Direction, number>> = { ingress: SluiceDirection.INGRESS, egress: SluiceDirection.EGRESS };
export const PROTOCOL_SLOT: Readonly<Record<Protocol, number>> = { TCP: 1, UDP: 2, SCTP: 3 };
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
  /** class NO_PORTS: every protocol and port. */
  | { readonly kind: 'any' }
  /** class prefix.bits: the first bits of the port, of one protocol. */
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

// ---- port classes (endpoint_entry.*_policy_classes) -------------------------------

/** The port class (enum sluice_policy_class) of a packed key: its port prefix bits, or NO_PORTS. */
export function policyClassOfPacked(packed: number): number {
  const rest = packed % ID_SHIFT;
  if (rest < 2 ** NODE_BITS) return SluicePolicyClass.NO_PORTS;
  return 31 - Math.clz32(rest % 2 ** NODE_BITS); // floor(log2(node)) = the prefix's bits
}

/** The class mask of one endpoint-direction's entries: bit c when some entry has class c. */
export function policyClassMask(entries: ReadonlyMap<number, number> | undefined): number {
  let mask = 0;
  for (const packed of entries?.keys() ?? []) mask |= 2 ** policyClassOfPacked(packed);
  return mask >>> 0;
}

/** The entry's class mask for one direction. */
export function endpointClasses(entry: EndpointEntry, direction: Direction): number {
  return direction === 'egress' ? entry.egressPolicyClasses : entry.ingressPolicyClasses;
}

export function sameEndpointEntry(a: EndpointEntry, b: EndpointEntry): boolean {
  return a.flags === b.flags && a.policyRevision === b.policyRevision &&
    a.ingressPolicyClasses === b.ingressPolicyClasses && a.egressPolicyClasses === b.egressPolicyClasses;
}

/** Entries in one map, counted. */
export function countPolicyEntries(state: DatapathState): number {
  let n = 0;
  for (const m of state.policy.values()) n += m.size;
  return n;
}
