/**
 * Loads native/build/Release/sluice_bpf.node and describes its surface. Only
 * the modules of src/datapath/ use this; everything else goes through api.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BpfError, type BpfErrorDetails } from './errors.js';
import type { MapInfo, TcDirection } from './api.js';

/** The cgroup socket hooks bpf/sock.c has a program for. */
export type CgroupSockHook = 'connect4' | 'sendmsg4' | 'recvmsg4' | 'getpeername4';

export interface NativeObject {
  maps(): Array<{ name: string; fd: number }>;
  programs(): Array<{ name: string; section: string; fd: number; type: number; id: number }>;
  close(): void;
}

export interface NativeMap {
  readonly fd: number;
  readonly info: MapInfo;
  /** Bytes of a value as user space sees it (per-CPU: 8-aligned slot × possible CPUs). */
  readonly valueBytes: number;
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer, flags: number): void;
  delete(key: Buffer): boolean;
  nextKey(key: Buffer | undefined): Buffer | undefined;
  updateBatch(keys: readonly Buffer[], values: readonly Buffer[], flags: number): number;
  deleteBatch(keys: readonly Buffer[]): number;
  /** One BPF_MAP_UPDATE_BATCH of keys and values each packed in one Buffer (count = keys.length / keySize). */
  updateBatchPacked(keys: Buffer, values: Buffer, flags: number): number;
  /** Up to `max` entries by BPF_MAP_LOOKUP_BATCH, in the kernel's order, each side packed in one Buffer. */
  lookupBatchPacked(max: number): { readonly keys: Buffer; readonly values: Buffer };
  close(): void;
}

/** What mapCreate makes (bpf_map_create). */
export interface NativeMapSpec {
  readonly type: number;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags?: number;
}

export interface NativeRingBufferReader {
  stop(): void;
}

/** What the native tc functions accept as an interface (see api.ts InterfaceRef). */
export interface NativeIfRef {
  ifname?: string;
  ifindex?: number;
  netns?: string;
}

/** A veth pair for native/src/rtnl.cc: the peer is created in netns (a path) directly. */
export interface NativeVethRequest {
  readonly hostIfname: string;
  readonly podIfname: string;
  readonly netns: string;
  readonly mtu: number;
  readonly hostMac: string;
  readonly podMac: string;
  readonly alias: string;
  /** CIDRs ("10.1.0.7/32"): a host route and a neighbour per address. */
  readonly addresses: readonly string[];
}

/** The pod end's addresses, gateway neighbour and routes, set inside netns. */
export interface NativePodRequest {
  readonly netns: string;
  readonly podIfname: string;
  readonly addresses: readonly string[];
  readonly gateway: string;
  readonly hostMac: string;
}

/** A link as rtnl.cc reports it. */
export interface NativeLink {
  readonly ifindex: number;
  readonly name: string;
  readonly up: boolean;
  readonly mac?: string;
  readonly mtu?: number;
  readonly alias?: string;
  readonly kind?: string;
}

/** What CHECK inspects of the pod end, read inside its netns (the fields `ip addr show` / `route show dev X` print). */
export interface NativePodView {
  /** Absent when the netns has no such interface. */
  readonly link?: NativeLink;
  /** Every family, "local/prefixlen", in the kernel's order. */
  readonly addresses: readonly string[];
  /** IPv4, table main, through the link: dst "default", "a.b.c.d" (a /32) or "a.b.c.d/len". */
  readonly routes: readonly { readonly dst: string; readonly gateway?: string }[];
}

