/**
 * sl_lb_tbl_v1: hash of maps, (service, backend set) → an inner array of
 * __u32 (bpf/lib/lb.h): element 0 = n, elements 1..n = backend ids. A
 * random service's table lists its backends once each; a Maglev service's
 * is its Maglev table (n = M, element 1 + s = the backend of slot s).
 *
 * A table is never written in place: replace() creates a new inner array
 * (BPF_F_INNER_MAP, so its length is its own), fills it, and swaps it into
 * the outer map with one update. A packet sees the old table or the new one,
 * never a mix. The inner array lives as long as the outer map holds it.
 */
import { constants } from 'node:os';
import type { RawMap } from '../api.js';
import { addon, type NativeMap } from '../addon.js';
import { BPF_F_INNER_MAP, BpfMapType, type MapSpec } from '../bpf-map.js';
import { isBpfError } from '../errors.js';
import { lbTableKeyCodec, SluiceLbConst, SluiceMapCapacity, type LbTableKey } from '../generated/abi.js';
import { murmur3Finish, murmur3Round } from '../../lb/maglev.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const LB_TBL_LAYOUT: MapLayout = {
  name: 'sl_lb_tbl_v1',
  type: BpfMapType.HASH_OF_MAPS,
  keySize: lbTableKeyCodec.size,
  valueSize: 4, // an inner map's fd on update, its id on lookup
};

/** The most backend ids a table holds (the element count minus the header). */
export const LB_TABLE_MAX_BACKENDS = SluiceMapCapacity.LB_TABLE_MAX_SLOTS - 1;

/** One inner array, as lb-tables fills and reads it: whole, in one batch syscall each way. */
export interface InnerArray {
  readonly fd: number;
  /** Element i := elements[i], for every i < elements.length (one BPF_MAP_UPDATE_BATCH). */
  fill(elements: Uint32Array): void;
  /** Every element (BPF_MAP_LOOKUP_BATCH). */
  readAll(): Uint32Array;
  close(): void;
}

/** How inner arrays are made and reopened (the kernel's, or a test's). */
export interface InnerMaps {
  create(spec: MapSpec): InnerArray;
  openById(id: number): InnerArray;
}

/** Keys 0..n-1 of an array, in host byte order as the kernel reads them. */
function arrayKeys(n: number): Buffer {
  const keys = new Uint32Array(n);
  for (let i = 0; i < n; i++) keys[i] = i;
  return Buffer.from(keys.buffer, keys.byteOffset, keys.byteLength);
}

/** A kernel array of __u32 by its fd (owned: close() releases it); values in host byte order, as Uint32Array holds them. */
function kernelArray(fd: number): InnerArray {
  const map: NativeMap = new (addon().BpfMap)(fd, undefined, true);
  return {
    fd,
    fill(elements) {
      map.updateBatchPacked(arrayKeys(elements.length), Buffer.from(elements.buffer, elements.byteOffset, elements.byteLength), 0);
    },
    readAll() {
      const { values } = map.lookupBatchPacked(map.info.maxEntries);
      // Copied out: the Buffer may sit at an offset that is not a multiple of 4 in a shared pool.
      const out = new Uint32Array(values.length / 4);
      Buffer.from(out.buffer).set(values);
      return out;
    },
    close: () => map.close(),
  };
}

export const kernelInnerMaps: InnerMaps = {
  create: (spec) => kernelArray(addon().mapCreate(spec)),
  openById: (id) => kernelArray(addon().mapFdById(id)),
};

/** The inner array's shape; must equal the template in bpf/lib/lb.h but for max_entries. */
function innerSpec(elements: number): MapSpec {
  return { type: BpfMapType.ARRAY, name: 'sl_lb_tbl_in', keySize: 4, valueSize: 4, maxEntries: elements, flags: BPF_F_INNER_MAP };
}

/** Tables per outer-map batch: as many inner-map fds are open at once. */
const REPLACE_CHUNK = 256;

const { ENOENT } = constants.errno;

function checkIds(key: LbTableKey, ids: ArrayLike<number>): void {
  const n = ids.length;
  if (n > LB_TABLE_MAX_BACKENDS) throw new RangeError(`lb table ${key.serviceId}/${key.backendSet}: ${n} backend ids, at most ${LB_TABLE_MAX_BACKENDS}`);
  for (let i = 0; i < n; i++) {
    const id = ids[i] ?? 0;
    if (id <= 0 || id > 0xffff_ffff || !Number.isInteger(id)) throw new RangeError(`lb table ${key.serviceId}/${key.backendSet}: backend id ${id} at ${i}`);
  }
}

/** The inner array's elements: [0] = n, [1..n] = the ids. */
function tableElements(ids: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(ids.length + 1);
  out[0] = ids.length;
  for (let i = 0; i < ids.length; i++) out[i + 1] = ids[i] ?? 0;
  return out;
}

export class LbTables {
  constructor(readonly raw: RawMap, private readonly inner: InnerMaps = kernelInnerMaps) {
    checkLayout(raw.info, LB_TBL_LAYOUT);
  }

  /**
   * Makes backendIds (ids of sl_lb_be_v1, none 0) the table of key, in one
   * swap. An empty list is a table of length 0: no usable backend.
   * Throws RangeError for a 0 id or more than LB_TABLE_MAX_BACKENDS ids,
   * BpfError when the kernel refuses.
   */
  replace(key: LbTableKey, backendIds: ArrayLike<number>): void {
    this.replaceMany([[key, backendIds]]);
  }

