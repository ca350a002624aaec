/**
 * The node-routes owner's input from a snapshot (pure): this node's
 * InternalIP and every other node that has a podCIDR (IPv4, spec.podCIDRs or
 * spec.podCIDR) and an InternalIP (IPv4). Nodes without either are not
 * peers yet; they become peers in the round after their Node gets them.
 */
import type { RoutingConfig } from '../config.js';
import type { SlimNode } from '../k8s/resources.js';
import type { NodeRoutingInput, Peer } from '../../reconcile/node-routes.js';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV4_CIDR = /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/;

export function internalIpv4(node: SlimNode): string | undefined {
  return node.status?.addresses?.find((a) => a.type === 'InternalIP' && IPV4.test(a.address))?.address;
}

export function podCidrv4(node: SlimNode): string | undefined {
  const all = [...(node.spec?.podCIDRs ?? []), ...(node.spec?.podCIDR !== undefined ? [node.spec.podCIDR] : [])];
  return all.find((c) => IPV4_CIDR.test(c));
}

export function nodeRoutingInput(nodes: readonly SlimNode[], self: string, config: RoutingConfig): NodeRoutingInput {
  const peers: Peer[] = [];
  let selfIp: string | undefined;
  let selfPodCidr: string | undefined;
  for (const n of nodes) {
    const name = n.metadata.name;
    const ip = internalIpv4(n);
    if (name === self) {
      selfIp = ip;
      selfPodCidr = podCidrv4(n);
      continue;
    }
    const podCidr = podCidrv4(n);
    if (ip !== undefined && podCidr !== undefined) peers.push({ node: name, podCidr, internalIp: ip });
  }
  return { mode: config.mode, device: config.device, vni: config.vni, port: config.port, self: selfIp, selfPodCidr, peers };
}
