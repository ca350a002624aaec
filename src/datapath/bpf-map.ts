/**
 * Maps: raw bytes (RawMap over the addon's BpfMap), typed through codecs, and
 * per-CPU views. Batch writes use the kernel's batch syscalls where the map
 * type has them and fall back to one syscall per entry where it does not.
 */
import { constants } from 'node:os';

import { addon, type NativeMap } from './addon.js';
import type { Codec, MapInfo, PerCpuMap, RawMap, TypedMap, UpdateMode } from './api.js';
import { BpfError, isBpfError } from './errors.js';

/** The enum bpf_map_type values this layer needs to tell apart. */
export const BpfMapType = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  LPM_TRIE: 11,
  ARRAY_OF_MAPS: 12,
  HASH_OF_MAPS: 13,
  PERCPU_CGROUP_STORAGE: 21,
  RINGBUF: 27,
} as const;

const PER_CPU_TYPES: ReadonlySet<number> = new Set([
  BpfMapType.PERCPU_HASH,
  BpfMapType.PERCPU_ARRAY,
  BpfMapType.LRU_PERCPU_HASH,
  BpfMapType.PERCPU_CGROUP_STORAGE,
]);

export function isPerCpuMapType(type: number): boolean {
  return PER_CPU_TYPES.has(type);
}

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST. */
const UPDATE_FLAGS: Readonly<Record<UpdateMode, number>> = { any: 0, noexist: 1, exist: 2 };

const ENOTSUPP = 524; // kernel-internal; what bpf() returns for a missing batch op

export type BatchOp = 'update' | 'delete';

/**
 * What the running kernel answered about batch operations, per map type and
 * operation: undefined until tried, then true or false for good.
 */
export class BatchSupport {
  private readonly answers = new Map<string, boolean>();

  supported(mapType: number, op: BatchOp): boolean | undefined {
    return this.answers.get(`${mapType}/${op}`);
  }

  record(mapType: number, op: BatchOp, supported: boolean): void {
    this.answers.set(`${mapType}/${op}`, supported);
  }
}

// One per process by default: the answer is a property of the running kernel.
const kernelBatchSupport = new BatchSupport();

export interface RawMapOptions {
  /** Where batch support is remembered; default: shared by the process. */
  readonly batchSupport?: BatchSupport;
}

/** A RawMap over the addon's map handle. */
export class KernelMap implements RawMap {
  readonly info: MapInfo;
  private readonly batch: BatchSupport;

  constructor(
    private readonly native: NativeMap,
    opts: RawMapOptions = {},
  ) {
    this.info = native.info;
    this.batch = opts.batchSupport ?? kernelBatchSupport;
  }

  get fd(): number {
    return this.native.fd;
  }

  /** Bytes of a value as seen from user space (per-CPU maps: one 8-aligned slot per CPU). */
  get valueBytes(): number {
    return this.native.valueBytes;
  }

  lookup(key: Buffer): Buffer | undefined {
    return this.native.lookup(key);
  }

  update(key: Buffer, value: Buffer, mode: UpdateMode = 'any'): void {
    this.native.update(key, value, UPDATE_FLAGS[mode]);
  }

  delete(key: Buffer): boolean {
    return this.native.delete(key);
  }

  *keys(): IterableIterator<Buffer> {
    // The kernel restarts from the first key when asked for the successor of
    // a key that is gone. Fetching the successor before yielding lets the
    // caller delete what it was given; the seen-set drops the repeats a
    // restart after some other concurrent delete would produce.
    const seen = new Set<string>();
    let current = this.native.nextKey(undefined);
    while (current !== undefined) {
      const next = this.native.nextKey(current);
      const id = current.toString('hex');
      if (!seen.has(id)) {
        seen.add(id);
        yield current;
      }
      current = next;
    }
  }

