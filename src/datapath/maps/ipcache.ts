/**
 * The ipcache (bpf/lib/ipcache.h): IPv4 prefix → identity, kept in two maps
 * that read as one. /32s (pods) go to the sl_iphost_v1 hash, shorter prefixes
 * (CIDRs) to the sl_ipcache_v1 LPM trie; the datapath tries the hash first,
 * which is exactly longest-prefix-match because a /32 is the longest prefix.
 * Callers see one map and never route entries themselves. Keys are built from
 * prefix strings so that nobody does the LPM arithmetic (host bits zero) by hand.
 */
import type { RawMap, TypedMap, UpdateMode } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { ipcacheEntryCodec, ipcacheKeyCodec, type IpcacheEntry, type IpcacheKey } from '../generated/abi.js';
import { formatIpv4Prefix, parseIpv4Prefix } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

/** CIDRs (prefixlen 0..31). */
export const IPCACHE_LAYOUT: MapLayout = {
  name: 'sl_ipcache_v1',
  type: BpfMapType.LPM_TRIE,
  keySize: ipcacheKeyCodec.size,
  valueSize: ipcacheEntryCodec.size,
};

/** Exact hosts (prefixlen 32). */
export const IPHOST_LAYOUT: MapLayout = {
  name: 'sl_iphost_v1',
  type: BpfMapType.HASH,
  keySize: ipcacheKeyCodec.size,
  valueSize: ipcacheEntryCodec.size,
};

/** One map over both tiers; the same operations as a TypedMap. */
export type IpcacheMap = Omit<TypedMap<IpcacheKey, IpcacheEntry>, 'raw'> & {
  readonly hosts: TypedMap<IpcacheKey, IpcacheEntry>;
  readonly prefixes: TypedMap<IpcacheKey, IpcacheEntry>;
};

/** Types the two raw maps after checking their layouts. */
export function openIpcache(hostsRaw: RawMap, prefixesRaw: RawMap): IpcacheMap {
  checkLayout(hostsRaw.info, IPHOST_LAYOUT);
  checkLayout(prefixesRaw.info, IPCACHE_LAYOUT);
  const hosts = typedMap(hostsRaw, ipcacheKeyCodec, ipcacheEntryCodec);
  const prefixes = typedMap(prefixesRaw, ipcacheKeyCodec, ipcacheEntryCodec);
  const tier = (key: IpcacheKey): TypedMap<IpcacheKey, IpcacheEntry> => (key.prefixlen === 32 ? hosts : prefixes);
  /** Splits a batch by tier, hosts first; returns how many were applied. */
  const split = <T>(items: ReadonlyArray<T>, keyOf: (t: T) => IpcacheKey, apply: (m: TypedMap<IpcacheKey, IpcacheEntry>, part: T[]) => number): number => {
    const h = items.filter((t) => keyOf(t).prefixlen === 32);
    const p = items.filter((t) => keyOf(t).prefixlen !== 32);
    return (h.length ? apply(hosts, h) : 0) + (p.length ? apply(prefixes, p) : 0);
  };
  return {
    hosts,
    prefixes,
    lookup: (key) => tier(key).lookup(key),
    update: (key, value, mode?: UpdateMode) => tier(key).update(key, value, mode),
    delete: (key) => tier(key).delete(key),
    *entries() {
      yield* hosts.entries();
      yield* prefixes.entries();
    },
    updateBatch: (entries, mode?: UpdateMode) => split(entries, ([k]) => k, (m, part) => m.updateBatch(part, mode)),
    deleteBatch: (keys) => split(keys, (k) => k, (m, part) => m.deleteBatch(part)),
  };
}

/** "10.0.0.0/8" or "10.1.2.3" (a /32) → the LPM key. Throws on host bits. */
export function ipcacheKey(prefix: string): IpcacheKey {
  return parseIpv4Prefix(prefix);
}

export interface IpcacheRow {
  readonly prefix: string;
  readonly identity: number;
  readonly flags: number;
}

/** Every entry, ordered by address then prefix length (stable for golden tests). */
export function dumpIpcache(map: IpcacheMap): IpcacheRow[] {
  return [...map.entries()]
    .sort(([a], [b]) => a.addr - b.addr || a.prefixlen - b.prefixlen)
    .map(([key, entry]) => ({ prefix: formatIpv4Prefix(key), identity: entry.identity, flags: entry.flags }));
}
