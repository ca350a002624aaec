/**
 * The node's socket load balancer (bpf/sock.c): its four programs loaded
 * with the node's network namespace cookie, sharing the load balancer's maps
 * of the node's pin root, and attached to a cgroup v2 directory by BPF links
 * pinned next to those maps. A pinned link outlives the agent (the node's
 * own sockets keep reaching Services while it restarts); the next agent
 * swaps its program in place (bpf_link_update). Removing the pins (detach,
 * or the pin root going away) detaches.
 */
import { closeSync, existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addon, type CgroupSockHook } from './addon.js';
import { openObject } from './bpf-object.js';
import { openPinnedMap, type PinnedMap } from './bpf-map.js';
import type { LoadedObject } from './api.js';
import { LB_SOCK_LAYOUT, openLbSock, udpSocketsOf, type GoneUdpBackend, type LbSockMap } from './maps/lb-sock.js';

export const SOCK_OBJECT_PATH = fileURLToPath(new URL('../../../build/bpf/sock.o', import.meta.url));
export const SOCK_HOOKS: readonly CgroupSockHook[] = ['connect4', 'sendmsg4', 'recvmsg4', 'getpeername4'];
const PROGRAM_OF: Readonly<Record<CgroupSockHook, string>> = {
  connect4: 'sock_connect4', sendmsg4: 'sock_sendmsg4', recvmsg4: 'sock_recvmsg4', getpeername4: 'sock_getpeername4',
};

/** Where a hook's link is pinned in the node's pin root. */
export const sockLinkPin = (pinRoot: string, hook: CgroupSockHook): string => join(pinRoot, `sock_${hook}`);

/** The network namespace cookie of the calling process (its main thread). */
export function netnsCookie(): bigint {
  return addon().netnsCookie();
}

export interface LoadSockLbOptions {
  /** Sockets of this network namespace are load-balanced (netnsCookie() of the node's namespace). */
  readonly hostNetnsCookie: bigint;
  readonly pinRoot?: string;
  readonly objectPath?: string;
}

/** Loads sock.o for a node; the caller closes it (attached links keep their programs). */
export function loadSockLb(opts: LoadSockLbOptions): LoadedObject {
  const cookie = Buffer.alloc(8);
  cookie.writeBigUInt64LE(opts.hostNetnsCookie);
  return openObject(opts.objectPath ?? SOCK_OBJECT_PATH, {
    ...(opts.pinRoot !== undefined ? { pinRoot: opts.pinRoot } : {}),
    globals: { SOCK_HOST_NETNS_COOKIE: cookie },
  });
}

/** A hook's link as pinned: its program and cgroup. */
export interface SockLinkState {
  readonly hook: CgroupSockHook;
  readonly progId: number;
  readonly cgroupId: bigint;
}

/** The cgroup id of a cgroup v2 directory (its inode number). */
export function cgroupIdOf(cgroupPath: string): bigint {
  return statSync(cgroupPath, { bigint: true }).ino;
}

/**
 * Attaches every hook of `object` to the cgroup: a link pinned for that
 * cgroup gets the new program in place; one pinned for another cgroup is
 * replaced by a new link. Returns the links' state.
 */
export function attachSockLb(object: LoadedObject, cgroupPath: string, pinRoot: string): SockLinkState[] {
  const a = addon();
  const wanted = cgroupIdOf(cgroupPath);
  return SOCK_HOOKS.map((hook) => {
    const prog = object.program(PROGRAM_OF[hook]);
    const pin = sockLinkPin(pinRoot, hook);
    let fd: number | undefined;
    try {
      if (existsSync(pin)) {
        fd = a.objGet(pin);
        if (a.linkInfo(fd).cgroupId === wanted) a.linkUpdate(fd, prog.fd);
        else {
          closeSync(fd);
          fd = undefined;
          rmSync(pin, { force: true });
        }
      }
      if (fd === undefined) {
        fd = a.cgroupLinkCreate(prog.fd, cgroupPath, hook);
        a.objPin(fd, pin);
      }
      const info = a.linkInfo(fd);
      return { hook, progId: info.progId, cgroupId: info.cgroupId };
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  });
}

/** The pinned links' state (hooks without a pin are left out). */
export function sockLbAttached(pinRoot: string): SockLinkState[] {
  const a = addon();
  return SOCK_HOOKS.flatMap((hook) => {
    const pin = sockLinkPin(pinRoot, hook);
    if (!existsSync(pin)) return [];
    const fd = a.objGet(pin);
    try {
      const info = a.linkInfo(fd);
      return [{ hook, progId: info.progId, cgroupId: info.cgroupId }];
    } finally {
      closeSync(fd);
    }
  });
}

/** Detaches: removes the links' pins (a link whose last reference goes detaches). Returns the hooks that were attached. */
export function detachSockLb(pinRoot: string): CgroupSockHook[] {
  return SOCK_HOOKS.filter((hook) => {
    const pin = sockLinkPin(pinRoot, hook);
    if (!existsSync(pin)) return false;
    rmSync(pin, { force: true });
    return true;
  });
}

/**
 * The node's connected UDP sockets whose backend left its Service. connect()
 * gave such a socket the backend itself, and no later datagram passes a hook
 * that could move it (an unconnected send is balanced per datagram): the
 * socket would keep sending to a server that is gone. kube-proxy moves such
 * flows by deleting their conntrack entries; here the socket is closed
 * instead (SOCK_DESTROY), as Cilium's socket load balancer does: its owner's
 * next receive fails with ECONNABORTED, and a new connect() picks a live
 * backend. Works on the calling thread's network namespace, which must be
 * the one whose sockets are balanced (the agent's). TCP is left alone: a
 * gone server answers with a reset or the connection times out.
 */
export class HostUdpSockets {
  private readonly raw: PinnedMap;
  private readonly map: LbSockMap;

  /** Opens the socket load balancer's map in the pin root (it is there once attachSockLb has run). */
  constructor(pinRoot: string) {
    this.raw = openPinnedMap(join(pinRoot, LB_SOCK_LAYOUT.name));
    try {
      this.map = openLbSock(this.raw);
    } catch (e) {
      this.raw.close();
      throw e;
    }
  }

  /**
   * Closes the sockets given one of these backends through its Service's
   * frontends and deletes their entries. Returns how many sockets it closed.
   * Cost: one pass over sl_lb_sock_v1 (at most its 64 Ki entries) and one
   * listing of the namespace's connected UDP sockets, only in a round that
   * deletes UDP backends.
   */
  terminate(gone: readonly GoneUdpBackend[]): number {
    const keys = udpSocketsOf(this.map, gone);
    if (keys.length === 0) return 0;
    const closed = addon().destroyUdpSockets([...new Set(keys.map((k) => k.cookie))]);
    for (const k of keys) this.map.delete(k);
    return closed;
  }

  close(): void {
    this.raw.close();
  }
}
