/**
 * Every object a lab creates carries a name derived from the lab's name, so
 * that several labs (and parallel test runs) coexist and `down` can find all
 * of a lab's objects from its name alone, even without a state file.
 *
 * Lab names are [a-z0-9] only (no '-'): that makes "sluice-<lab>-" an
 * unambiguous prefix — lab "a" can never claim the namespaces of lab "a-b".
 */

export const LAB_NAME_RE = /^[a-z0-9]{1,20}$/;
/** DNS-label-like, short enough for a readable netns name. */
export const POD_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;
/** The node namespace's suffix; a pod cannot take it. */
export const NODE_SUFFIX = 'node';
/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;

export interface LabPaths {
  /** Where bpffs is mounted; pins go to <bpffs>/sluice-<lab>. */
  readonly bpffs: string;
  /** Directory of the state files, <stateDir>/<lab>.json. */
  readonly stateDir: string;
}

/**
 * $SLUICE_LAB_BPFFS and $SLUICE_LAB_STATE_DIR move a lab's pins and state
 * elsewhere (tests keep theirs in directories of their own).
 */
export const defaultLabPaths: LabPaths = {
  bpffs: process.env['SLUICE_LAB_BPFFS'] || '/sys/fs/bpf',
  stateDir: process.env['SLUICE_LAB_STATE_DIR'] || '/run/sluice/lab',
};

/** Prefix shared by all of a lab's network namespaces. */
export function netnsPrefix(lab: string): string {
  return `sluice-${lab}-`;
}

export function nodeNetnsName(lab: string): string {
  return `${netnsPrefix(lab)}${NODE_SUFFIX}`;
}

export function podNetnsName(lab: string, pod: string): string {
  return `${netnsPrefix(lab)}${pod}`;
}

/**
 * Host-side veth of the pod at `index`: "sl" + 4 hex digits of the lab's
 * hash + index — at most 9 characters for 250 pods, well under IFNAMSIZ, and
 * independent of the pod name's length.
 */
export function hostIfname(lab: string, index: number): string {
  return `sl${labHash(lab).toString(16).padStart(8, '0').slice(0, 4)}${index}`;
}

export function pinRootFor(paths: LabPaths, lab: string): string {
  return `${paths.bpffs}/sluice-${lab}`;
}

/**
 * A cluster lab's node `index` (1-based). Node 1 keeps the one-node lab's
 * names (netns sluice-<lab>-node, pins <bpffs>/sluice-<lab>, files directly
 * in <lab>.d); node k ≥ 2 gets netns sluice-<lab>-node<k>, pins
 * <bpffs>/sluice-<lab>-node<k> and files in <lab>.d/node<k>/.
 */
export function nodeSuffix(index: number): string {
  return index === 1 ? NODE_SUFFIX : `${NODE_SUFFIX}${index}`;
}

export function clusterNodeNetns(lab: string, index: number): string {
  return `${netnsPrefix(lab)}${nodeSuffix(index)}`;
}

export function clusterNodePinRoot(paths: LabPaths, lab: string, index: number): string {
  return index === 1 ? pinRootFor(paths, lab) : `${pinRootFor(paths, lab)}-${nodeSuffix(index)}`;
}

/** The namespace of the lab fabric: one bridge joining the nodes' fabric devices. */
export function fabricNetnsName(lab: string): string {
  return `${netnsPrefix(lab)}${FABRIC_SUFFIX}`;
}

export const FABRIC_SUFFIX = 'fabric';
/** Pod names a cluster lab keeps for its nodes and fabric (node, node2, …, fabric). */
export const RESERVED_POD_RE = /^(node\d*|fabric)$/;

export function statePathFor(paths: LabPaths, lab: string): string {
  return `${paths.stateDir}/${lab}.json`;
}

/** A cluster lab's working dir (kubeconfig, CNI, IPAM, agent state); removed with the lab. */
export function clusterDirFor(paths: LabPaths, lab: string): string {
  return `${paths.stateDir}/${lab}.d`;
}

/** Output of a detached `lab up --cluster`; removed with the lab. */
export function clusterLogFor(paths: LabPaths, lab: string): string {
  return `${paths.stateDir}/${lab}.log`;
}

/** Where `lab policy apply` keeps the lab's identity and rule ids; removed with the lab. */
export function policyStorePathFor(paths: LabPaths, lab: string): string {
  return `${paths.stateDir}/${lab}.policy.json`;
}

/** FNV-1a, 32 bit: a stable, dependency-free hash of the lab name. */
export function labHash(lab: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < lab.length; i++) {
    h ^= lab.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
