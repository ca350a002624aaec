/**
 * DEL: veth (its pod end, routes and tc filters go with it) and the veth's
 * sl_lxc_v1 entry, then the agent's endpoint, then the address — the
 * reverse of ADD. Idempotent:
 * whatever is already gone is skipped; an unknown container, a deleted
 * netns or a missing prevResult all end in success.
 *
 * The one failure: the agent is unreachable while this attachment still
 * holds an address. Releasing the address then could hand it to a new pod
 * while the agent still has the old endpoint for it, so DEL answers 11 (try
 * again later) and the runtime retries; the veth is already gone, so the pod
 * has no connectivity meanwhile. With no address held, the agent cannot
 * hold the endpoint either (ADD registers only after allocating, DEL
 * releases only after unregistering), and DEL succeeds.
 */
import type { CniAgent } from './agent.js';
import type { Attachment, NetConf } from './config.js';
import { releaseInterface } from './datapath.js';
import type { CniEnv } from './env.js';
import { CniCode, CniError } from './errors.js';
import { IpamStore, ownerOf } from './ipam.js';
import { attachmentNames } from './names.js';
import { mark } from './timing.js';
import { deleteVeth } from './wiring.js';

export async function cmdDel(env: CniEnv, conf: NetConf, agent: CniAgent): Promise<void> {
  const attachment = { containerId: env.containerId, ifname: env.ifname };
  await removeAttachment(attachment, IpamStore.forNetwork(conf.ipam.dataDir, conf.name), agent, conf);
}

/** Shared by DEL and GC. */
export async function removeAttachment(a: Attachment, store: IpamStore, agent: CniAgent, conf: NetConf): Promise<void> {
  const veth = await deleteVeth(attachmentNames(a).hostIfname, a);
  mark('veth');
  // Detached (the filters went with the veth): now its entry. A veth that was
  // already gone leaves its entry to GC, which sees every interface.
  if (conf.datapath === 'bpf' && veth.ifindex !== undefined) {
    await releaseInterface(conf.pinRoot, veth.ifindex);
    mark('programs');
  }
  const holds = store.list().some((x) => x.owner === ownerOf(a));
  try {
    await agent.unregister(a.containerId, a.ifname);
    mark('agent');
  } catch (e) {
    if (!holds && e instanceof CniError && e.code === CniCode.TRY_AGAIN_LATER) return;
    throw e;
  }
  store.release(a);
  mark('ipam');
}
