/**
 * The node-shared lxc instance: build/bpf/lxc.o loaded once per node; its
 * programs find their endpoint per packet in sl_lxc_v1 by the host veth's
 * ifindex (bpf/lib/config.h). Its two
 * programs are pinned under the pin root, next to the maps they use:
 *
 *   <pinRoot>/lxc-<sha256(lxc.o)[:16]>/from_container
 *                                     /to_container
 *
 * so attaching a pod is an sl_lxc_v1 write plus two tc attaches by fd —
 * no verifier run (a load costs 80–100 ms).
 *
 * - Keyed by the object's content: an upgraded lxc.o gets a directory of its
 *   own and is loaded once; a program of another build is never reused.
 *   Programs of older builds stay attached to the pods that have them (a tc
 *   filter holds its program) until those pods go; removeStaleSharedLxc drops
 *   their pins.
 * - Concurrent first uses do not race: each loader pins into a private
 *   temporary directory and renames it into place. rename(2) onto a
 *   non-empty directory fails (ENOTEMPTY), so exactly one wins; the others
 *   drop theirs and use the winner's. A reader therefore sees no directory
 *   or a complete one, never one program of a pair.
 * - The programs reference the maps pinned in pinRoot when they were
 *   loaded. Whoever replaces those maps must remove the lxc-* directories
 *   too (removing the pin root does both).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { addon } from './addon.js';
import { openPinnedMap, type PinnedMap } from './bpf-map.js';
import { isBpfError } from './errors.js';
import { loadLxc, LXC_OBJECT_PATH } from './lxc.js';
import type { EndpointConfig } from './generated/abi.js';
import { LXC_IFACES_LAYOUT, openLxcInterfaces, type LxcInterfacesMap } from './maps/lxc-interfaces.js';

const FROM_CONTAINER = 'from_container';
const TO_CONTAINER = 'to_container';
const DIR_PREFIX = 'lxc-';
const TMP_PREFIX = 'lxctmp-'; // bpffs refuses names with a dot

export interface SharedLxcOptions {
  /** bpffs directory holding the node's maps (created if missing). */
  readonly pinRoot: string;
  readonly objectPath?: string;
}

export interface SharedLxcPrograms {
  /** The pin directory of this object's programs. */
  readonly dir: string;
  /** tc ingress of the host veth: traffic leaving the pod. */
  readonly fromContainerFd: number;
  /** tc egress of the host veth: traffic entering the pod. */
  readonly toContainerFd: number;
  /** True when this call loaded the object (first use of this build on this node). */
  readonly loaded: boolean;
  /** Releases our fds; the pins stay. */
  close(): void;
}

/** The pin directory for the programs of the object at objectPath. */
export function sharedLxcDir(pinRoot: string, objectPath: string = LXC_OBJECT_PATH): string {
  const digest = createHash('sha256').update(readFileSync(objectPath)).digest('hex');
  return join(pinRoot, `${DIR_PREFIX}${digest.slice(0, 16)}`);
}

/**
 * Opens the node-shared programs of this object from their pins, loading
 * and pinning them first when this build has none yet. Throws BpfError
 * (load: with the verifier log; obj_pin/obj_get: with the path).
 */
export function openSharedLxc(opts: SharedLxcOptions): SharedLxcPrograms {
  const objectPath = opts.objectPath ?? LXC_OBJECT_PATH;
  const dir = sharedLxcDir(opts.pinRoot, objectPath);
  const pinned = openPinnedPair(dir);
  if (pinned !== undefined) return { dir, ...pinned, loaded: false, close: () => closePair(pinned) };
  loadAndPin(opts.pinRoot, objectPath, dir);
  const fresh = openPinnedPair(dir);
  if (fresh === undefined) throw new Error(`shared lxc programs vanished from ${dir} right after pinning`);
  return { dir, ...fresh, loaded: true, close: () => closePair(fresh) };
}

interface FdPair {
  readonly fromContainerFd: number;
  readonly toContainerFd: number;
}

/** Both programs' fds, or undefined when the directory is not there. */
function openPinnedPair(dir: string): FdPair | undefined {
  const native = addon();
  let from: number;
  try {
    from = native.objGet(join(dir, FROM_CONTAINER));
  } catch (e) {
    if (isBpfError(e) && e.errno === constants.errno.ENOENT) return undefined;
    throw e;
  }
  try {
    // The directory is renamed into place complete: its second pin is there too.
    return { fromContainerFd: from, toContainerFd: native.objGet(join(dir, TO_CONTAINER)) };
  } catch (e) {
    closeSync(from);
    throw e;
  }
}

