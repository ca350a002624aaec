/**
 * Links as the CNI sees them, through rtnetlink from the native addon
 * (native/src/rtnl.cc), loaded on first use: the veth plumbing of ADD (each
 * request acked before the next), the deletes of DEL, and the reads of
 * CHECK and GC (the pod end's link, addresses and routes; every host link).
 * No `ip` process runs. Creates, deletes and dumps, which block for RCU
 * grace periods or many datagrams, run on threads of their own
 * (native/src/own_thread.h), not on libuv's pool; configuring the pod end and
 * looking up one link are short and run on the calling thread (which enters
 * the pod's netns and is back in its own before any JS runs).
 *
 * Errors are RtnlError: the step that failed and the errno text, which
 * says() matches ("File exists").
 */
import type { NativeAddon, NativeLink, NativePodRequest, NativePodView, NativeVethRequest } from '../datapath/addon.js';
import { CniCode, CniError } from './errors.js';

export type VethRequest = NativeVethRequest;
export type PodRequest = NativePodRequest;

/** A host link as ADD, CHECK and DEL need it. */
export interface HostLink {
  readonly ifindex: number;
  readonly mac: string;
  readonly mtu: number;
  readonly up: boolean;
  readonly alias: string | undefined;
  readonly kind: string | undefined;
}

/** One entry of a link listing (GC, the agent's endpoint sweep). */
export interface LinkSummary {
  readonly ifindex: number;
  readonly ifname: string;
  readonly alias: string | undefined;
}

/** The pod end as CHECK sees it; routes: IPv4, main table, through the interface ("default" or a CIDR, a /32 without its length). */
export interface PodView {
  readonly exists: boolean;
  readonly mac?: string;
  readonly mtu?: number;
  readonly up?: boolean;
  readonly kind?: string;
  readonly addresses: readonly string[];
  readonly routes: readonly { dst: string; gateway?: string }[];
}

export interface NetlinkOps {
  createVeth(r: VethRequest): Promise<HostLink>;
  configurePod(r: PodRequest): Promise<void>;
  /** undefined when there is no such link. */
  linkGet(name: string): Promise<HostLink | undefined>;
  /** false when there was no such link. */
  linkDel(name: string): Promise<boolean>;
  /** Every link of our namespace, or of netns (a path). */
  listLinks(netns?: string): Promise<LinkSummary[]>;
  /** The pod end as CHECK sees it; exists false when netns has no such interface. */
  inspectPod(netns: string, ifname: string): Promise<PodView>;
}

export class RtnlError extends CniError {
  constructor(
    readonly errno: number,
    readonly detail: string,
  ) {
    super(CniCode.INTERNAL, `netlink [${detail}]`);
  }

  /** The errno text (or the kernel's message) contains this. */
  says(text: string): boolean {
    return this.detail.includes(text);
  }
}

function toHostLink(l: NativeLink): HostLink {
  return { ifindex: l.ifindex, mac: l.mac ?? '', mtu: l.mtu ?? 0, up: l.up, alias: l.alias, kind: l.kind };
}

function toSummary(l: NativeLink): LinkSummary {
  return { ifindex: l.ifindex, ifname: l.name, alias: l.alias };
}

function toPodView(v: NativePodView): PodView {
  const l = v.link;
  if (l === undefined) return { exists: false, addresses: [], routes: [] };
  return { exists: true, mac: l.mac ?? '', mtu: l.mtu ?? 0, up: l.up, kind: l.kind ?? '', addresses: v.addresses, routes: v.routes };
}

/** The addon's rtnl errors as RtnlError; anything else as it is. */
function rtnlError(e: unknown): unknown {
  const err = e as { errno?: unknown; op?: unknown; message?: string };
  return err.op === 'rtnl' ? new RtnlError(typeof err.errno === 'number' ? err.errno : 0, err.message ?? String(e)) : e;
}

async function call<T>(f: (a: NativeAddon) => T | Promise<T>): Promise<T> {
  const { addon } = await import('../datapath/addon.js');
  const a = addon();
  try {
    return await f(a);
  } catch (e) {
    throw rtnlError(e);
  }
}

export const netlinkOps: NetlinkOps = {
  createVeth: async (r) => toHostLink(await call((a) => a.rtnlCreateVeth(r))),
  configurePod: (r) => call((a) => a.rtnlConfigurePod(r)),
  linkGet: async (name) => {
    const l = await call((a) => a.rtnlLinkGet(name));
    return l === undefined ? undefined : toHostLink(l);
  },
  linkDel: (name) => call((a) => a.rtnlLinkDel(name)),
  listLinks: async (netns) => (await call((a) => a.rtnlLinkList(netns))).map(toSummary),
  inspectPod: async (netns, ifname) => toPodView(await call((a) => a.rtnlPodView(netns, ifname))),
};

/**
 * The link listing for a synchronous caller (the agent's endpoint sweep),
 * through an addon it has loaded: the addon's own thread reads, the caller waits.
 */
export function linkListerSync(a: NativeAddon): (netns?: string) => LinkSummary[] {
  return (netns) => {
    try {
      return a.rtnlLinkListSync(netns).map(toSummary);
    } catch (e) {
      throw rtnlError(e);
    }
  };
}
