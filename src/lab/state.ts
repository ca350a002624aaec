/**
 * The lab's state file, so that `status`, `exec`, `reload` and `down` work
 * from a later process. Written atomically (temp file + rename) so a reader
 * never sees half a file.
 */
import type { ServiceProxy } from './cluster/kube-proxy.js';
import type { NodePlan } from './cluster/nodes.js';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { LabPlan, PodPlan } from './spec.js';

export const STATE_VERSION = 1;

export type LabStatus = 'creating' | 'ready';

export interface LabState {
  readonly version: typeof STATE_VERSION;
  readonly status: LabStatus;
  readonly createdAt: string;
  /** The lxc object the endpoints were loaded from (absent without datapath). */
  readonly objectPath?: string;
  readonly plan: LabPlan;
  /** Only for a cluster lab (`lab up --cluster`): what, beyond the plan, `down` has to undo. */
  readonly cluster?: ClusterRecord;
}

/** A pod attached through the CNI: the arguments its DEL needs. */
export interface ClusterAttachment {
  readonly pod: string;
  readonly namespace: string;
  readonly containerId: string;
  readonly netns: string;
  /** The Node the pod is on (absent in a one-node lab). */
  readonly node?: string;
}

/** A node of a several-node cluster lab (its plan) and where its agent answers. */
export interface ClusterNodeRecord extends NodePlan {
  readonly httpSocket: string;
  readonly agentLog: string;
  /** This node's agent's flow API (unix socket). */
  readonly flowsSocket?: string;
}

export interface ClusterRecord {
  /** The lab's working dir: kubeconfig, CNI bin/conf, IPAM, agent state and socket, logs. */
  readonly dir: string;
  readonly kubeconfig: string;
  /** The kubectl binary of the control plane's build. */
  readonly kubectl: string;
  readonly node: string;
  /** The agent's flow API (Hubble's Observer, unix socket): `sluice observe --server unix://…`, `hubble --server unix://…`. */
  readonly flowsSocket?: string;
  /** The process that owns the control plane and the agent (they die with it). */
  readonly ownerPid: number;
  /** The control plane's temp dir (etcd data, certs), once it exists. */
  readonly controlPlaneDir?: string;
  /** Control-plane components and the agent, for a `down` after the owner died. */
  readonly pids: readonly number[];
  /** Recorded before each ADD, so a DEL also follows a half-done one. */
  readonly attachments: readonly ClusterAttachment[];
  /** Every node, when the lab has several (absent: one node, the plan's). */
  readonly nodes?: readonly ClusterNodeRecord[];
  /** What implements Services when it is not Sluice: a kube-proxy mode (cluster/kube-proxy.ts). */
  readonly proxy?: ServiceProxy;
}

export async function writeState(path: string, state: LabState): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

/** undefined when there is no state file; throws when it is unreadable. */
export async function readState(path: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return checkState(JSON.parse(text) as unknown, path);
}

/** Idempotent. */
export async function removeState(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Checks the shape we rely on, so a stale or foreign file fails with its path. */
function checkState(v: unknown, path: string): LabState {
  const bad = (what: string): never => {
    throw new Error(`lab state ${path}: ${what}`);
  };
  if (typeof v !== 'object' || v === null) return bad('not a JSON object');
  const s = v as Record<string, unknown>;
  if (s['version'] !== STATE_VERSION) return bad(`version ${String(s['version'])}, want ${STATE_VERSION}`);
  if (s['status'] !== 'creating' && s['status'] !== 'ready') return bad(`status ${String(s['status'])}`);
  const plan = s['plan'] as Record<string, unknown> | undefined;
  if (typeof plan !== 'object' || plan === null) return bad('no plan');
  for (const key of ['name', 'nodeNetns', 'cidr', 'gateway', 'pinRoot'] as const) {
    if (typeof plan[key] !== 'string') bad(`plan.${key} is not a string`);
  }
  if (!Array.isArray(plan['pods'])) return bad('plan.pods is not an array');
  (plan['pods'] as unknown[]).forEach((p, i) => checkPod(p, `plan.pods[${i}]`, bad));
  return v as LabState;
}

function checkPod(p: unknown, where: string, bad: (what: string) => never): asserts p is PodPlan {
  if (typeof p !== 'object' || p === null) bad(`${where} is not an object`);
  const o = p as Record<string, unknown>;
  for (const key of ['name', 'netns', 'ipv4', 'hostIfname', 'hostMac', 'podMac'] as const) {
    if (typeof o[key] !== 'string') bad(`${where}.${key} is not a string`);
  }
  for (const key of ['endpointId', 'identity'] as const) {
    if (typeof o[key] !== 'number') bad(`${where}.${key} is not a number`);
  }
}
