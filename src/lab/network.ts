/**
 * The lab's plumbing: one node namespace, one namespace per pod, a veth pair
 * between them. Pure L3 towards the pod, like Calico and Cilium:
 *
 *   pod netns                         node netns (ip_forward=1)
 *   eth0 10.x.0.2/32  ═══ veth ═══   sl<hash><i>  (no address; tc programs here)
 *   169.254.1.1 dev eth0 scope link   10.x.0.2/32 dev sl<hash><i> scope link
 *   default via 169.254.1.1
 *
 * Neighbours are static on both sides instead of proxy_arp: proxy ARP only
 * answers for a target the node has a route to through another interface,
 * and the node namespace has no route to 169.254.1.1 (no uplink, no default
 * route). Static entries need no ARP on the wire, so no ARP packet crosses the
 * datapath, and they make the lab deterministic (no neighbour resolution delay
 * on the first packet).
 *
 * IPv6 is off in the pod and node namespaces: the datapath drops IPv6 for now,
 * and link-local chatter (router solicitations, MLD) would show up as drop
 * events.
 */
import type { NetnsOps } from './netns.js';
import { netnsPrefix } from './names.js';
import type { LabPlan, PodPlan } from './spec.js';

const DISABLE_IPV6 = ['net.ipv6.conf.all.disable_ipv6', 'net.ipv6.conf.default.disable_ipv6'] as const;

export class LabNetwork {
  constructor(private readonly netns: NetnsOps) {}

  /**
   * Creates the node namespace, and so claims the lab's name: `ip netns add`
   * fails when the namespace exists, so of two concurrent `up`s of one name
   * exactly one gets past this point.
   */
  async claimNode(plan: LabPlan): Promise<void> {
    await this.netns.add(plan.nodeNetns);
  }

  async configureNode(plan: LabPlan): Promise<void> {
    const ns = plan.nodeNetns;
    await this.netns.sysctl(ns, 'net.ipv4.ip_forward', 1);
    for (const key of DISABLE_IPV6) await this.netns.sysctl(ns, key, 1);
    await this.netns.ip(ns, ['link', 'set', 'lo', 'up']);
  }

  async createPod(plan: LabPlan, pod: PodPlan): Promise<void> {
    const node = plan.nodeNetns;
    const ns = pod.netns;
    await this.netns.add(ns);
    // Before eth0 exists, so it never gets an IPv6 link-local address.
    for (const key of DISABLE_IPV6) await this.netns.sysctl(ns, key, 1);
    await this.netns.ip(ns, ['link', 'set', 'lo', 'up']);

    // Both ends created in place: nothing ever appears in the root namespace.
    await this.netns.ip(node, [
      'link', 'add', pod.hostIfname, 'address', pod.hostMac,
      'type', 'veth', 'peer', 'name', 'eth0', 'address', pod.podMac, 'netns', ns,
    ]);
    await this.netns.ip(ns, ['addr', 'add', `${pod.ipv4}/32`, 'dev', 'eth0']);
    await this.netns.ip(ns, ['link', 'set', 'eth0', 'up']);
    await this.netns.ip(node, ['link', 'set', pod.hostIfname, 'up']);

    await this.netns.ip(ns, ['route', 'add', plan.gateway, 'dev', 'eth0', 'scope', 'link']);
    await this.netns.ip(ns, ['route', 'add', 'default', 'via', plan.gateway, 'dev', 'eth0']);
    await this.netns.ip(ns, ['neigh', 'add', plan.gateway, 'lladdr', pod.hostMac, 'dev', 'eth0', 'nud', 'permanent']);

    await this.netns.ip(node, ['route', 'add', `${pod.ipv4}/32`, 'dev', pod.hostIfname, 'scope', 'link']);
    await this.netns.ip(node, ['neigh', 'add', pod.ipv4, 'lladdr', pod.podMac, 'dev', pod.hostIfname, 'nud', 'permanent']);
  }

  /**
   * Removes every namespace of the lab, found by name prefix so that it also
   * cleans up after a crash that left no state file. Deleting a namespace
   * destroys its veth ends, which takes the peers, routes and tc filters with
   * them. Idempotent.
   */
  async destroy(lab: string): Promise<string[]> {
    const prefix = netnsPrefix(lab);
    const ours = (await this.netns.list()).filter((n) => n.startsWith(prefix));
    for (const ns of ours) await this.netns.delete(ns);
    return ours;
  }

  /** The lab's namespaces that exist now. */
  async existing(lab: string): Promise<string[]> {
    const prefix = netnsPrefix(lab);
    return (await this.netns.list()).filter((n) => n.startsWith(prefix));
  }
}
