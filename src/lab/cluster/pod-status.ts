/**
 * The Pod status a kubelet would report for a lab pod (pure): Running with
 * the CNI's address, the node's address, and the readiness the lab was told
 * (a readiness probe's verdict, for a kubelet). The lab writes it through the
 * status subresource; the real controller manager's endpointslice
 * controller turns it into EndpointSlice endpoints (addresses, ready,
 * serving, terminating).
 */
import type { KubeObject } from './objects.js';

export interface PodRuntimeState {
  /** The pod's address (CNI ADD's result). */
  readonly ip: string;
  /** The node's InternalIP; absent when the Node has none (a one-node lab). */
  readonly hostIp?: string;
  readonly startedAt: Date;
  readonly ready: boolean;
  /** When `ready` last changed: the Ready and ContainersReady conditions' lastTransitionTime. */
  readonly readySince: Date;
}

/** What a merge patch of the status subresource sets: `{status: …}`. */
export function kubeletStatus(pod: KubeObject, s: PodRuntimeState): KubeObject {
  const started = apiTime(s.startedAt);
  const readyAt = apiTime(s.readySince);
  const spec = pod['spec'] as { containers?: { name?: unknown; image?: unknown }[] } | undefined;
  const containers = spec?.containers ?? [];
  const notReady = `containers with unready status: [${containers.map((c) => String(c.name)).join(' ')}]`;
  const readiness = (type: string): KubeObject => (s.ready
    ? { type, status: 'True', lastTransitionTime: readyAt }
    : { type, status: 'False', lastTransitionTime: readyAt, reason: 'ContainersNotReady', message: notReady });
  const done = (type: string): KubeObject => ({ type, status: 'True', lastTransitionTime: started });
  return {
    status: {
      phase: 'Running',
      ...(s.hostIp !== undefined ? { hostIP: s.hostIp, hostIPs: [{ ip: s.hostIp }] } : {}),
      podIP: s.ip,
      podIPs: [{ ip: s.ip }],
      startTime: started,
      conditions: [done('PodReadyToStartContainers'), done('Initialized'), readiness('Ready'), readiness('ContainersReady'), done('PodScheduled')],
      containerStatuses: containers.map((c) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        ready: s.ready,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: started } },
      })),
    },
  };
}

/** RFC 3339 in whole seconds, as the API's metav1.Time serialises. */
function apiTime(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}
