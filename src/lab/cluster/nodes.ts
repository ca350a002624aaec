/**
 * The nodes of a cluster lab (pure): names, namespaces, pin roots, working
 * dirs, podCIDRs, fabric addresses and zones, from the lab's plan and the
 * node count. Node 1 keeps the one-node lab's names (names.ts), so
 * `--nodes 1` is the one-node lab as it always was.
 *
 * podCIDRs are assigned by the lab, not by the controller manager's node
 * IPAM: node k gets the k-th block of the size of the lab's cidr, counted
 * from the lab's cidr (10.<hash>.0.0/24 → node 2 gets 10.<hash>.1.0/24). The
 * fabric is 172.30.0.0/24 inside the lab's own namespaces (every lab can use
 * it: nothing of it reaches the root namespace); node k is 172.30.0.<10+k>.
 * The cluster CIDR (kube-proxy's --cluster-cidr) is the lab's cidr widened
 * to hold MAX_NODES blocks: every podCIDR a node of the lab can get.
 */
import { join } from 'node:path';
import { formatIpv4, formatIpv4Prefix, parseIpv4Prefix } from '../../datapath/maps/ipv4.js';
import { LabError } from '../errors.js';
import { type LabPaths, clusterDirFor, clusterNodeNetns, clusterNodePinRoot, nodeSuffix } from '../names.js';
import type { LabPlan } from '../spec.js';

export const MAX_NODES = 16;
export const FABRIC_PREFIX = '172.30.0.0/24';
const FABRIC_BASE = 0xac1e0000; // 172.30.0.0
/** The nodes' default gateway: an address of the fabric that no node holds (fabric.ts). */
export const FABRIC_GATEWAY = '172.30.0.1';
/** The fabric-facing device in each node namespace (the tc program of bpf/host.c goes here). */
export const FABRIC_IFNAME = 'fab0';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

export interface NodePlan {
  /** 1-based. */
  readonly index: number;
  /** The Node object's name, and the agent's --node-name. */
  readonly name: string;
  readonly netns: string;
  readonly podCidr: string;
  readonly pinRoot: string;
  /** Kubeconfig-independent files of this node: agent sockets, state, CNI, IPAM, logs. */
  readonly dir: string;
  /** The node's address on the fabric (InternalIP); absent in a one-node lab, which has no fabric. */
  readonly internalIp?: string;
  /** topology.kubernetes.io/zone; absent: no label (a one-node lab without --zones). */
  readonly zone?: string;
}

export interface NodesSpec {
  readonly count?: number;
  /** Per node, in order; missing ones: zone<k>. */
  readonly zones?: readonly string[];
  /**
   * Put a lone node on the lab fabric too (an address, a default route), as
   * the node of a real one-node cluster has: NodePort from outside, kube-proxy.
   * Several nodes always are.
   */
  readonly fabric?: boolean;
}

const ZONE_RE = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

/** The Node of node `index`: node 1 is sluice-<lab>, node k is sluice-<lab>-<k>. */
export function clusterNodeName(lab: string, index: number): string {
  return index === 1 ? `sluice-${lab}` : `sluice-${lab}-${index}`;
}

export function planNodes(plan: LabPlan, paths: LabPaths, spec: NodesSpec = {}, first = 1): NodePlan[] {
  const count = spec.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || first - 1 + count > MAX_NODES) {
    throw new LabError('invalid-spec', `nodes: want 1..${MAX_NODES}, got ${first - 1 + count}`, 'nodes');
  }
  const zones = spec.zones ?? [];
  zones.forEach((z, i) => {
    if (!ZONE_RE.test(z)) throw new LabError('invalid-spec', `zones[${i}] "${z}": want a label value ([a-z0-9.-], ≤ 63)`, 'zones');
  });
  if (zones.length > count) throw new LabError('invalid-spec', `zones: ${zones.length} given for ${count} nodes`, 'zones');
  const multi = first > 1 || count > 1 || spec.fabric === true;
  const cidr = parseIpv4Prefix(plan.cidr);
  const block = 2 ** (32 - cidr.prefixlen);
  const dir = clusterDirFor(paths, plan.name);
  const out: NodePlan[] = [];
  for (let i = 0; i < count; i++) {
    const index = first + i;
    const addr = cidr.addr + (index - 1) * block;
    if (addr + block - 1 > 0xffffffff) throw new LabError('invalid-spec', `cidr ${plan.cidr}: no room for node ${index}'s block`, 'cidr');
    const zone = zones[i] ?? (multi ? `zone${index}` : undefined);
    out.push({
      index,
      name: clusterNodeName(plan.name, index),
      netns: clusterNodeNetns(plan.name, index),
      podCidr: formatIpv4Prefix({ addr, prefixlen: cidr.prefixlen }),
      pinRoot: clusterNodePinRoot(paths, plan.name, index),
      dir: index === 1 ? dir : join(dir, nodeSuffix(index)),
      ...(multi ? { internalIp: formatIpv4(FABRIC_BASE + 10 + index) } : {}),
      ...(zone !== undefined ? { zone } : {}),
    });
  }
  return out;
}

/**
 * Every podCIDR the lab's nodes can get, as one prefix: the smallest that
 * holds the first node's block and the MAX_NODES-th (10.<hash>.0.0/24 →
 * 10.<hash>.0.0/20).
 */
export function clusterCidr(plan: LabPlan): string {
  const cidr = parseIpv4Prefix(plan.cidr);
  const first = cidr.addr;
  const last = Math.min(0xffffffff, first + MAX_NODES * 2 ** (32 - cidr.prefixlen) - 1);
  let prefixlen = cidr.prefixlen;
  const maskOf = (len: number): number => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
  while (prefixlen > 0 && ((first & maskOf(prefixlen)) >>> 0) !== ((last & maskOf(prefixlen)) >>> 0)) prefixlen--;
  return formatIpv4Prefix({ addr: (first & maskOf(prefixlen)) >>> 0, prefixlen });
}

/** The Node object of a lab node (status with its InternalIP: a Node takes its status on create). */
export function nodeObject(n: NodePlan): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, ...(n.zone !== undefined ? { [ZONE_LABEL]: n.zone } : {}) } },
    spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] },
    ...(n.internalIp !== undefined
      ? { status: { addresses: [{ type: 'InternalIP', address: n.internalIp }, { type: 'Hostname', address: n.name }] } }
      : {}),
  };
}
