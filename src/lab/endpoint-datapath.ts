/**
 * What the lab needs from the datapath, per endpoint. The lab depends on this
 * shape only; lxc-endpoints.ts implements it over src/datapath, and a lab
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
   * Opens the node's programs pinned under plan.pinRoot (loading them and
   * creating the maps the first time), writes pod.ipv4/32 → pod.identity into
   * the ipcache, the endpoint's entry (not isolated, unless one exists
   * already) and the host veth's interface entry, then attaches the programs
   * on the pod's host veth in the node netns — entries first, so that the
   * first packet is already classified and not dropped as INTERFACE_UNKNOWN
   * or ENDPOINT_UNKNOWN.
   * replace: load the programs afresh and swap them in at the same tc
   * handle/priority atomically, so a reload never leaves a gap in enforcement.
   */
  attach(plan: LabPlan, pod: PodPlan, opts: { readonly replace: boolean }): Promise<EndpointPrograms>;
  /** What is attached on the pod's host veth now. */
  query(plan: LabPlan, pod: PodPlan): Promise<EndpointPrograms>;
}