function closePair(p: FdPair): void {
  closeSync(p.fromContainerFd);
  closeSync(p.toContainerFd);
}

/** Loads the shared instance and renames its pins into dir (a concurrent winner's pins stay). */
function loadAndPin(pinRoot: string, objectPath: string, dir: string): void {
  const lxc = loadLxc({ pinRoot, objectPath });
  const tmp = join(pinRoot, `${TMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(tmp);
    const native = addon();
    native.objPin(lxc.fromContainer.fd, join(tmp, FROM_CONTAINER));
    native.objPin(lxc.toContainer.fd, join(tmp, TO_CONTAINER));
    try {
      renameSync(tmp, dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      // Another loader won the race: its programs are this same object's.
    }
  } finally {
    lxc.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Removes the pins of other builds' programs (keepDir stays) and temporary
 * directories of loaders that no longer run. Attached filters keep their
 * programs alive; only the names go. Returns the removed paths.
 */
export function removeStaleSharedLxc(pinRoot: string, keepDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(pinRoot);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const removed: string[] = [];
  for (const name of names) {
    const path = join(pinRoot, name);
    const stale = name.startsWith(TMP_PREFIX) ? !processAlive(Number(name.slice(TMP_PREFIX.length).split('-')[0]))
      : name.startsWith(DIR_PREFIX) && path !== keepDir;
    if (!stale) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** sl_lxc_v1 opened from its pin; close() releases our fd. */
export interface PinnedLxcInterfaces {
  readonly map: LxcInterfacesMap;
  close(): void;
}

/** Opens pinRoot's sl_lxc_v1, or undefined when it was never pinned (no shared load there yet). */
export function openPinnedLxcInterfaces(pinRoot: string): PinnedLxcInterfaces | undefined {
  let raw: PinnedMap;
  try {
    raw = openPinnedMap(join(pinRoot, LXC_IFACES_LAYOUT.name));
  } catch (e) {
    if (isBpfError(e) && e.errno === constants.errno.ENOENT) return undefined;
    throw e;
  }
  try {
    return { map: openLxcInterfaces(raw), close: () => raw.close() };
  } catch (e) {
    raw.close();
    throw e;
  }
}

/** One sl_lxc_v1 entry to delete. */
export interface LxcEntryRelease {
  readonly ifindex: number;
  /** Delete only while the entry still names this endpoint id (undefined: whatever it names). */
  readonly endpointId?: number;
}

/**
 * Deletes sl_lxc_v1 entries: the one place that removes any (CNI DEL and a
 * failed ADD after their veth is gone, CNI GC, the agent's endpoint sweep,
 * and through releaseFrom the agent's lxc-interfaces owner).
 * Each entry goes only if it is there and, when endpointId is given, still
 * names that endpoint: an interface re-registered meanwhile keeps its new
 * entry. Returns the ifindexes whose entries were removed; none when the map
 * was never pinned under pinRoot (no shared load there yet).
 */
export function releaseLxcInterfaces(pinRoot: string, entries: readonly LxcEntryRelease[]): number[] {
  if (entries.length === 0) return [];
  const ifaces = openPinnedLxcInterfaces(pinRoot);
  if (ifaces === undefined) return [];
  try {
    return releaseFrom(ifaces.map, entries);
  } finally {
    ifaces.close();
  }
}

/** What releaseFrom needs of sl_lxc_v1 (the typed map; the agent's owner passes its own). */
export interface LxcEntryStore {
  lookup(ifindex: number): EndpointConfig | undefined;
  delete(ifindex: number): boolean;
}

/** releaseLxcInterfaces on an open map: the agent's lxc-interfaces owner deletes through it too. */
export function releaseFrom(map: LxcEntryStore, entries: readonly LxcEntryRelease[]): number[] {
  const removed: number[] = [];
  for (const e of entries) {
    if (e.endpointId !== undefined && map.lookup(e.ifindex)?.endpointId !== e.endpointId) continue;
    if (map.delete(e.ifindex)) removed.push(e.ifindex);
  }
  return removed;
}