  updateBatch(entries: ReadonlyArray<readonly [Buffer, Buffer]>, mode: UpdateMode = 'any'): number {
    if (entries.length === 0) return 0;
    const flags = UPDATE_FLAGS[mode];
    const keys = entries.map((e) => e[0]);
    const values = entries.map((e) => e[1]);
    return this.runBatch(
      'update',
      entries.length,
      () => this.native.updateBatch(keys, values, flags),
      (i) => this.native.update(keys[i]!, values[i]!, flags),
    );
  }

  /** Like the kernel's batch delete, a missing key is an error (ENOENT) on both paths. */
  deleteBatch(keys: ReadonlyArray<Buffer>): number {
    if (keys.length === 0) return 0;
    return this.runBatch(
      'delete',
      keys.length,
      () => this.native.deleteBatch(keys),
      (i) => {
        if (!this.native.delete(keys[i]!)) {
          throw new BpfError({
            errno: constants.errno.ENOENT,
            op: 'map_delete',
            message: `map '${this.info.name}': delete: key ${keys[i]!.toString('hex')} not found`,
          });
        }
      },
    );
  }

  private runBatch(op: BatchOp, count: number, batch: () => number, one: (i: number) => void): number {
    let batchError: BpfError | undefined;
    if (this.batch.supported(this.info.type, op) !== false) {
      try {
        const done = batch();
        this.batch.record(this.info.type, op, true);
        return done;
      } catch (e) {
        if (!isBpfError(e) || !looksUnsupported(e)) throw e;
        batchError = e;
        // ENOTSUPP/EOPNOTSUPP say so outright; EINVAL may also be bad input.
        if (e.errno !== constants.errno.EINVAL) this.batch.record(this.info.type, op, false);
      }
    }
    for (let i = 0; i < count; i++) {
      try {
        one(i);
      } catch (e) {
        throw isBpfError(e) ? e.withApplied(i) : e;
      }
    }
    // Every entry went in one by one where the batch was refused with EINVAL:
    // this kernel (pre-5.6 style) lacks the batch op for the type.
    if (batchError !== undefined) this.batch.record(this.info.type, op, false);
    return count;
  }
}

function looksUnsupported(e: BpfError): boolean {
  const errno = constants.errno;
  return e.applied === 0 && (e.errno === ENOTSUPP || e.errno === errno.EOPNOTSUPP || e.errno === errno.EINVAL);
}

/** A RawMap on an fd the caller keeps open (e.g. one from another loader). */
export function rawMap(fd: number, opts: RawMapOptions = {}): RawMap {
  return new KernelMap(new (addon().BpfMap)(fd, undefined, false), opts);
}

/** A map opened from its bpffs pin; close() releases our fd, the pin stays. */
export interface PinnedMap extends RawMap {
  readonly path: string;
  close(): void;
}

export function openPinnedMap(path: string, opts: RawMapOptions = {}): PinnedMap {
  const native = addon();
  const fd = native.objGet(path);
  // BpfMap owns the fd from here on (it closes it itself if it throws).
  const handle = new native.BpfMap(fd, undefined, true);
  const map = new KernelMap(handle, opts);
  return Object.assign(map, { path, close: () => handle.close() });
}

/** BPF_F_INNER_MAP: a map in a map of maps whose max_entries may differ from its template's. */
export const BPF_F_INNER_MAP = 1 << 12;

/** A map this process created (createMap) or opened by id (openMapById); close() releases the fd. */
export interface OwnedMap extends RawMap {
  close(): void;
}

export interface MapSpec {
  readonly type: (typeof BpfMapType)[keyof typeof BpfMapType];
  /** ≤ 15 characters. */
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags?: number;
}

function owned(fd: number, opts: RawMapOptions): OwnedMap {
  const handle = new (addon().BpfMap)(fd, undefined, true);
  const map = new KernelMap(handle, opts);
  return Object.assign(map, { close: () => handle.close() });
}

