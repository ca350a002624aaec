/**
 * The pod's plumbing: a veth pair whose host end stays in our namespace and
 * whose peer is created directly inside the pod's netns under CNI_IFNAME
 * (nothing ever appears under a temporary name), then addresses, routes and
 * neighbours. Pure L3 towards the pod, as the lab does:
 *
 *   pod netns                                host netns (ip_forward=1)
 *   eth0 10.1.0.7/32   ═══ veth ═══          lxc<hash> (no address; tc programs here)
 *   169.254.1.1 dev eth0 scope link          10.1.0.7/32 dev lxc<hash> scope link
 *   default via 169.254.1.1 dev eth0         neigh 10.1.0.7 → pod MAC (permanent)
 *   neigh 169.254.1.1 → host veth MAC (permanent)
 *
 * Static neighbours instead of proxy ARP: no ARP crosses the datapath, the
 * first packet needs no resolution, and the gateway address exists nowhere
 * (every pod uses the same one). IPv6 address generation is off on both ends
 * (addrgenmode none) while the datapath is IPv4-only: no link-local
 * chatter to drop.
 *
 * Order, so that no packet passes unprotected: create the pair with the pod
 * end down and the host end up with its routes and neighbours (rtnetlink
 * from the addon, rtnl.ts, or one `ip` process with SLUICE_CNI_NETLINK=0; a
 * veth has no carrier while its peer is down, so nothing flows)
 * → (caller: register with the agent, attach tc on the host end) → pod end
 * up with its addresses and routes (carrier: traffic can flow only now).
 * The host veth carries an alias with the attachment's full hash, so a rerun
 * ADD or a DEL recognises its own veth and never removes another's.
 */
import { createHash } from 'node:crypto';
import type { Attachment } from './config.js';
import { CniCode, CniError } from './errors.js';
import { IpCommandError, parseJsonOutputs, type IpBatch } from './iproute.js';
import { GATEWAY_V4, type AttachmentNames } from './names.js';
import { RtnlError } from './rtnl.js';

export interface VethPlan extends AttachmentNames {
  readonly attachment: Attachment;
  readonly netns: string;
  readonly podIfname: string;
  readonly mtu: number;
  /** CIDRs as put on the pod interface ("10.1.0.7/32"). */
  readonly addresses: readonly string[];
}

export interface HostLink {
  readonly ifindex: number;
  readonly mac: string;
  readonly mtu: number;
  readonly up: boolean;
  readonly alias: string | undefined;
  readonly kind: string | undefined;
}

export const VETH_ALIAS_PREFIX = 'sluice ';

/** The alias that marks a host veth as this attachment's. */
export function vethAlias(a: Attachment): string {
  return `${VETH_ALIAS_PREFIX}${createHash('sha256').update(`${a.containerId}/${a.ifname}`).digest('hex')}`;
}

/** The new host end; replacedIfindex: the leftover veth of a crashed ADD it replaced (its sl_lxc_v1 entry is stale). */
export interface CreatedVeth extends HostLink {
  readonly replacedIfindex?: number;
}

/**
 * Creates the pair, the pod end down; the host end up with a route and a
 * neighbour per pod address (no carrier until the pod end comes up). Replaces
 * a leftover veth of the same attachment (crashed ADD).
 */
export async function createVeth(ipBatch: IpBatch, p: VethPlan): Promise<CreatedVeth> {
  const dev = p.hostIfname;
  const nl = ipBatch.netlink;
  const lines = [
    `link add ${dev} mtu ${p.mtu} address ${p.hostMac} type veth peer name ${p.podIfname} mtu ${p.mtu} address ${p.podMac} netns ${p.netns}`,
    `link set dev ${dev} alias "${vethAlias(p.attachment)}"`,
    `link set dev ${dev} addrgenmode none`,
    // A route needs its device up (ENETDOWN otherwise); the carrier waits for the pod end.
    `link set dev ${dev} up`,
    ...p.addresses.flatMap((cidr) => {
      const ip = cidr.split('/')[0] ?? cidr;
      return [`route replace ${ip} dev ${dev} scope link`, `neigh replace ${ip} lladdr ${p.podMac} dev ${dev} nud permanent`];
    }),
    `link show dev ${dev}`,
  ];
  let replacedIfindex: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const link = nl !== undefined
        ? await nl.createVeth({
          hostIfname: dev, podIfname: p.podIfname, netns: p.netns, mtu: p.mtu, hostMac: p.hostMac, podMac: p.podMac,
          alias: vethAlias(p.attachment), addresses: p.addresses,
        })
        : toHostLink(parseJsonOutputs(await ipBatch(lines, { json: true, details: true }))[0]?.[0]);
      return replacedIfindex === undefined ? link : { ...link, replacedIfindex };
    } catch (e) {
      if (!(e instanceof IpCommandError || e instanceof RtnlError) || !e.says('File exists') || attempt > 0) throw e;
      const existing = await hostLink(ipBatch, p.hostIfname);
      if (existing === undefined) {
        throw new CniError(CniCode.INTERFACE_EXISTS,
          `an interface named ${p.podIfname} already exists in ${p.netns}; choose another CNI_IFNAME or remove it`);
      }
      if (existing.alias !== vethAlias(p.attachment)) {
        throw new CniError(CniCode.INTERFACE_EXISTS,
          `host interface ${p.hostIfname} exists and is not this attachment's (alias ${JSON.stringify(existing.alias ?? '')}); remove it if it is stale`);
      }
      await deleteLink(ipBatch, p.hostIfname); // our own leftover from an interrupted ADD
      replacedIfindex = existing.ifindex;
    }
  }
}

