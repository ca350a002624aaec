/**
 * The endpoint sweep's view of a real node (sweep.ts holds the decisions):
 *
 * - links: an RTM_GETLINK dump from the addon in the namespace that holds
 *   the host veths —
 *   the agent's own by default (on a node the agent and the CNI both run in
 *   the host netns), or `hostNetns` (a path) when the agent runs elsewhere,
 *   as in the CNI tests where a netns plays the node. The registry records
 *   the host ifindex and name, not the namespace: they are the node's.
 * - netns: stat(2) of CNI_NETNS in the agent's mount namespace (the agent
 *   must see /var/run/netns; a path it cannot see would only ever look
 *   gone, so the veth evidence is required as well).
 * - sl_lxc_v1 under the agent's pin dir (the CNI's pinRoot), deleted through
 *   the map's one deletion path (releaseLxcInterfaces) only while it names
 *   the endpoint id being swept.
 * - IPAM: the CNI's lock-free symlink store (src/cni/ipam.ts) under
 *   `ipamDataDir` (the CNI's ipam.dataDir). The registration does not name
 *   the CNI network, so every network directory is looked at; a link is
 *   removed only when it is named after the endpoint's address and points
 *   at its attachment.
 */
import { readdirSync, statSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import { hasHostVeth, listHostLinksSync } from '../../cni/host-links.js';
import { IpamStore } from '../../cni/ipam.js';
import { addon } from '../../datapath/addon.js';
import { releaseLxcInterfaces } from '../../datapath/lxc-shared.js';
import type { EndpointRecord } from '../../endpoint/contract.js';
import type { LinkSnapshot, SweepHost } from './sweep.js';

export interface NodeSweepHostOptions {
  /** Path of the namespace holding the host veths; undefined: the agent's own. */
  readonly hostNetns?: string;
  /** The agent's pin dir (the CNI's pinRoot). */
  readonly pinDir: string;
  /** The CNI's ipam.dataDir. */
  readonly ipamDataDir: string;
}

export function nodeSweepHost(o: NodeSweepHostOptions): SweepHost {
  return {
    snapshotLinks(): LinkSnapshot {
      const links = listHostLinksSync(addon(), o.hostNetns);
      return { hasHostVeth: (e) => hasHostVeth(links, e, e.hostIfname, e.hostIfindex) };
    },
    netnsExists(path: string): boolean {
      return statSync(path, { throwIfNoEntry: false }) !== undefined;
    },
    releaseLxcEntry(ifindex: number, endpointId: number): boolean {
      return releaseLxcInterfaces(o.pinDir, [{ ifindex, endpointId }]).length > 0;
    },
    releaseAddress(ip: string, e: EndpointRecord): boolean {
      let released = false;
      for (const network of ipamNetworks(o.ipamDataDir)) {
        if (IpamStore.forNetwork(o.ipamDataDir, network).releaseAddress(ip, e)) released = true;
      }
      return released;
    },
  };
}

function ipamNetworks(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return []; // no CNI ADD on this node yet
    throw new Error(`cannot read the IPAM directory ${dataDir}: ${(e as Error).message}`, { cause: e });
  }
}
