/**
 * The host side's links as seen by anyone who has to decide whether an
 * attachment still exists without state of its own: the CNI's GC (which
 * sl_lxc_v1 entries still have their veth) and the agent's endpoint sweep
 * (which registered endpoints lost their veth). One RTM_GETLINK dump from the
 * addon (rtnl.ts), or with SLUICE_CNI_NETLINK=0 one `ip -j -d link show`, in
 * our own namespace or, for an agent that runs elsewhere, in the node's
 * namespace given by path (an addon thread of its own or an nsenter child;
 * this process's threads that run JS never change namespace).
 */
import { CniCode, CniError } from './errors.js';
import { spawnSync } from 'node:child_process';
import { parseJsonOutputs, type IpBatch } from './iproute.js';
import { VETH_ALIAS_PREFIX, vethAlias } from './wiring.js';
import type { Attachment } from './config.js';

export interface LinkSummary {
  readonly ifindex: number;
  readonly ifname: string;
  readonly alias: string | undefined;
}

/**
 * Every link of the namespace, through the caller's rtnetlink ops or its
 * `ip` runner (the CNI's GC, which may run inside the agent: never a
 * synchronous child there). Throws when the listing fails or comes back
 * without even `lo`: an empty answer must never read as "every veth is gone".
 */
export async function listHostLinks(ip: IpBatch, netns?: string): Promise<LinkSummary[]> {
  if (ip.netlink !== undefined) return nonEmpty(await ip.netlink.listLinks(netns), netns);
  return linksOf(await ip(['link show'], { json: true, details: true, ...(netns !== undefined ? { netns } : {}) }), netns);
}

/**
 * The same, synchronously, for the agent's periodic sweep (its callers'
 * interface is synchronous): through netlink (rtnl.ts linkListerSync) when
 * given, else one short `ip` child every sweep interval.
 */
export function listHostLinksSync(netns?: string, netlink?: (netns?: string) => LinkSummary[]): LinkSummary[] {
  if (netlink !== undefined) return nonEmpty(netlink(netns), netns);
  const argv = [...(netns !== undefined ? ['nsenter', `--net=${netns}`] : []), 'ip', '-j', '-d', 'link', 'show'];
  const [file, ...args] = argv as [string, ...string[]];
  const r = spawnSync(file, args, { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    throw new CniError(CniCode.INTERNAL, `${argv.join(' ')}: ${(r.stderr || r.error?.message || `exit ${String(r.status)}`).trim()}`);
  }
  return linksOf(r.stdout, netns);
}

function linksOf(stdout: string, netns: string | undefined): LinkSummary[] {
  const raw = parseJsonOutputs(stdout)[0] ?? [];
  const out: LinkSummary[] = [];
  for (const r of raw) {
    const o = (r ?? {}) as Record<string, unknown>;
    if (typeof o['ifindex'] !== 'number' || typeof o['ifname'] !== 'string') continue;
    out.push({ ifindex: o['ifindex'], ifname: o['ifname'], alias: typeof o['ifalias'] === 'string' ? o['ifalias'] : undefined });
  }
  return nonEmpty(out, netns);
}

function nonEmpty(links: LinkSummary[], netns: string | undefined): LinkSummary[] {
  if (links.length === 0) {
    throw new CniError(CniCode.INTERNAL, `link show${netns !== undefined ? ` in ${netns}` : ''} listed no link at all (not even lo)`);
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