/** Pod end: addresses, up, routes via the link-local gateway, static neighbour. */
export async function configurePod(ipBatch: IpBatch, p: VethPlan): Promise<void> {
  const dev = p.podIfname;
  if (ipBatch.netlink !== undefined) {
    await ipBatch.netlink.configurePod({ netns: p.netns, podIfname: dev, addresses: p.addresses, gateway: GATEWAY_V4, hostMac: p.hostMac });
    return;
  }
  await ipBatch([
    `link set dev ${dev} addrgenmode none`,
    ...p.addresses.map((a) => `addr replace ${a} dev ${dev}`),
    `neigh replace ${GATEWAY_V4} lladdr ${p.hostMac} dev ${dev} nud permanent`,
    `link set dev ${dev} up`,
    `route replace ${GATEWAY_V4}/32 dev ${dev} scope link`,
    `route replace default via ${GATEWAY_V4} dev ${dev}`,
  ], { netns: p.netns });
}

/** The host link by name, or undefined when there is none. */
export async function hostLink(ipBatch: IpBatch, name: string): Promise<HostLink | undefined> {
  if (ipBatch.netlink !== undefined) return ipBatch.netlink.linkGet(name);
  try {
    return toHostLink(parseJsonOutputs(await ipBatch([`link show dev ${name}`], { json: true, details: true }))[0]?.[0]);
  } catch (e) {
    if (e instanceof IpCommandError && e.says('does not exist')) return undefined;
    throw e;
  }
}

/** Deletes a link (its veth peer, routes and tc filters go with it); false when it was not there. */
export async function deleteLink(ipBatch: IpBatch, name: string): Promise<boolean> {
  if (ipBatch.netlink !== undefined) return ipBatch.netlink.linkDel(name);
  try {
    await ipBatch([`link del dev ${name}`]);
    return true;
  } catch (e) {
    if (e instanceof IpCommandError && (e.says('Cannot find device') || e.says('does not exist'))) return false;
    throw e;
  }
}

export interface DeletedVeth {
  readonly outcome: 'deleted' | 'absent' | 'foreign';
  /** The deleted veth's ifindex (its sl_lxc_v1 entry is now stale). */
  readonly ifindex?: number;
}

/** Removes the attachment's host veth if it is ours (alias); the pod end goes with it. */
export async function deleteVeth(ipBatch: IpBatch, hostIfname: string, a: Attachment): Promise<DeletedVeth> {
  const link = await hostLink(ipBatch, hostIfname);
  if (link === undefined) return { outcome: 'absent' };
  if (link.alias !== vethAlias(a)) return { outcome: 'foreign' };
  return (await deleteLink(ipBatch, hostIfname)) ? { outcome: 'deleted', ifindex: link.ifindex } : { outcome: 'absent' };
}

export interface PodView {
  readonly exists: boolean;
  readonly mac?: string;
  readonly mtu?: number;
  readonly up?: boolean;
  readonly kind?: string;
  readonly addresses: readonly string[];
  readonly routes: readonly { dst: string; gateway?: string }[];
}

/** What CHECK needs to see of the pod end: three dumps on an addon thread inside netns, or one nsenter of `ip`. */
export async function inspectPod(ipBatch: IpBatch, netns: string, ifname: string): Promise<PodView> {
  if (ipBatch.netlink !== undefined) return ipBatch.netlink.inspectPod(netns, ifname);
  let out: unknown[][];
  try {
    out = parseJsonOutputs(await ipBatch([`addr show dev ${ifname}`, `route show dev ${ifname}`], { netns, json: true, details: true }));
  } catch (e) {
    if (e instanceof IpCommandError && e.says('does not exist')) return { exists: false, addresses: [], routes: [] };
    throw e;
  }
  const link = (out[0]?.[0] ?? {}) as Record<string, unknown>;
  const addrInfo = Array.isArray(link['addr_info']) ? (link['addr_info'] as Record<string, unknown>[]) : [];
  const routes = (out[1] ?? []) as Record<string, unknown>[];
  return {
    exists: true,
    mac: String(link['address']),
    mtu: Number(link['mtu']),
    up: Array.isArray(link['flags']) && (link['flags'] as unknown[]).includes('UP'),
    kind: (link['linkinfo'] as { info_kind?: string } | undefined)?.info_kind ?? '',
    addresses: addrInfo.map((a) => `${String(a['local'])}/${String(a['prefixlen'])}`),
    routes: routes.map((r) => ({
      dst: r['dst'] === 'default' ? 'default' : String(r['dst']),
      ...(typeof r['gateway'] === 'string' ? { gateway: r['gateway'] } : {}),
    })),
  };
}

function toHostLink(raw: unknown): HostLink {
  const o = (raw ?? {}) as Record<string, unknown>;
  if (typeof o['ifindex'] !== 'number') throw new CniError(CniCode.INTERNAL, `ip link show: unexpected output ${JSON.stringify(raw)}`);
  return {
    ifindex: o['ifindex'],
    mac: String(o['address']),
    mtu: Number(o['mtu']),
    up: Array.isArray(o['flags']) && (o['flags'] as unknown[]).includes('UP'),
    alias: typeof o['ifalias'] === 'string' ? o['ifalias'] : undefined,
    kind: (o['linkinfo'] as { info_kind?: string } | undefined)?.info_kind,
  };
}
