/**
 * GC (spec 1.1): the runtime lists every attachment that is still valid
 * (cni.dev/valid-attachments); every attachment this network holds an
 * address for and that is not on the list is removed as DEL would remove it
 * (veth if still there and ours, agent endpoint, address). Attachments are
 * found through the network's IPAM directory, so GC never touches another
 * network's state. Success prints nothing.
 *
 * A config without the key means an empty list: libcni omits an empty list
 * (omitempty) and has already sent DEL for every cached attachment then.
 *
 * Then the node-shared datapath (datapath "bpf"): sl_lxc_v1 entries of
 * interfaces that are no longer one of our host veths (a DEL that found the
 * veth already gone, a crash) and the pinned programs of older lxc.o builds.
 */
import type { CniAgent } from './agent.js';
import type { NetConf } from './config.js';
import { collectInterfaces } from './datapath.js';
import { removeAttachment } from './del.js';
import { listHostLinks, ourVethIfindexes } from './host-links.js';
import { IpamStore, ownerOf, parseOwner } from './ipam.js';

export async function cmdGc(conf: NetConf, agent: CniAgent): Promise<string[]> {
  const keep = new Set((conf.validAttachments ?? []).map(ownerOf));
  const store = IpamStore.forNetwork(conf.ipam.dataDir, conf.name);
  const stale = [...new Set(store.list().map((x) => x.owner))].filter((o) => !keep.has(o));
  const removed: string[] = [];
  for (const owner of stale) {
    const a = parseOwner(owner);
    if (a === undefined) continue; // not an attachment key: not ours to judge
    await removeAttachment(a, store, agent, conf);
    removed.push(owner);
  }
  if (conf.datapath === 'bpf') await collectInterfaces(conf.pinRoot, async () => ourVethIfindexes(await listHostLinks()), conf.bpfObject);
  return removed;
}
