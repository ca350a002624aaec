/**
 * Loads bpf/lxc.c (build/bpf/lxc.o) for one endpoint: the endpoint's
 * constants go into the `endpoint_config` .rodata global before load, and the
 * maps are reused from (or created and pinned in) pinRoot, so every
 * endpoint's programs share one ipcache, policy, metrics, events and config.
 * Attaching the programs to the veth is the caller's (tc.ts).
 */
import { fileURLToPath } from 'node:url';
import type { LoadedObject, ProgramInfo, RawMap } from './api.js';
import { openObject } from './bpf-object.js';
import { endpointConfigCodec, type EndpointConfig } from './generated/abi.js';
import { CONFIG_LAYOUT, openConfig, type ConfigMap } from './maps/config.js';
import { EVENTS_LAYOUT, openEvents } from './maps/events.js';
import { IPCACHE_LAYOUT, IPHOST_LAYOUT, openIpcache, type IpcacheMap } from './maps/ipcache.js';
import { METRICS_LAYOUT, openMetrics, type MetricsMap } from './maps/metrics.js';
import { openPolicy, POLICY_LAYOUT, type PolicyMap } from './maps/policy.js';

/** Where scripts/build-bpf puts the object, relative to this module in dist/. */
export const LXC_OBJECT_PATH = fileURLToPath(new URL('../../../build/bpf/lxc.o', import.meta.url));

/** The .rodata global in bpf/lib/config.h. */
const ENDPOINT_CONFIG_GLOBAL = 'endpoint_config';

export interface LoadLxcOptions {
  /** bpffs directory holding the shared maps (e.g. /sys/fs/bpf/sluice). */
  readonly pinRoot: string;
  /** ipv4 in natural order (parseIpv4); 0 turns the source check off. */
  readonly endpoint: EndpointConfig;
  readonly objectPath?: string;
}

export interface LxcMaps {
  readonly ipcache: IpcacheMap;
  readonly policy: PolicyMap;
  readonly metrics: MetricsMap;
  readonly config: ConfigMap;
  readonly events: RawMap;
}

export interface LxcDatapath {
  readonly object: LoadedObject;
  /** tc ingress of the host-side veth: traffic leaving the pod. */
  readonly fromContainer: ProgramInfo;
  /** tc egress of the host-side veth: traffic entering the pod. */
  readonly toContainer: ProgramInfo;
  readonly maps: LxcMaps;
  /** Releases the fds; pinned maps (and attached programs) stay. */
  close(): void;
}

export function loadLxc(opts: LoadLxcOptions): LxcDatapath {
  const object = openObject(opts.objectPath ?? LXC_OBJECT_PATH, {
    pinRoot: opts.pinRoot,
    globals: { [ENDPOINT_CONFIG_GLOBAL]: endpointConfigCodec.encode(opts.endpoint) },
  });
  try {
    return {
      object,
      fromContainer: object.program('from_container'),
      toContainer: object.program('to_container'),
      maps: {
        ipcache: openIpcache(object.map(IPHOST_LAYOUT.name), object.map(IPCACHE_LAYOUT.name)),
        policy: openPolicy(object.map(POLICY_LAYOUT.name)),
        metrics: openMetrics(object.map(METRICS_LAYOUT.name)),
        config: openConfig(object.map(CONFIG_LAYOUT.name)),
        events: openEvents(object.map(EVENTS_LAYOUT.name)),
      },
      close: () => object.close(),
    };
  } catch (err) {
    object.close();
    throw err;
  }
}
