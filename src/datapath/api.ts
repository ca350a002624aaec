/**
 * The typed surface of the datapath layer: what the rest of Sluice may use of
 * libbpf. Implementations live beside it (bpf-object.ts, bpf-map.ts, tc.ts,
 * ringbuf.ts, test-run.ts) over the native addon in native/.
 *
 * Interfaces first so that callers (lab, agent, CLI, tests) depend on shapes,
 * not on the addon.
 */

/** Encodes one fixed-size C struct. Generated from BTF in generated/abi.ts. */
export interface Codec<T> {
  /** sizeof the C struct, in bytes. */
  readonly size: number;
  /** Writes v into a zeroed buffer of `size` bytes (padding stays zero). */
  encode(v: T): Buffer;
  /** Reads a struct from buf at offset (default 0). */
  decode(buf: Buffer, offset?: number): T;
}

/** BPF_ANY / BPF_NOEXIST / BPF_EXIST. */
export type UpdateMode = 'any' | 'noexist' | 'exist';

export interface MapInfo {
  readonly name: string;
  readonly type: number; // enum bpf_map_type
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly id: number;
}

/** A map of the kernel's, as raw bytes. */
export interface RawMap {
  readonly info: MapInfo;
  readonly fd: number;
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer, mode?: UpdateMode): void;
  /** true when the key was there. */
  delete(key: Buffer): boolean;
  /** Keys in kernel order; safe against concurrent deletes. */
  keys(): IterableIterator<Buffer>;
  /**
   * Batch update/delete where the kernel has it for this map type, else one
   * syscall per entry. Returns how many were applied; throws (BpfError) at the
   * first failure, after which `applied` entries were written.
   */
  updateBatch(entries: ReadonlyArray<readonly [Buffer, Buffer]>, mode?: UpdateMode): number;
  deleteBatch(keys: ReadonlyArray<Buffer>): number;
}

/** A map with typed keys and values (codecs from generated/abi.ts). */
export interface TypedMap<K, V> {
  readonly raw: RawMap;
  lookup(key: K): V | undefined;
  update(key: K, value: V, mode?: UpdateMode): void;
  delete(key: K): boolean;
  entries(): IterableIterator<[K, V]>;
  updateBatch(entries: ReadonlyArray<readonly [K, V]>, mode?: UpdateMode): number;
  deleteBatch(keys: ReadonlyArray<K>): number;
}

/** Per-CPU maps: one value per possible CPU. */
export interface PerCpuMap<K, V> {
  readonly raw: RawMap;
  readonly cpus: number;
  lookup(key: K): V[] | undefined;
  entries(): IterableIterator<[K, V[]]>;
}

export interface ProgramInfo {
  readonly name: string;
  readonly section: string;
  readonly fd: number;
  readonly type: number; // enum bpf_prog_type
  readonly id: number;
}

export interface OpenOptions {
  /**
   * Maps declared with LIBBPF_PIN_BY_NAME are reused from, or created and
   * pinned in, this bpffs directory (created if missing).
   */
  readonly pinRoot?: string;
  /** Values of `const volatile` globals (.rodata) set before load, by name. */
  readonly globals?: Readonly<Record<string, Buffer>>;
  /**
   * max_entries by map name (≥ 1), set before load. A map already pinned in
   * pinRoot keeps its size: one asked for here that differs is an error
   * naming both sizes; one not asked for takes the pin's size.
   */
  readonly maxEntries?: Readonly<Record<string, number>>;
}

/** A loaded BPF object file. close() releases fds; pinned maps stay. */
export interface LoadedObject {
  readonly path: string;
  map(name: string): RawMap;
  program(name: string): ProgramInfo;
  maps(): MapInfo[];
  programs(): ProgramInfo[];
  close(): void;
}

export type TcDirection = 'ingress' | 'egress';

/** Where an interface is: by name or ifindex, in a netns given by path or in ours. */
export interface InterfaceRef {
  readonly ifname?: string;
  readonly ifindex?: number;
  /** e.g. /var/run/netns/foo or /proc/PID/ns/net; absent = the caller's netns. */
  readonly netns?: string;
}

export interface TcAttachOptions {
  readonly handle?: number; // default 1
  readonly priority?: number; // default 1
  /** Atomically replace the program at (handle, priority): no gap in enforcement. */
  readonly replace?: boolean;
}

export interface TcAttachment {
  readonly ifindex: number;
  readonly direction: TcDirection;
  readonly handle: number;
  readonly priority: number;
  readonly progId: number;
}

export interface TestRunOptions {
  readonly data: Buffer;
  readonly repeat?: number;
  /** struct __sk_buff to pass in (e.g. mark); optional. */
  readonly ctx?: Buffer;
  /** Size of the output buffer; default data.length + 256. */
  readonly dataOutSize?: number;
}

export interface TestRunResult {
  readonly retval: number;
  /** Average ns per run, as the kernel reports it. */
  readonly durationNs: number;
  readonly data: Buffer;
}

/** A ring-buffer consumer driven by libuv; records arrive in batches. */
export interface RingBufferReader {
  stop(): void;
}
