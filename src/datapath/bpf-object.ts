/**
 * Opening a BPF object file: load through libbpf with pinned-map reuse and
 * .rodata globals, then hand out its maps and programs.
 */
import { constants } from 'node:os';
import { resolve } from 'node:path';

import { addon, type NativeObject } from './addon.js';
import type { LoadedObject, MapInfo, OpenOptions, ProgramInfo, RawMap } from './api.js';
import { KernelMap } from './bpf-map.js';
import { ensurePinDir } from './bpffs.js';
import { BpfError } from './errors.js';

/**
 * Opens and loads `path`. With `pinRoot`, maps declared LIBBPF_PIN_BY_NAME are
 * reused from that bpffs directory when pinned there (libbpf checks that type,
 * sizes and flags match) and created and pinned otherwise; without `pinRoot`
 * nothing is pinned or reused (libbpf alone would pin under /sys/fs/bpf).
 * `globals` set
 * `const volatile` variables by name before the verifier sees the program.
 * `maxEntries` sizes maps by name before they are created; a pinned map keeps
 * its size (see OpenOptions).
 * Throws BpfError: op 'open' (missing/corrupt file, names the path),
 * 'set_global' (unknown variable or wrong size, names it), 'max_entries'
 * (EINVAL: not an integer ≥ 1; ENOENT: no such map, lists the maps; EEXIST:
 * pinned with another size, names the map, the pin, both sizes), 'load' (with
 * the verifier log).
 */
export function openObject(path: string, opts: OpenOptions = {}): LoadedObject {
  const native = addon();
  const maxEntries = opts.maxEntries ?? {};
  for (const [name, n] of Object.entries(maxEntries)) {
    if (!Number.isInteger(n) || n < 1 || n > 0xffff_ffff) {
      throw new BpfError({
        errno: constants.errno.EINVAL,
        op: 'max_entries',
        path,
        message: `maxEntries.${name}: ${String(n)} is not an entry count (an integer in 1..2^32-1)`,
      });
    }
  }
  if (opts.pinRoot !== undefined) ensurePinDir(opts.pinRoot);
  const obj = new native.BpfObject(path, opts.pinRoot === undefined ? undefined : resolve(opts.pinRoot), opts.globals ?? {}, maxEntries);
  return new BpfObjectFile(path, obj);
}

class BpfObjectFile implements LoadedObject {
  private readonly rawMaps = new Map<string, KernelMap>();
  private readonly progs = new Map<string, ProgramInfo>();

  constructor(
    readonly path: string,
    private readonly native: NativeObject,
  ) {
    const BpfMap = addon().BpfMap;
    for (const m of native.maps()) {
      // The handle keeps a reference to the object and refuses work once it is closed.
      this.rawMaps.set(m.name, new KernelMap(new BpfMap(m.fd, native, false)));
    }
    for (const p of native.programs()) this.progs.set(p.name, p);
  }

  map(name: string): RawMap {
    const m = this.rawMaps.get(name);
    if (m === undefined) throw this.missing('map', name, [...this.rawMaps.keys()]);
    return m;
  }

  program(name: string): ProgramInfo {
    const p = this.progs.get(name);
    if (p === undefined) throw this.missing('program', name, [...this.progs.keys()]);
    return p;
  }

  maps(): MapInfo[] {
    return [...this.rawMaps.values()].map((m) => m.info);
  }

  programs(): ProgramInfo[] {
    return [...this.progs.values()];
  }

  close(): void {
    this.native.close();
  }

  private missing(kind: string, name: string, have: string[]): BpfError {
    return new BpfError({
      errno: constants.errno.ENOENT,
      op: `object_${kind}`,
      path: this.path,
      message: `no ${kind} '${name}' in ${this.path} (has: ${have.join(', ')})`,
    });
  }
}
