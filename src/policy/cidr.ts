/**
 * IP addresses and CIDRs for ipBlock peers. Both families parse (a policy may
 * legitimately name IPv6 blocks), as bigints so one code path serves both;
 * the datapath is IPv4-only for now, so IPv6 blocks match no traffic and the
 * validator says so.
 *
 * Parsing follows Go's net package as the API server uses it: dotted quads
 * without leading zeros, RFC 4291 text for IPv6 (no zones), and a CIDR whose
 * host bits are set is accepted and masked (the caller warns about it).
 */

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: IpFamily;
  /** The network address: host bits are zero. */
  readonly base: bigint;
  readonly prefixlen: number;
}

export interface ParsedCidr {
  readonly cidr: Cidr;
  /** The text had host bits set ("10.0.0.1/24"); `cidr` is the masked network. */
  readonly hostBitsSet: boolean;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

/** Parses an IPv4 or IPv6 address; a reason string when it is neither. */
export function parseIp(s: string): IpAddress | string {
  if (s.includes(':')) {
    const v = parseIpv6(s);
    return v === undefined ? `"${s}" is not a valid IPv6 address` : { family: 6, value: v };
  }
  const v = parseIpv4(s);
  return v === undefined ? `"${s}" is not a valid IPv4 address (want a.b.c.d, no leading zeros)` : { family: 4, value: v };
}

/** Parses "addr/len"; a reason string when malformed. */
export function parseCidr(s: string): ParsedCidr | string {
  const slash = s.indexOf('/');
  if (slash < 0) return `"${s}" is not a CIDR (want address/prefix-length)`;
  const ip = parseIp(s.slice(0, slash));
  if (typeof ip === 'string') return ip;
  const lenText = s.slice(slash + 1);
  const max = BITS[ip.family];
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > max) {
    return `"/${lenText}" is not a prefix length 0..${max}`;
  }
  const prefixlen = Number(lenText);
  const base = ip.value & networkMask(ip.family, prefixlen);
  return { cidr: { family: ip.family, base, prefixlen }, hostBitsSet: base !== ip.value };
}

/** True when `addr` is inside `cidr` (same family only). */
export function cidrContainsIp(cidr: Cidr, addr: IpAddress): boolean {
  return cidr.family === addr.family && (addr.value & networkMask(cidr.family, cidr.prefixlen)) === cidr.base;
}

/** True when every address of `inner` is in `outer` (equal CIDRs included). */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefixlen <= inner.prefixlen &&
    (inner.base & networkMask(outer.family, outer.prefixlen)) === outer.base
  );
}

/**
 * The one IPv4 formatter: 0x0a000001 → "10.0.0.1" (an address in natural
 * order, as the datapath codecs and IpAddress values hold it). Throws on
 * anything but an unsigned 32-bit integer.
 */
export function formatIpv4(addr: number): string {
  if (!Number.isInteger(addr) || addr < 0 || addr > 0xffff_ffff) {
    throw new RangeError(`not a 32-bit address: ${addr}`);
  }
  return `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
}

export function formatIp(addr: IpAddress): string {
  if (addr.family === 4) return formatIpv4(Number(addr.value));
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((addr.value >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of two or more zero groups (RFC 5952).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.base })}/${c.prefixlen}`;
}

/** An IPv4 address as the unsigned 32-bit number the datapath codecs take. */
export function ipv4ToNumber(addr: IpAddress): number {
  if (addr.family !== 4) throw new RangeError(`${formatIp(addr)} is not an IPv4 address`);
  return Number(addr.value);
}

function networkMask(family: IpFamily, prefixlen: number): bigint {
  const bits = BITS[family];
  const all = (1n << BigInt(bits)) - 1n;
  return all ^ ((1n << BigInt(bits - prefixlen)) - 1n);
}

function parseIpv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseIpv6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined; // zones are not addresses
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  if (halves.length === 2 && (halves[0] ?? '').includes('.')) return undefined; // a dotted quad only ends an address
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  if (head === undefined || tail === undefined) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 2 ? total > 7 : total !== 8) return undefined;
  const groups = [...head, ...new Array<bigint>(8 - total).fill(0n), ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Colon-separated hex groups; an embedded dotted quad at the end counts as two. */
function groupsOf(text: string): bigint[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const out: bigint[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? '';
    if (i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIpv4(p);
      if (v4 === undefined) return undefined;
      out.push(v4 >> 16n, v4 & 0xffffn);
    } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
      out.push(BigInt(`0x${p}`));
    } else {
      return undefined;
    }
  }
  return out;
}
