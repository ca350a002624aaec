/**
 * Where pod addresses come from: ipam.podCIDRs when the config has them,
 * otherwise the agent's view of this Node's spec.podCIDRs (what
 * kube-controller-manager --allocate-node-cidrs assigns). IPv6 CIDRs from
 * the Node are skipped until the datapath carries IPv6.
 */
import type { Cidr } from '../policy/cidr.js';
import type { CniAgent } from './agent.js';
import { parsePodCidrs, type NetConf } from './config.js';
import { CniCode, CniError } from './errors.js';

export async function resolvePodCidrs(conf: NetConf, agent: CniAgent): Promise<Cidr[]> {
  if (conf.ipam.podCIDRs.length > 0) return [...conf.ipam.podCIDRs];
  const node = await agent.node();
  if (!node.known) {
    throw new CniError(CniCode.TRY_AGAIN_LATER, `sluice-agent has not seen Node ${node.name} yet (its informer is still listing, or the node is not registered); retry shortly`);
  }
  const v4 = node.podCIDRs.filter((c) => !c.includes(':'));
  if (v4.length === 0) {
    throw new CniError(CniCode.NO_POD_CIDR,
      `Node ${node.name} has no IPv4 spec.podCIDRs (got ${JSON.stringify(node.podCIDRs)}); run kube-controller-manager with --allocate-node-cidrs, ` +
      'set the node\'s podCIDR, or give the network config ipam.podCIDRs');
  }
  try {
    return parsePodCidrs(v4, `Node ${node.name} spec.podCIDRs`);
  } catch (e) {
    throw new CniError(CniCode.NO_POD_CIDR, (e as Error).message);
  }
}
