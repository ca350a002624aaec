/**
 * Ports as the policy map sees them (struct policy_key in
 * bpf/include/sluice_abi.h): port ranges as the few
 * aligned prefixes of the 16-bit port that cover them exactly (each prefix
 * length a port class), so that a range `port..endPort` costs O(log range)
 * entries and at most one hash lookup per class per packet, never one entry
 * per port.
 */
/** A set of ports: every port whose first `bits` bits equal those of `port` (the rest of `port` is zero). */
export interface PortPrefix {
  readonly port: number;
  /** 0..16: 0 = every port, 16 = exactly `port`. */
  readonly bits: number;
}

/**
 * The minimal list of disjoint prefixes whose union is exactly start..end
 * (inclusive), in ascending port order. Greedy: at each step the largest
 * aligned block that starts at `start` and stays inside the range; at most
 * 2·16 − 2 prefixes for any range (30 for 1..65534).
 */
export function portRangeToPrefixes(start: number, end: number): PortPrefix[] {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > 0xffff || start > end) {
    throw new RangeError(`port range ${start}..${end}: want integers 0 ≤ start ≤ end ≤ 65535`);
  }
  const out: PortPrefix[] = [];
  let at = start;
  while (at <= end) {
    // Largest k with `at` aligned to 2^k and at + 2^k − 1 ≤ end.
    let k = 0;
    while (k < 16 && at % 2 ** (k + 1) === 0 && at + 2 ** (k + 1) - 1 <= end) k++;
    out.push({ port: at, bits: 16 - k });
    at += 2 ** k;
  }
  return out;
}

/** The ports a prefix covers, as an inclusive range. */
export function portPrefixRange(p: PortPrefix): { readonly from: number; readonly to: number } {
  return { from: p.port, to: p.port + 2 ** (16 - p.bits) - 1 };
}
