/**
 * The lab's endpoint datapath over src/datapath, as the CNI does it on a
 * node: the node-shared lxc programs pinned once under the lab's pin root
 * (lxc-shared.ts), next to the maps, and attached on every pod's host veth
 * inside the node netns. Before the programs are attached, the pod gets its
 * ipcache entry, its endpoint entry (not isolated; a reload keeps an existing
 * one, which policy may have isolated) and its host veth's sl_lxc_v1 entry
 * (ifindex in the node netns → endpoint id and address): a program on an
 * interface without one, or for an endpoint without one, drops everything.
 */
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { InterfaceRef, TcDirection } from '../datapath/api.js';
import { ensureBpffsMounted } from '../datapath/bpffs.js';
import { LXC_OBJECT_PATH } from '../datapath/lxc.js';
import { openSharedLxc, sharedLxcDir } from '../datapath/lxc-shared.js';
import { ensureEndpoint } from '../datapath/maps/endpoints.js';
import { ensureIpcacheEntry, ipcacheKey } from '../datapath/maps/ipcache.js';
import { parseIpv4 } from '../datapath/maps/ipv4.js';
import { openPinnedDatapathMaps } from '../datapath/pinned-maps.js';
import { attachTc, ensureClsact, queryTc } from '../datapath/tc.js';
import type { EndpointDatapath, EndpointPrograms } from './endpoint-datapath.js';
import { asError } from './errors.js';
import { netnsPath } from './netns.js';
import type { LabPlan, PodPlan } from './spec.js';

/**
 * One fixed tc slot per direction: a reload replaces the program in this slot
 * (same handle and priority), which the kernel does atomically.
 */
const TC_SLOT = { handle: 1, priority: 1 } as const;

export class LxcEndpoints implements EndpointDatapath {
  constructor(readonly objectPath: string = LXC_OBJECT_PATH) {}

  attach(plan: LabPlan, pod: PodPlan, opts: { readonly replace: boolean }): Promise<EndpointPrograms> {
    return settle(() => this.attachNow(plan, pod, opts));
  }

  query(plan: LabPlan, pod: PodPlan): Promise<EndpointPrograms> {
    const ref = hostVeth(plan, pod);
    const at = (dir: TcDirection): number | undefined => queryTc(ref, dir, TC_SLOT)?.progId;
    return settle(() => ({ fromContainer: at('ingress'), toContainer: at('egress') }));
  }

  /**
   * replace (a reload, the upgrade path): the programs are loaded afresh and
   * pinned in place of the build's pins; pods not reloaded keep the programs
   * their tc filters hold.
   */
  private attachNow(plan: LabPlan, pod: PodPlan, opts: { readonly replace: boolean }): EndpointPrograms {
    ensureBpffsMounted(dirname(plan.pinRoot));
    if (opts.replace) rmSync(sharedLxcDir(plan.pinRoot, this.objectPath), { recursive: true, force: true });
    const programs = openSharedLxc({ pinRoot: plan.pinRoot, objectPath: this.objectPath });
    try {
      const maps = openPinnedDatapathMaps(plan.pinRoot);
      try {
        // Only when absent: after `lab policy apply` the compiler owns the pod's
        // identity, and a reload must not put the lab's default back.
        ensureIpcacheEntry(maps.ipcache, ipcacheKey(`${pod.ipv4}/32`), { identity: pod.identity, flags: 0 });
        ensureEndpoint(maps.endpoints, pod.endpointId);
        const ref = hostVeth(plan, pod);
        const { ifindex } = ensureClsact(ref);
        maps.interfaces.update(ifindex, { endpointId: pod.endpointId, ipv4: parseIpv4(pod.ipv4) });
        const from = attachTc(ref, 'ingress', programs.fromContainerFd, { ...TC_SLOT, replace: opts.replace });
        const to = attachTc(ref, 'egress', programs.toContainerFd, { ...TC_SLOT, replace: opts.replace });
        return { fromContainer: from.progId, toContainer: to.progId };
      } finally {
        maps.close();
      }
    } finally {
      // The tc filters hold the programs and the pins hold programs and maps.
      programs.close();
    }
  }
}

/** libbpf calls are synchronous; this makes their errors rejections, as the interface promises. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(asError(e));
  }
}

function hostVeth(plan: LabPlan, pod: PodPlan): InterfaceRef {
  return { ifname: pod.hostIfname, netns: netnsPath(plan.nodeNetns) };
}
