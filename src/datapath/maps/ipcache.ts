/**
 * sl_ipcache_v1: LPM trie, IPv4 prefix → identity (bpf/lib/ipcache.h).
 * Keys are built from prefix strings so that callers never do the LPM
 * arithmetic (prefixlen first, host bits zero) themselves.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { ipcacheEntryCodec, ipcacheKeyCodec, type IpcacheEntry, type IpcacheKey } from '../generated/abi.js';
import { formatIpv4Prefix, parseIpv4Prefix } from './ipv4.js';
import { checkLayout, type MapLayout } from './layout.js';

export const IPCACHE_LAYOUT: MapLayout = {
  name: 'sl_ipcache_v1',
  type: BpfMapType.LPM_TRIE,
  keySize: ipcacheKeyCodec.size,
  valueSize: ipcacheEntryCodec.size,
};

export type IpcacheMap = TypedMap<IpcacheKey, IpcacheEntry>;

/** Types raw after checking it is an ipcache of this layout. */
export function openIpcache(raw: RawMap): IpcacheMap {
  checkLayout(raw.info, IPCACHE_LAYOUT);
  return typedMap(raw, ipcacheKeyCodec, ipcacheEntryCodec);
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
