/**
 * What a kubelet does with a lab pod's API object once its sandbox exists:
 * reports it Running with its address and readiness (status subresource),
 * flips readiness when told (as a failing and passing readiness probe
 * would), and carries out a graceful delete: the API server sets the Pod's
 * deletionTimestamp and the pod keeps serving through its grace period; when
 * that ends (or `finish` is called) the sandbox is torn down and the object
 * deleted for good (grace period 0), as a kubelet does after its containers
 * stopped. The sandbox itself (CNI, namespace) belongs to the caller: `teardown`.
 */
import { LabError, asError } from '../errors.js';
import type { KubeObject } from './objects.js';
import { kubeletStatus, type PodRuntimeState } from './pod-status.js';

export interface PodLifecycleDeps {
  /** kubectl with the lab's kubeconfig; resolves with stdout. */
  readonly kubectl: (args: readonly string[]) => Promise<string>;
  /** Removes the pod's sandbox (CNI DEL, its namespace) and forgets it. */
  readonly teardown: (pod: string) => Promise<void>;
  readonly log?: (line: string) => void;
  readonly now?: () => Date;
}

interface TrackedPod {
  readonly namespace: string;
  readonly object: KubeObject;
  state: PodRuntimeState;
  /** Set once a graceful delete was asked for. */
  terminating?: { readonly timer: NodeJS.Timeout; readonly deadline: Date };
  /** The running teardown, so that the timer and `finish` never run it twice. */
  finishing?: Promise<void>;
}

export class PodLifecycle {
  private readonly pods = new Map<string, TrackedPod>();

  constructor(private readonly deps: PodLifecycleDeps) {}

  /** Reports a pod whose sandbox is up: Running, ready, with these addresses. */
  async running(pod: string, namespace: string, object: KubeObject, addr: { readonly ip: string; readonly hostIp?: string }): Promise<void> {
    const now = this.now();
    const tracked: TrackedPod = { namespace, object, state: { ...addr, startedAt: now, ready: true, readySince: now } };
    this.pods.set(pod, tracked);
    await this.writeStatus(pod, tracked);
  }

  /** Ready or not ready (the Ready and ContainersReady conditions); a no-op when it is so already. */
  async setReady(pod: string, ready: boolean): Promise<void> {
    const t = this.get(pod);
    if (t.state.ready === ready) return;
    t.state = { ...t.state, ready, readySince: this.now() };
    await this.writeStatus(pod, t);
  }

  /**
   * Deletes the Pod with this grace period: the object stays, terminating,
   * and the pod keeps serving until the period ends, then the lab finishes
   * it. 0: at once.
   */
  async delete(pod: string, gracePeriodSeconds: number): Promise<{ readonly deadline: Date }> {
    if (!Number.isInteger(gracePeriodSeconds) || gracePeriodSeconds < 0) {
      throw new LabError('invalid-spec', `grace period ${gracePeriodSeconds}: want whole seconds ≥ 0`, 'gracePeriodSeconds');
    }
    const t = this.get(pod);
    if (t.terminating !== undefined || t.finishing !== undefined) throw new LabError('invalid-spec', `pod ${pod} is being deleted already`, 'pod');
    if (gracePeriodSeconds === 0) {
      await this.finish(pod);
      return { deadline: this.now() };
    }
    await this.deps.kubectl(['delete', 'pod', pod, '-n', t.namespace, `--grace-period=${gracePeriodSeconds}`, '--wait=false']);
    const deadline = new Date(this.now().getTime() + gracePeriodSeconds * 1000);
    const timer = setTimeout(() => {
      this.finish(pod).catch((e: unknown) => this.deps.log?.(`pod ${t.namespace}/${pod}: finishing after its grace period failed: ${asError(e).message}`));
    }, gracePeriodSeconds * 1000);
    t.terminating = { timer, deadline };
    return { deadline };
  }

  /** Whether a graceful delete of the pod is under way. */
  terminating(pod: string): boolean {
    return this.pods.get(pod)?.terminating !== undefined;
  }

  /** Ends the pod now: its sandbox goes, then its object (grace period 0). */
  finish(pod: string): Promise<void> {
    const t = this.get(pod);
    t.finishing ??= this.runFinish(pod, t);
    return t.finishing;
  }

  /** Stops the grace timers (the lab is going down; its own teardown DELs every pod). */
  close(): void {
    for (const t of this.pods.values()) if (t.terminating !== undefined) clearTimeout(t.terminating.timer);
  }

  private async runFinish(pod: string, t: TrackedPod): Promise<void> {
    if (t.terminating !== undefined) clearTimeout(t.terminating.timer);
    await this.deps.teardown(pod);
    this.pods.delete(pod);
    // --force with 0 is the API's grace period 0 (kubectl refuses 0 alone), as the kubelet's final delete.
    await this.deps.kubectl(['delete', 'pod', pod, '-n', t.namespace, '--grace-period=0', '--force', '--ignore-not-found', '--wait=false']);
    this.deps.log?.(`pod ${t.namespace}/${pod}: deleted`);
  }

  private get(pod: string): TrackedPod {
    const t = this.pods.get(pod);
    if (t === undefined) throw new LabError('unknown-pod', `no running lab pod "${pod}"`, 'pod');
    return t;
  }

  private async writeStatus(pod: string, t: TrackedPod): Promise<void> {
    const patch = JSON.stringify(kubeletStatus(t.object, t.state));
    await this.deps.kubectl(['patch', 'pod', pod, '-n', t.namespace, '--subresource=status', '--type=merge', '-p', patch]);
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }
}