/** Creates an unpinned map (e.g. an inner map for a map of maps); it lives while an fd or a map holds it. */
export function createMap(spec: MapSpec, opts: RawMapOptions = {}): OwnedMap {
  return owned(addon().mapCreate(spec), opts);
}

/** Opens the map with this kernel id (what user space reads from a map of maps). */
export function openMapById(id: number, opts: RawMapOptions = {}): OwnedMap {
  return owned(addon().mapFdById(id), opts);
}

export function numPossibleCpus(): number {
  return addon().numPossibleCpus();
}

function sizeMismatch(what: string, raw: RawMap, expected: number, codec: number): BpfError {
  return new BpfError({
    errno: constants.errno.EINVAL,
    op: 'typed_map',
    message: `map '${raw.info.name}': ${what} codec is ${codec} bytes, the map's ${what} is ${expected}`,
  });
}

export function typedMap<K, V>(raw: RawMap, keyCodec: Codec<K>, valueCodec: Codec<V>): TypedMap<K, V> {
  if (isPerCpuMapType(raw.info.type)) {
    throw new BpfError({ errno: constants.errno.EINVAL, op: 'typed_map', message: `map '${raw.info.name}' is per-CPU: use perCpuMap()` });
  }
  if (keyCodec.size !== raw.info.keySize) throw sizeMismatch('key', raw, raw.info.keySize, keyCodec.size);
  if (valueCodec.size !== raw.info.valueSize) throw sizeMismatch('value', raw, raw.info.valueSize, valueCodec.size);
  return {
    raw,
    lookup: (key) => {
      const v = raw.lookup(keyCodec.encode(key));
      return v === undefined ? undefined : valueCodec.decode(v);
    },
    update: (key, value, mode) => raw.update(keyCodec.encode(key), valueCodec.encode(value), mode),
    delete: (key) => raw.delete(keyCodec.encode(key)),
    *entries() {
      for (const k of raw.keys()) {
        const v = raw.lookup(k);
        // Deleted between the key walk and the lookup: not an entry any more.
        if (v !== undefined) yield [keyCodec.decode(k), valueCodec.decode(v)];
      }
    },
    updateBatch: (entries, mode) =>
      raw.updateBatch(
        entries.map(([k, v]) => [keyCodec.encode(k), valueCodec.encode(v)] as const),
        mode,
      ),
    deleteBatch: (keys) => raw.deleteBatch(keys.map((k) => keyCodec.encode(k))),
  };
}

/**
 * A per-CPU map: the kernel hands user space one value per possible CPU, each
 * in a slot rounded up to 8 bytes.
 */
export function perCpuMap<K, V>(raw: RawMap, keyCodec: Codec<K>, valueCodec: Codec<V>): PerCpuMap<K, V> {
  if (!isPerCpuMapType(raw.info.type)) {
    throw new BpfError({ errno: constants.errno.EINVAL, op: 'per_cpu_map', message: `map '${raw.info.name}' (type ${raw.info.type}) is not per-CPU` });
  }
  if (keyCodec.size !== raw.info.keySize) throw sizeMismatch('key', raw, raw.info.keySize, keyCodec.size);
  if (valueCodec.size !== raw.info.valueSize) throw sizeMismatch('value', raw, raw.info.valueSize, valueCodec.size);
  const cpus = numPossibleCpus();
  const slot = Math.ceil(raw.info.valueSize / 8) * 8;
  const decodeAll = (buf: Buffer): V[] => Array.from({ length: cpus }, (_, cpu) => valueCodec.decode(buf, cpu * slot));
  return {
    raw,
    cpus,
    lookup: (key) => {
      const v = raw.lookup(keyCodec.encode(key));
      return v === undefined ? undefined : decodeAll(v);
    },
    *entries() {
      for (const k of raw.keys()) {
        const v = raw.lookup(k);
        if (v !== undefined) yield [keyCodec.decode(k), decodeAll(v)];
      }
    },
  };
}
