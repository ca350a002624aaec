/**
 * The lab's endpoint datapath over src/datapath and the agent's map owners
 * (src/reconcile), as the CNI and the agent do it on a node: the node-shared lxc programs pinned once under the lab's pin root
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
import { endpointEntry } from '../datapath/maps/endpoints.js';
import { parseIpv4 } from '../datapath/maps/ipv4.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../datapath/pinned-maps.js';
import { ipcachePrefix } from '../policy/datapath-state.js';
import { LxcInterfacesOwner } from '../reconcile/lxc-interfaces.js';
import { applyDatapathState, policyGroup } from '../reconcile/policy-group.js';
import { runRound } from '../reconcile/round.js';
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
        const ref = hostVeth(plan, pod);
        const { ifindex } = ensureClsact(ref);
        publishEndpoint(maps, pod, ifindex);
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

/**
 * The pod's entries, written by the agent's map owners (src/reconcile): its
 * address → the lab's identity for it and a not-isolated endpoint entry, both
 * only when absent (after `lab policy apply` the compiler owns them, and a
 * reload must not put the lab's defaults back), and its host veth's sl_lxc_v1
 * entry. Everything else the maps hold stays as it is. Throws when a write
 * fails: the pod gets no programs then.
 */
function publishEndpoint(maps: PinnedDatapathMaps, pod: PodPlan, ifindex: number): void {
  const group = policyGroup(maps);
  const now = group.current();
  const prefix = ipcachePrefix(parseIpv4(pod.ipv4), 32);
  const ipcache = now.ipcache.has(prefix) ? now.ipcache : new Map([...now.ipcache, [prefix, pod.identity]]);
  const endpoints = now.endpoints.has(pod.endpointId)
    ? now.endpoints
    : new Map([...now.endpoints, [pod.endpointId, endpointEntry({ ingress: false, egress: false }, 0, { ingress: 0, egress: 0 })]]);
  const report = applyDatapathState(group, { ...now, ipcache, endpoints });
  if (!report.ok) throw new Error(`pod ${pod.name}: ${report.failures.map((f) => `${f.step} ${f.key}: ${f.message}`).join('; ')}`);
  const lxc = new LxcInterfacesOwner(maps);
  const interfaces = [...lxc.current()].filter(([k]) => k !== ifindex).map(([hostIfindex, c]) => ({ hostIfindex, endpointId: c.endpointId, ipv4: c.ipv4 }));
  interfaces.push({ hostIfindex: ifindex, endpointId: pod.endpointId, ipv4: parseIpv4(pod.ipv4) });
  const round = runRound([lxc], { interfaces });
  const failed = round.owners.flatMap((o) => o.failures);
  if (failed.length > 0) throw new Error(`pod ${pod.name}: ${failed.map((f) => `${f.step} ${f.key}: ${f.message}`).join('; ')}`);
}
