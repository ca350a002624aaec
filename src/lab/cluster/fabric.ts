/**
 * The lab fabric: the wire between a cluster lab's nodes. A Linux bridge
 * (br0) inside a namespace of the lab's own (sluice-<lab>-fabric, no address
 * on it), and per node a veth: `n<k>` on the bridge, `fab0` in the node
 * namespace with the node's InternalIP/24. Nothing of it is in the root
 * namespace; deleting the fabric namespace takes the bridge and every node's
 * fab0 with it.
 *
 *   node netns sluice-<lab>-node<k>        fabric netns sluice-<lab>-fabric
 *   fab0 172.30.0.<10+k>/24   ═══ veth ═══  n<k> ── br0      (MTU 1550)
 *   default via 172.30.0.1 dev fab0
 *
 * The default route gives each node what a real node has: a route for every
 * destination, so packets to an address nobody holds (a Service's virtual
 * IP before kube-proxy's DNAT or REJECT decides) pass the routing decision
 * into netfilter's FORWARD hook instead of failing it with "network
 * unreachable". Its gateway is an address of the fabric that nobody holds:
 * what is not DNATed, rejected or routed to a podCIDR goes nowhere.
 */
import type { NetnsOps } from '../netns.js';
import { fabricNetnsName } from '../names.js';
import { FABRIC_GATEWAY, FABRIC_IFNAME, type NodePlan } from './nodes.js';

const BRIDGE = 'br0';
/**
 * The fabric's MTU: 1500 plus the 50 bytes of a VXLAN header, so that the
 * vxlan device (fabric MTU − 50) carries the pods' 1500-byte packets whole in
 * either routing mode (native routing uses 1500 of it).
 */
export const FABRIC_MTU = 1550;
const DISABLE_IPV6 = ['net.ipv6.conf.all.disable_ipv6', 'net.ipv6.conf.default.disable_ipv6'] as const;

export class LabFabric {
  readonly netns: string;

  constructor(private readonly ops: NetnsOps, lab: string) {
    this.netns = fabricNetnsName(lab);
  }

  async exists(): Promise<boolean> {
    return this.ops.exists(this.netns);
  }

  /** The namespace and its bridge. */
  async create(): Promise<void> {
    await this.ops.add(this.netns);
    for (const key of DISABLE_IPV6) await this.ops.sysctl(this.netns, key, 1);
    await this.ops.ip(this.netns, ['link', 'set', 'lo', 'up']);
    await this.ops.ip(this.netns, ['link', 'add', BRIDGE, 'type', 'bridge']);
    await this.ops.ip(this.netns, ['link', 'set', BRIDGE, 'up']);
  }

  /** Plugs a node in: its fab0 with the node's InternalIP. */
  async attach(node: NodePlan): Promise<void> {
    if (node.internalIp === undefined) throw new Error(`node ${node.name} has no fabric address`);
    const port = `n${node.index}`;
    const mtu = String(FABRIC_MTU);
    await this.ops.ip(this.netns, ['link', 'add', port, 'mtu', mtu, 'type', 'veth', 'peer', 'name', FABRIC_IFNAME, 'mtu', mtu, 'netns', node.netns]);
    await this.ops.ip(this.netns, ['link', 'set', port, 'master', BRIDGE, 'up']);
    await this.ops.ip(node.netns, ['addr', 'add', `${node.internalIp}/24`, 'dev', FABRIC_IFNAME]);
    await this.ops.ip(node.netns, ['link', 'set', FABRIC_IFNAME, 'up']);
    await this.ops.ip(node.netns, ['route', 'add', 'default', 'via', FABRIC_GATEWAY, 'dev', FABRIC_IFNAME]);
  }
}
