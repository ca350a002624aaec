/**
 * What the lab needs from the datapath, per endpoint. The lab depends on this
 * shape only; lxc-datapath.ts implements it over src/datapath, and a lab
 * without datapath (a plain-veth baseline) simply has none.
 */
import type { LabPlan, PodPlan } from './spec.js';

/** Kernel program ids on the host veth; undefined = nothing attached there. */
export interface EndpointPrograms {
  /** tc ingress of the host veth: traffic leaving the pod. */
  readonly fromContainer: number | undefined;
  /** tc egress of the host veth: traffic entering the pod. */
  readonly toContainer: number | undefined;
}

export interface EndpointDatapath {
  /**
   * Loads the endpoint's programs, reusing (or creating) the maps pinned under
   * plan.pinRoot, writes pod.ipv4/32 → pod.identity into the ipcache and the
   * endpoint's entry (not isolated, unless one exists already), then attaches
   * the programs on the pod's host veth in the node netns — identity and
   * endpoint first, so that the first packet is already classified and not
   * dropped as ENDPOINT_UNKNOWN.
   * replace: swap the programs at the same tc handle/priority atomically, so
   * a reload never leaves a gap in enforcement.
   */
  attach(plan: LabPlan, pod: PodPlan, opts: { readonly replace: boolean }): Promise<EndpointPrograms>;
  /** What is attached on the pod's host veth now. */
  query(plan: LabPlan, pod: PodPlan): Promise<EndpointPrograms>;
}
