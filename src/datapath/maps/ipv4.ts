/**
 * IPv4 addresses as the generated codecs want them: a __be32 field is a
 * number in natural order (10.0.0.1 = 0x0a000001), encoded big-endian by the
 * codec. Parsing is strict: map keys built from a typo must fail loudly.
 * Formatting is src/policy/cidr.ts's formatIpv4, the one IPv4 formatter.
 */
import { formatIpv4 } from '../../policy/cidr.js';

export { formatIpv4 };

/** An IPv4 prefix in natural order, host bits zero. */
export interface Ipv4Prefix {
  readonly addr: number;
  readonly prefixlen: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** "10.0.0.1" → 0x0a000001. Throws on anything but four decimal octets. */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) {
    throw new RangeError(`not an IPv4 address: "${text}"`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** The netmask of a prefix length, as an unsigned 32-bit number. */
function netmask(prefixlen: number): number {
  return prefixlen === 0 ? 0 : (0xffff_ffff << (32 - prefixlen)) >>> 0;
}

/**
 * "10.1.0.0/16" → {addr: 0x0a010000, prefixlen: 16}; a bare address is a /32.
 * Host bits must be zero: "10.1.2.3/16" is rejected rather than silently
 * widened, because an LPM entry for the wrong network is a policy hole.
 */
export function parseIpv4Prefix(text: string): Ipv4Prefix {
  const [addrText, lenText, extra] = text.split('/');
  if (addrText === undefined || extra !== undefined || (lenText !== undefined && !/^\d{1,2}$/.test(lenText))) {
    throw new RangeError(`not an IPv4 prefix: "${text}"`);
  }
  const prefixlen = lenText === undefined ? 32 : Number(lenText);
  if (prefixlen > 32) throw new RangeError(`prefix length over 32: "${text}"`);
  const addr = parseIpv4(addrText);
  if ((addr & ~netmask(prefixlen)) >>> 0 !== 0) {
    throw new RangeError(`host bits set in "${text}" (network is ${formatIpv4((addr & netmask(prefixlen)) >>> 0)}/${prefixlen})`);
  }
  return { addr, prefixlen };
}

/** {addr, prefixlen} → "10.1.0.0/16". */
export function formatIpv4Prefix(p: Ipv4Prefix): string {
  return `${formatIpv4(p.addr)}/${p.prefixlen}`;
}
