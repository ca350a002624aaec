/**
 * The node's fabric program (bpf/host.c, from_fabric): loaded with the
 * node's podCIDR and address as load-time constants, its maps (events, metrics,
 * ipcache) reused from the node's pin root, so its drops reach the same
 * event stream and counters as the lxc programs'. Attached on tc ingress of
 * the fabric-facing device (and of the vxlan device in vxlan mode), and
 * to_fabric on their tc egress, with replace, so a second attach (agent
 * restart, new build) swaps them in place.
 */
import { fileURLToPath } from 'node:url';
import { openObject } from './bpf-object.js';
import type { LoadedObject, ProgramInfo, TcAttachment } from './api.js';
import { parseIpv4, parseIpv4Prefix } from './maps/ipv4.js';
import { attachTc, queryTc } from './tc.js';

export const HOST_OBJECT_PATH = fileURLToPath(new URL('../../../build/bpf/host.o', import.meta.url));
export const FROM_FABRIC = 'from_fabric';
export const TO_FABRIC = 'to_fabric';

export interface HostProgram {
  readonly object: LoadedObject;
  readonly fromFabric: ProgramInfo;
  readonly toFabric: ProgramInfo;
  close(): void;
}

/** A u32 in network byte order, as the program compares addresses. */
function be32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export interface LoadHostOptions {
  /** The node's podCIDR ("10.1.2.0/24"); undefined: the source check is off. */
  readonly podCidr: string | undefined;
  /**
   * The node's address ("10.99.0.1"), the source of external connections the
   * load balancer masquerades (externalTrafficPolicy Cluster); absent: the
   * frontend's address (a node address for NodePorts).
   */
  readonly nodeAddress?: string;
  readonly pinRoot?: string;
  readonly objectPath?: string;
}

/** Loads host.o for a node (see LoadHostOptions). */
export function loadHost(opts: LoadHostOptions): HostProgram {
  const cidr = opts.podCidr === undefined ? { addr: 0, prefixlen: 0 } : parseIpv4Prefix(opts.podCidr);
  const mask = cidr.prefixlen === 0 ? 0 : (0xffffffff << (32 - cidr.prefixlen)) >>> 0;
  const object = openObject(opts.objectPath ?? HOST_OBJECT_PATH, {
    ...(opts.pinRoot !== undefined ? { pinRoot: opts.pinRoot } : {}),
    globals: {
      HOST_POD_CIDR_ADDR: be32((cidr.addr & mask) >>> 0),
      HOST_POD_CIDR_MASK: be32(mask),
      HOST_NODE_ADDR: be32(opts.nodeAddress === undefined ? 0 : parseIpv4(opts.nodeAddress)),
    },
  });
  try {
    return { object, fromFabric: object.program(FROM_FABRIC), toFabric: object.program(TO_FABRIC), close: () => object.close() };
  } catch (e) {
    object.close();
    throw e;
  }
}

/** Attaches from_fabric on tc ingress and to_fabric on tc egress of the device (in the caller's netns), replacing what is there. */
export function attachHost(prog: HostProgram, ifname: string): { ingress: TcAttachment; egress: TcAttachment } {
  return {
    ingress: attachTc({ ifname }, 'ingress', prog.fromFabric.fd, { replace: true }),
    egress: attachTc({ ifname }, 'egress', prog.toFabric.fd, { replace: true }),
  };
}

/** The program id on the device's tc ingress (from_fabric) or egress (to_fabric), if any. */
export function hostAttached(ifname: string, netns?: string, direction: 'ingress' | 'egress' = 'ingress'): number | undefined {
  return queryTc({ ifname, ...(netns !== undefined ? { netns } : {}) }, direction)?.progId;
}
