/**
 * The host side's links as seen by anyone who has to decide whether an
 * attachment still exists without state of its own: the CNI's GC (which
 * sl_lxc_v1 entries still have their veth) and the agent's endpoint sweep
 * (which registered endpoints lost their veth). One RTM_GETLINK dump from the
 * addon (rtnl.ts), in our own namespace or, for an agent that runs
 * elsewhere, in the node's namespace given by path (read on an addon thread
 * that enters it; the threads that run JS never change namespace).
 */
import type { NativeAddon } from '../datapath/addon.js';
import type { Attachment } from './config.js';
import { CniCode, CniError } from './errors.js';
import { VETH_ALIAS_PREFIX, vethAlias } from './names.js';
import { linkListerSync, netlinkOps, type LinkSummary } from './rtnl.js';

/**
 * Every link of the namespace (the CNI's GC, which may run inside the agent:
 * the dump runs on an addon thread). Throws when the listing fails or comes
 * back without even `lo`: an empty answer must never read as "every veth is
 * gone".
 */
export async function listHostLinks(netns?: string): Promise<LinkSummary[]> {
  return nonEmpty(await netlinkOps.listLinks(netns), netns);
}

/**
 * The same, synchronously, for the agent's periodic sweep (its callers'
 * interface is synchronous), through the addon the caller has loaded.
 */
export function listHostLinksSync(a: NativeAddon, netns?: string): LinkSummary[] {
  return nonEmpty(linkListerSync(a)(netns), netns);
}

function nonEmpty(links: LinkSummary[], netns: string | undefined): LinkSummary[] {
  if (links.length === 0) {
    throw new CniError(CniCode.INTERNAL, `link dump${netns !== undefined ? ` in ${netns}` : ''} listed no link at all (not even lo)`);
  }
  return links;
}

/** Ifindexes of our host veths (alias "sluice <hash>"). */
export function ourVethIfindexes(links: readonly LinkSummary[]): Set<number> {
  return new Set(links.filter((l) => l.alias?.startsWith(VETH_ALIAS_PREFIX) === true).map((l) => l.ifindex));
}

/**
 * Whether the attachment's host veth is among the links: by its name (which
 * a rerun ADD's replacement veth keeps) or by its ifindex carrying the
 * attachment's alias. A link that merely reuses the ifindex does not count.
 */
export function hasHostVeth(links: readonly LinkSummary[], a: Attachment, hostIfname: string, hostIfindex: number): boolean {
  const alias = vethAlias(a);
  return links.some((l) => l.ifname === hostIfname || (l.ifindex === hostIfindex && l.alias === alias));
}
