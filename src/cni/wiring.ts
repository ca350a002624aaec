/**
 * The pod's plumbing: a veth pair whose host end stays in our namespace and
 * whose peer is created directly inside the pod's netns under CNI_IFNAME
 * (nothing ever appears under a temporary name), then addresses, routes and
 * neighbours, all as rtnetlink requests (rtnl.ts). Pure L3 towards the pod,
 * as the lab does:
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
 * end down and the host end up with its routes and neighbours (a veth has no
 * carrier while its peer is down, so nothing flows) → (caller: register with
 * the agent, attach tc on the host end) → pod end up with its addresses and
 * routes (carrier: traffic can flow only now). The host veth carries the
 * attachment's alias (names.ts), so a rerun ADD or a DEL recognises its own
 * veth and never removes another's.
 */
import type { Attachment } from './config.js';
import { CniCode, CniError } from './errors.js';
import { GATEWAY_V4, vethAlias, type AttachmentNames } from './names.js';
import { netlinkOps as rtnl, RtnlError, type HostLink, type PodView } from './rtnl.js';

export interface VethPlan extends AttachmentNames {
  readonly attachment: Attachment;
  readonly netns: string;
  readonly podIfname: string;
  readonly mtu: number;
  /** CIDRs as put on the pod interface ("10.1.0.7/32"). */
  readonly addresses: readonly string[];
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
export async function createVeth(p: VethPlan): Promise<CreatedVeth> {
  let replacedIfindex: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const link = await rtnl.createVeth({
        hostIfname: p.hostIfname, podIfname: p.podIfname, netns: p.netns, mtu: p.mtu, hostMac: p.hostMac, podMac: p.podMac,
        alias: vethAlias(p.attachment), addresses: p.addresses,
      });
      return replacedIfindex === undefined ? link : { ...link, replacedIfindex };
    } catch (e) {
      if (!(e instanceof RtnlError) || !e.says('File exists') || attempt > 0) throw e;
      const existing = await hostLink(p.hostIfname);
      if (existing === undefined) {
        throw new CniError(CniCode.INTERFACE_EXISTS,
          `an interface named ${p.podIfname} already exists in ${p.netns}; choose another CNI_IFNAME or remove it`);
      }
      if (existing.alias !== vethAlias(p.attachment)) {
        throw new CniError(CniCode.INTERFACE_EXISTS,
          `host interface ${p.hostIfname} exists and is not this attachment's (alias ${JSON.stringify(existing.alias ?? '')}); remove it if it is stale`);
      }
      await rtnl.linkDel(p.hostIfname); // our own leftover from an interrupted ADD
      replacedIfindex = existing.ifindex;
    }
  }
}

/** Pod end: addresses, up, routes via the link-local gateway, static neighbour. */
export function configurePod(p: VethPlan): Promise<void> {
  return rtnl.configurePod({ netns: p.netns, podIfname: p.podIfname, addresses: p.addresses, gateway: GATEWAY_V4, hostMac: p.hostMac });
}

/** The host link by name, or undefined when there is none. */
export function hostLink(name: string): Promise<HostLink | undefined> {
  return rtnl.linkGet(name);
}

export interface DeletedVeth {
  readonly outcome: 'deleted' | 'absent' | 'foreign';
  /** The deleted veth's ifindex (its sl_lxc_v1 entry is now stale). */
  readonly ifindex?: number;
}

/** Removes the attachment's host veth if it is ours (alias); the pod end goes with it. */
export async function deleteVeth(hostIfname: string, a: Attachment): Promise<DeletedVeth> {
  const link = await hostLink(hostIfname);
  if (link === undefined) return { outcome: 'absent' };
  if (link.alias !== vethAlias(a)) return { outcome: 'foreign' };
  return (await rtnl.linkDel(hostIfname)) ? { outcome: 'deleted', ifindex: link.ifindex } : { outcome: 'absent' };
}

/** What CHECK needs to see of the pod end: its link, addresses and routes, read inside netns. */
export function inspectPod(netns: string, ifname: string): Promise<PodView> {
  return rtnl.inspectPod(netns, ifname);
}
