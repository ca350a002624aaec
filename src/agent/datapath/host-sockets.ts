/**
 * The node's own sockets and Services (config lb.hostSockets): attaches the
 * socket load balancer (src/datapath/sock-lb.ts, bpf/sock.c) to the node's
 * cgroup v2 tree, for the sockets of the agent's own network namespace (the
 * node's: host-network pods, the kubelet, anything on the node). Done once
 * at start; the links stay pinned when the agent exits, so the node keeps
 * reaching Services while it restarts. With Services off (lb.enabled false,
 * another proxy at work) or lb.hostSockets off, the links are removed.
 *
 * Where the tree is: under the configured directory ("auto":
 * /sys/fs/cgroup), its "unified" subdirectory on a hybrid (v1 + v2) host,
 * else the directory itself on a v2-only host. In a container with a cgroup
 * namespace of its own, /sys/fs/cgroup is the container's own subtree:
 * point lb.hostSockets at the node's tree mounted into it (the Helm chart
 * does).
 */
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { LbConfig } from '../config.js';
import { attachSockLb, detachSockLb, loadSockLb, netnsCookie } from '../../datapath/sock-lb.js';

/** statfs f_type of cgroup2 (linux/magic.h CGROUP2_SUPER_MAGIC). */
const CGROUP2_SUPER_MAGIC = 0x63677270;
const AUTO_BASE = '/sys/fs/cgroup';

function isCgroup2(path: string): boolean {
  try {
    return statfsSync(path).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/** The cgroup v2 directory under `base` (its "unified" subdirectory, else itself), or undefined. */
export function cgroup2Under(base: string): string | undefined {
  return [join(base, 'unified'), base].find(isCgroup2);
}

export type HostSocketsOutcome =
  | { readonly state: 'attached'; readonly cgroup: string }
  | { readonly state: 'off'; readonly removed: number; readonly why: string }
  | { readonly state: 'unavailable'; readonly why: string };

/**
 * Attaches (or detaches) per `lb`. A configured directory without a cgroup
 * v2 tree, or an attach that fails, throws: the agent does not start
 * half-configured. "auto" without a tree is `unavailable` (the caller warns).
 */
export function applyHostSockets(pinDir: string, lb: LbConfig): HostSocketsOutcome {
  if (!lb.enabled || lb.hostSockets === 'off') {
    return { state: 'off', removed: detachSockLb(pinDir).length, why: lb.enabled ? 'lb.hostSockets is off' : 'Services are off (lb.enabled false)' };
  }
  const base = lb.hostSockets === 'auto' ? AUTO_BASE : lb.hostSockets;
  const cgroup = cgroup2Under(base);
  if (cgroup === undefined) {
    const why = `no cgroup v2 tree at ${base} or ${join(base, 'unified')}`;
    if (lb.hostSockets === 'auto') {
      detachSockLb(pinDir);
      return { state: 'unavailable', why };
    }
    throw new Error(`lb.hostSockets: ${why}`);
  }
  const object = loadSockLb({ pinRoot: pinDir, hostNetnsCookie: netnsCookie() });
  try {
    attachSockLb(object, cgroup, pinDir);
  } finally {
    object.close();
  }
  return { state: 'attached', cgroup };
}
