/**
 * The veth plumbing as rtnetlink requests from the native addon
 * (native/src/rtnl.cc) instead of `ip -batch` children: the same steps in the
 * same order, each acked before the next; and the reads of CHECK and GC (the
 * pod end's link, addresses and routes; every host link) as dumps with the
 * same answers as the `ip` path's. Selected per invocation
 * (SLUICE_CNI_NETLINK=0 keeps the `ip` path); the addon is loaded on first use.
 *
 * Errors keep the `ip` path's shape: they name the step (as its `ip` line)
 * and carry the errno text, and says() answers the same questions
 * ("File exists") that wiring.ts asks of an IpCommandError.
 */
import type { NativeAddon, NativeLink, NativePodRequest, NativePodView, NativeVethRequest } from '../datapath/addon.js';
import type { LinkSummary } from './host-links.js';
import type { HostLink, PodView } from './wiring.js';
import { CniCode, CniError } from './errors.js';

export type VethRequest = NativeVethRequest;
export type PodRequest = NativePodRequest;

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

/** The netlink path unless SLUICE_CNI_NETLINK=0 (in the invocation's env or ours). */
export function netlinkEnabled(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env['SLUICE_CNI_NETLINK'] ?? process.env['SLUICE_CNI_NETLINK']) !== '0';
}