  /**
   * Replaces several tables with one outer-map batch update per
   * REPLACE_CHUNK tables. Each new inner array is filled by one batch
   * syscall (a 16381-slot Maglev table in about a millisecond). Each table
   * is swapped whole; the kernel waits for an RCU grace period after every
   * update of a map of maps (so that no program still reads the old inner
   * array when it returns), about 10-20 ms here, once per batch rather than
   * once per table: programming many services goes through this. Throws
   * like replace(); tables of chunks before the failing one are in place.
   */
  replaceMany(tables: ReadonlyArray<readonly [LbTableKey, ArrayLike<number>]>): void {
    for (const [key, ids] of tables) checkIds(key, ids);
    for (let start = 0; start < tables.length; start += REPLACE_CHUNK) {
      const chunk = tables.slice(start, start + REPLACE_CHUNK);
      const created: InnerArray[] = [];
      try {
        for (const [, ids] of chunk) {
          const table = this.inner.create(innerSpec(ids.length + 1));
          created.push(table);
          table.fill(tableElements(ids));
        }
        this.raw.updateBatch(chunk.map(([key], i) => [lbTableKeyCodec.encode(key), u32Codec.encode(created[i]!.fd)] as const));
      } finally {
        // The outer map holds them now (or nothing does, after a failure).
        for (const table of created) table.close();
      }
    }
  }

  /** The id of the inner array that is key's table now, or undefined when it has none. */
  innerId(key: LbTableKey): number | undefined {
    const id = this.raw.lookup(lbTableKeyCodec.encode(key));
    return id === undefined ? undefined : u32Codec.decode(id);
  }

  /** The backend ids of key's table (length n), or undefined when it has none. */
  read(key: LbTableKey): Uint32Array | undefined {
    const id = this.innerId(key);
    return id === undefined ? undefined : this.readInner(id);
  }

  /** The backend ids of the inner array with this id (one batch lookup), or undefined when it is gone. */
  readInner(innerId: number): Uint32Array | undefined {
    let table: InnerArray;
    try {
      table = this.inner.openById(innerId);
    } catch (e) {
      // Replaced or deleted since its id was read: the kernel freed it.
      if (isBpfError(e) && e.errno === ENOENT) return undefined;
      throw e;
    }
    try {
      const elements = table.readAll();
      const n = Math.min(elements[0] ?? 0, elements.length - 1);
      return elements.slice(1, 1 + n);
    } finally {
      table.close();
    }
  }

  /** Removes key's table; true when there was one. */
  delete(key: LbTableKey): boolean {
    return this.raw.delete(lbTableKeyCodec.encode(key));
  }

  /**
   * Removes the tables of `keys` with one outer-map batch delete per
   * REPLACE_CHUNK keys: a delete from a map of maps waits for an RCU grace
   * period like an update, once per batch instead of once per table
   * (retiring 10,000 Services one table at a time would hold the caller for
   * minutes). A key without a table counts as removed. Returns the keys the
   * kernel refused, with its error; every other table is gone.
   */
  deleteMany(keys: readonly LbTableKey[]): { readonly key: LbTableKey; readonly error: unknown }[] {
    const refused: { key: LbTableKey; error: unknown }[] = [];
    const encoded = keys.map((k) => lbTableKeyCodec.encode(k));
    let at = 0;
    while (at < keys.length) {
      const end = Math.min(keys.length, at + REPLACE_CHUNK);
      try {
        this.raw.deleteBatch(encoded.slice(at, end));
        at = end;
      } catch (e) {
        // The kernel's batch stops at the first key it cannot delete, after `applied` others: that key was
        // either without a table (ENOENT: removed as asked) or refused; the batch goes on after it.
        const stopped = at + (isBpfError(e) && e.applied !== undefined ? e.applied : 0);
        if (!(isBpfError(e) && e.errno === ENOENT)) refused.push({ key: keys[stopped] as LbTableKey, error: e });
        at = stopped + 1;
      }
    }
    return refused;
  }

  keys(): LbTableKey[] {
    return [...this.raw.keys()].map((k) => lbTableKeyCodec.decode(k));
  }
}

export interface LbFlow {
  /** Natural order (parseIpv4). */
  readonly clientAddr: number;
  readonly clientPort: number;
  readonly frontendPort: number;
  readonly protocol: number;
}

/**
 * lb_flow_hash() of bpf/lib/lb.h: MurmurHash3 rounds (seed
 * SLUICE_LB_HASH_SEED) over the client address, clientPort << 16 |
 * frontendPort and the protocol, then the finaliser. A Maglev service gives
 * the flow table slot hash % M; under ClientIP affinity the datapath hashes
 * with clientPort 0.
 */
export function lbFlowHash(flow: LbFlow): number {
  let h = SluiceLbConst.HASH_SEED >>> 0;
  h = murmur3Round(h, flow.clientAddr);
  h = murmur3Round(h, ((flow.clientPort & 0xffff) << 16) | (flow.frontendPort & 0xffff));
  h = murmur3Round(h, flow.protocol);
  return murmur3Finish(h, 12);
}
