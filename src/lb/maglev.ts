/**
 * Maglev consistent hashing (Eisenbud et al., NSDI'16): a lookup table of M
 * slots (M prime) filled by the backends in turns, each taking the next
 * still-empty slot of its own permutation offset + j·skip (mod M). Every
 * backend gets ⌊M/N⌋ or ⌈M/N⌉ slots, and removing one of N backends moves
 * little more than its own 1/N of the slots. Pure and deterministic: a
 * backend's permutation depends only on its key (e.g. "10.0.0.5:8080/TCP"),
 * never on its position in the list, so every agent builds the same table.
 */

/** Prime table sizes accepted (Cilium's list); the default is 16381. */
export const MAGLEV_TABLE_SIZES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
export const DEFAULT_MAGLEV_TABLE_SIZE = 16381;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** One MurmurHash3 x86_32 block round: the 32-bit word k mixed into h. */
export function murmur3Round(h: number, k: number): number {
  let x = Math.imul(k >>> 0, C1);
  x = (x << 15) | (x >>> 17);
  x = Math.imul(x, C2);
  let y = (h ^ x) >>> 0;
  y = (y << 13) | (y >>> 19);
  return (Math.imul(y, 5) + 0xe6546b64) >>> 0;
}

/** MurmurHash3 x86_32's finaliser over h after `length` bytes. */
export function murmur3Finish(h: number, length: number): number {
  let x = (h ^ length) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** MurmurHash3 x86_32 of the UTF-8 bytes of `key`. */
export function murmur3(key: string, seed: number): number {
  const data = new TextEncoder().encode(key);
  let h = seed >>> 0;
  const blocks = data.length >>> 2;
  for (let i = 0; i < blocks; i++) {
    const o = i * 4;
    h = murmur3Round(h, (data[o] ?? 0) | ((data[o + 1] ?? 0) << 8) | ((data[o + 2] ?? 0) << 16) | ((data[o + 3] ?? 0) << 24));
  }
  // The 1–3 bytes past the last block, little-endian.
  const tail = blocks * 4;
  const rest = data.length & 3;
  if (rest > 0) {
    let k = 0;
    for (let i = rest - 1; i >= 0; i--) k = (k << 8) | (data[tail + i] ?? 0);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  return murmur3Finish(h, data.length);
}

const OFFSET_SEED = 0x5eed_0001;
const SKIP_SEED = 0x5eed_0002;

/**
 * The table for `keys` (distinct backend keys): slot → index into `keys`.
 * Throws RangeError for a size that is not one of MAGLEV_TABLE_SIZES or for
 * no backends.
 */
export function maglevTable(keys: readonly string[], size: number = DEFAULT_MAGLEV_TABLE_SIZE): Uint32Array {
  if (!(MAGLEV_TABLE_SIZES as readonly number[]).includes(size)) {
    throw new RangeError(`maglev table size ${size}: want one of ${MAGLEV_TABLE_SIZES.join(', ')}`);
  }
  if (keys.length === 0) throw new RangeError('maglev table: no backends');
  if (new Set(keys).size !== keys.length) throw new RangeError('maglev table: backend keys must be distinct');
  // Turns go in key order, so the table does not depend on the order the backends were listed in.
  const order = keys.map((_, i) => i).sort((a, b) => ((keys[a] ?? '') < (keys[b] ?? '') ? -1 : 1));
  const n = keys.length;
  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const key = keys[order[i] ?? 0] ?? '';
    offset[i] = murmur3(key, OFFSET_SEED) % size;
    skip[i] = (murmur3(key, SKIP_SEED) % (size - 1)) + 1;
  }
  const next = new Uint32Array(n);
  const table = new Uint32Array(size).fill(0xffffffff);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      const o = offset[i] ?? 0;
      const s = skip[i] ?? 1;
      let j = next[i] ?? 0;
      let slot = (o + j * s) % size;
      while (table[slot] !== 0xffffffff) {
        j++;
        slot = (o + j * s) % size;
      }
      table[slot] = order[i] ?? 0;
      next[i] = j + 1;
      if (++filled === size) return table;
    }
  }
}
