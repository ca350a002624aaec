/**
 * Loads bpf/lxc.c (build/bpf/lxc.o): one program pair that serves every
 * endpoint of a node, finding the endpoint per packet in sl_lxc_v1 by the
 * interface it runs on (bpf/lib/config.h). The maps are reused from (or
 * created and pinned in) pinRoot: ipcache, policy hash, endpoint table,
 * conntrack, fragment table, metrics, counters, events, config, the
 * interface table and the load balancer's maps. Nodes pin the programs once per build (lxc-shared.ts);
 * a direct load is for tests and the policy engine, which run the programs
 * with BPF_PROG_TEST_RUN in a private pin root (lxc-test-run.ts).
 * Attaching the programs to a veth is the caller's (tc.ts), after it wrote
 * the veth's sl_lxc_v1 entry and the endpoint's entry (maps/endpoints.ts):
 * without them, every packet drops.
 */
import { fileURLToPath } from 'node:url';
import type { LoadedObject, ProgramInfo, RawMap } from './api.js';
import { openObject } from './bpf-object.js';
import { CONFIG_LAYOUT, openConfig, type ConfigMap } from './maps/config.js';
import { CT_LAYOUT, openConntrack, type ConntrackMap } from './maps/conntrack.js';
import { COUNTERS_LAYOUT, openCounters, type CountersMap } from './maps/counters.js';
import { CT_CONFIG_LAYOUT, openCtConfig, type CtConfigMap } from './maps/ct-config.js';
import { ENDPOINTS_LAYOUT, openEndpoints, type EndpointsMap } from './maps/endpoints.js';
import { EVENTS_LAYOUT, openEvents } from './maps/events.js';
import { FRAG_LAYOUT, openFrag, type FragMap } from './maps/frag.js';
import { IPCACHE_LAYOUT, IPHOST_LAYOUT, openIpcache, type IpcacheMap } from './maps/ipcache.js';
import { LXC_ADDRESSES_LAYOUT, openLxcAddresses, type LxcAddressesMap } from './maps/lxc-addresses.js';
import { LB_MAP_LAYOUTS, openLbMaps, type LbMaps } from './maps/lb-maps.js';
import { LXC_IFACES_LAYOUT, openLxcInterfaces, type LxcInterfacesMap } from './maps/lxc-interfaces.js';
import { METRICS_LAYOUT, openMetrics, type MetricsMap } from './maps/metrics.js';
import { NODE_ROUTES_LAYOUT, openNodeRoutes, type NodeRoutesMap } from './maps/node-routes.js';
import { openPolicyV3, POLICY_V3_LAYOUT, type PolicyV3Map } from './maps/policy-v3.js';

/** Where scripts/build-bpf puts the object, relative to this module in dist/. */
export const LXC_OBJECT_PATH = fileURLToPath(new URL('../../../build/bpf/lxc.o', import.meta.url));

export interface LoadLxcOptions {
  /** bpffs directory holding the shared maps (e.g. /sys/fs/bpf/sluice). */
  readonly pinRoot: string;
  readonly objectPath?: string;
}

export interface LxcMaps {
  readonly ipcache: IpcacheMap;
  readonly policy: PolicyV3Map;
  readonly endpoints: EndpointsMap;
  readonly conntrack: ConntrackMap;
  readonly ctConfig: CtConfigMap;
  readonly frag: FragMap;
  readonly metrics: MetricsMap;
  readonly counters: CountersMap;
  readonly config: ConfigMap;
  readonly events: RawMap;
  /** Host veth ifindex → the endpoint it serves. */
  readonly interfaces: LxcInterfacesMap;
  /** Local pod address → its host veth (host routing). */
  readonly addresses: LxcAddressesMap;
  /** Another node's podCIDR → device and next hop (host routing). */
  readonly nodeRoutes: NodeRoutesMap;
  /** Services: frontends, backends, backend tables, ClientIP affinity (bpf/lib/lb.h). */
  readonly lb: LbMaps;
}

/** Every map of lxc.o by pin name (for checks that all are there and shared). */
export const LXC_MAP_LAYOUTS = [
  IPHOST_LAYOUT, IPCACHE_LAYOUT, POLICY_V3_LAYOUT, ENDPOINTS_LAYOUT, CT_LAYOUT, CT_CONFIG_LAYOUT, FRAG_LAYOUT,
  METRICS_LAYOUT, COUNTERS_LAYOUT, CONFIG_LAYOUT, EVENTS_LAYOUT, LXC_IFACES_LAYOUT, LXC_ADDRESSES_LAYOUT,
  NODE_ROUTES_LAYOUT, ...LB_MAP_LAYOUTS,
] as const;

/** Types each map, opened by name through `open` (an object's maps or pins). */
export function openLxcMaps(open: (name: string) => RawMap): LxcMaps {
  return {
    ipcache: openIpcache(open(IPHOST_LAYOUT.name), open(IPCACHE_LAYOUT.name)),
    policy: openPolicyV3(open(POLICY_V3_LAYOUT.name)),
    endpoints: openEndpoints(open(ENDPOINTS_LAYOUT.name)),
    conntrack: openConntrack(open(CT_LAYOUT.name)),
    ctConfig: openCtConfig(open(CT_CONFIG_LAYOUT.name)),
    frag: openFrag(open(FRAG_LAYOUT.name)),
    metrics: openMetrics(open(METRICS_LAYOUT.name)),
    counters: openCounters(open(COUNTERS_LAYOUT.name)),
    config: openConfig(open(CONFIG_LAYOUT.name)),
    events: openEvents(open(EVENTS_LAYOUT.name)),
    interfaces: openLxcInterfaces(open(LXC_IFACES_LAYOUT.name)),
    addresses: openLxcAddresses(open(LXC_ADDRESSES_LAYOUT.name)),
    nodeRoutes: openNodeRoutes(open(NODE_ROUTES_LAYOUT.name)),
    lb: openLbMaps(open),
  };
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
  const object = openObject(opts.objectPath ?? LXC_OBJECT_PATH, { pinRoot: opts.pinRoot });
  try {
    return {
      object,
      fromContainer: object.program('from_container'),
      toContainer: object.program('to_container'),
      maps: openLxcMaps((name) => object.map(name)),
      close: () => object.close(),
    };
  } catch (err) {
    object.close();
    throw err;
  }
}
