/**
 * What a Sluice map must look like in the kernel, and the check that it does.
 * Each map module declares its layout from the generated codecs' sizes, so a
 * change to bpf/include/sluice_abi.h that was not regenerated, or a pinned map
 * left by an older layout, fails at open with the difference spelled out
 * instead of corrupting entries.
 */
import type { Codec, MapInfo } from '../api.js';
import type { BpfMapType } from '../bpf-map.js';

export interface MapLayout {
  /** The BPF map name, which is also its pin name (≤ 15 characters). */
  readonly name: string;
  readonly type: (typeof BpfMapType)[keyof typeof BpfMapType];
  readonly keySize: number;
  readonly valueSize: number;
  /** Checked when the control plane depends on it (array sizes, ring bytes). */
  readonly maxEntries?: number;
}

/** A map that is not what its module expects; `field` says which property differs. */
export class MapLayoutError extends Error {
  readonly code = 'EMAPLAYOUT';
  constructor(
    readonly map: string,
    readonly field: keyof MapLayout,
    readonly expected: number | string,
    readonly actual: number | string,
  ) {
    super(`map ${map}: ${field} is ${actual}, expected ${expected}`);
    this.name = 'MapLayoutError';
  }
}

/** Throws MapLayoutError at the first property of info that differs from want. */
export function checkLayout(info: MapInfo, want: MapLayout): void {
  const checks: [keyof MapLayout, number | string, number | string][] = [
    ['name', want.name, info.name],
    ['type', want.type, info.type],
    ['keySize', want.keySize, info.keySize],
    ['valueSize', want.valueSize, info.valueSize],
  ];
  if (want.maxEntries !== undefined) checks.push(['maxEntries', want.maxEntries, info.maxEntries]);
  for (const [field, expected, actual] of checks) {
    if (expected !== actual) throw new MapLayoutError(want.name, field, expected, actual);
  }
}

/** A host-order __u32 key (array indices). */
export const u32Codec: Codec<number> = {
  size: 4,
  encode(v: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v, 0);
    return b;
  },
  decode(b: Buffer, o = 0): number {
    if (b.length - o < 4) throw new RangeError(`__u32: need 4 bytes, got ${b.length - o}`);
    return b.readUInt32LE(o);
  },
};
