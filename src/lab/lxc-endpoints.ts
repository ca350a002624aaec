/**
 * The lab's endpoint datapath over src/datapath: one lxc object instance per
 * pod (its endpoint id and address baked into .rodata), maps shared through
 * the lab's pin root, programs on the pod's host veth inside the node netns.
 * Before the programs are attached, the pod gets its ipcache entry and its
 * endpoint entry (not isolated; a reload keeps an existing one, which policy
 * may have isolated): a program whose endpoint has no entry drops everything.
 */
import { dirname } from 'node:path';
import type { InterfaceRef, TcDirection } from '../datapath/api.js';
import { ensureBpffsMounted } from '../datapath/bpffs.js';
import { LXC_OBJECT_PATH, loadLxc } from '../datapath/lxc.js';
import { ensureEndpoint } from '../datapath/maps/endpoints.js';
import { ensureIpcacheEntry, ipcacheKey } from '../datapath/maps/ipcache.js';
import { parseIpv4 } from '../datapath/maps/ipv4.js';
import { attachTc, queryTc } from '../datapath/tc.js';
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

  private attachNow(plan: LabPlan, pod: PodPlan, opts: { readonly replace: boolean }): EndpointPrograms {
    ensureBpffsMounted(dirname(plan.pinRoot));
    const lxc = loadLxc({
      pinRoot: plan.pinRoot,
      endpoint: { endpointId: pod.endpointId, ipv4: parseIpv4(pod.ipv4) },
      objectPath: this.objectPath,
    });
    try {
      // Only when absent: after `lab policy apply` the compiler owns the pod's
      // identity, and a reload must not put the lab's default back.
      ensureIpcacheEntry(lxc.maps.ipcache, ipcacheKey(`${pod.ipv4}/32`), { identity: pod.identity, flags: 0 });
      ensureEndpoint(lxc.maps.endpoints, pod.endpointId);
      const ref = hostVeth(plan, pod);
      const from = attachTc(ref, 'ingress', lxc.fromContainer.fd, { ...TC_SLOT, replace: opts.replace });
      const to = attachTc(ref, 'egress', lxc.toContainer.fd, { ...TC_SLOT, replace: opts.replace });
      return { fromContainer: from.progId, toContainer: to.progId };
    } finally {
      // The tc filters hold the programs and the pins hold the maps.
      lxc.close();
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