export interface NativeAddon {
  setErrorFactory(factory: (details: BpfErrorDetails) => Error): void;
  numPossibleCpus(): number;
  objGet(path: string): number;
  /** Pins the object behind fd (program or map) at path; the caller keeps fd. */
  objPin(fd: number, path: string): void;
  /** A new map; the caller owns the fd. */
  mapCreate(spec: NativeMapSpec): number;
  /** An fd for the map with this kernel id (e.g. an inner map); the caller owns it. */
  mapFdById(id: number): number;
  /** A new BPF link attaching the program to a cgroup v2 directory at a socket hook; the caller pins or closes the fd. */
  cgroupLinkCreate(progFd: number, cgroupPath: string, attachType: CgroupSockHook): number;
  /** The link runs progFd from now on (atomically). */
  linkUpdate(linkFd: number, progFd: number): void;
  /** A cgroup link's program id and cgroup id (the cgroup directory's inode number). */
  linkInfo(linkFd: number): { readonly progId: number; readonly cgroupId: bigint };
  /** The calling thread's network namespace cookie (SO_NETNS_COOKIE). */
  netnsCookie(): bigint;
  /**
   * Closes the calling thread's network namespace's connected IPv4 UDP sockets with one of these socket cookies
   * (SOCK_DESTROY: the owner's next receive fails with ECONNABORTED); returns how many it closed.
   */
  destroyUdpSockets(cookies: readonly bigint[]): number;
  BpfObject: new (
    path: string,
    pinRoot: string | undefined,
    globals: Readonly<Record<string, Buffer>>,
    maxEntries: Readonly<Record<string, number>>,
  ) => NativeObject;
  BpfMap: new (fd: number, owner: NativeObject | undefined, ownsFd: boolean) => NativeMap;
  RingBufferReader: new (
    mapFd: number,
    onBatch: (records: Buffer[]) => void,
    keepAlive: boolean,
    maxBatch: number,
  ) => NativeRingBufferReader;
  tcHookCreate(ref: NativeIfRef): { ifindex: number; created: boolean };
  tcHookDestroy(ref: NativeIfRef): boolean;
  tcAttach(
    ref: NativeIfRef,
    dir: TcDirection,
    progFd: number,
    handle: number,
    priority: number,
    replace: boolean,
  ): { ifindex: number; progId: number };
  tcDetach(ref: NativeIfRef, dir: TcDirection, handle: number, priority: number): boolean;
  tcQuery(ref: NativeIfRef, dir: TcDirection, handle: number, priority: number): { ifindex: number; progId: number } | undefined;
  testRun(
    progFd: number,
    data: Buffer,
    ctx: Buffer | undefined,
    repeat: number,
    dataOutSize: number,
  ): { retval: number; durationNs: number; data: Buffer };
  /** rtnetlink (native/src/rtnl.cc); failures throw errors with op "rtnl" and errno. */
  rtnlCreateVeth(r: NativeVethRequest): Promise<NativeLink>;
  rtnlConfigurePod(r: NativePodRequest): void;
  rtnlLinkGet(name: string): NativeLink | undefined;
  rtnlLinkDel(name: string): Promise<boolean>;
  /** Every link of our netns, or of netns (a path), read on a thread of its own. */
  rtnlLinkList(netns?: string): Promise<NativeLink[]>;
  /** The same for synchronous callers: the calling thread waits and never changes namespace. */
  rtnlLinkListSync(netns?: string): NativeLink[];
  rtnlPodView(netns: string, ifname: string): Promise<NativePodView>;
  /** Node routing (routes.ts), in the caller's own netns, on the calling thread. */
  rtnlRouteList(protocol: number): NativeRoute[];
  rtnlRouteSet(r: NativeRouteRequest): void;
  rtnlRouteDel(r: { readonly dst: string; readonly protocol: number }): boolean;
  rtnlVxlanCreate(r: NativeVxlanRequest): void;
  rtnlNeighList(ifindex: number, family: number): NativeNeigh[];
  rtnlNeighSet(n: NativeNeighRequest): void;
  rtnlNeighDel(n: NativeNeighRequest): boolean;
}

/** An IPv4 route of table main, as rtnl.cc lists it ("10.1.1.0/24"). */
export interface NativeRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly ifindex: number;
  readonly onlink: boolean;
  readonly mtu?: number;
}

export interface NativeRouteRequest {
  readonly dst: string;
  readonly gateway?: string;
  readonly ifindex?: number;
  readonly protocol: number;
  readonly onlink?: boolean;
  readonly mtu?: number;
}

export interface NativeVxlanRequest {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  /** The local VTEP address (on device). */
  readonly local: string;
  readonly device: string;
  readonly mac: string;
  readonly mtu: number;
}

/** A neighbour (family 2) or FDB entry (family 7: mac → remote VTEP dst). */
export interface NativeNeigh {
  readonly dst?: string;
  readonly mac?: string;
  readonly permanent: boolean;
}

export interface NativeNeighRequest {
  readonly ifindex: number;
  readonly family: number;
  readonly dst: string;
  readonly mac: string;
}

// dist/src/datapath/addon.js and src/datapath/addon.ts are both three levels
// below the repository root.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ADDON_PATH = resolve(ROOT, 'native/build/Release/sluice_bpf.node');

let loaded: NativeAddon | undefined;

/** The addon, loaded on first use (importing datapath types needs no build). */
export function addon(): NativeAddon {
  if (loaded !== undefined) return loaded;
  if (!existsSync(ADDON_PATH)) {
    throw new Error(
      `native addon not built: ${ADDON_PATH} is missing; run npm run setup ` +
        '(or: npx node-gyp rebuild --nodedir=/usr -C native)',
    );
  }
  const require = createRequire(import.meta.url);
  const native = require(ADDON_PATH) as NativeAddon;
  native.setErrorFactory((details) => new BpfError(details));
  loaded = native;
  return native;
}
