/**
 * The load balancer's maps together (bpf/lib/lb.h): frontends, backends,
 * backend tables, ClientIP affinity and external connections, opened by pin
 * name through `open` (an object's maps or pins), each checked against its
 * layout.
 */
import type { RawMap } from '../api.js';
import { LB_AFF_LAYOUT, openLbAffinity, type LbAffinityMap } from './lb-affinity.js';
import { LB_BE_LAYOUT, openLbBackends, type LbBackendsMap } from './lb-backends.js';
import { LB_NAT_LAYOUT, openLbNat, type LbNatMap } from './lb-nat.js';
import { LB_SVC_LAYOUT, openLbServices, type LbServicesMap } from './lb-services.js';
import { LB_TBL_LAYOUT, LbTables, type InnerMaps } from './lb-tables.js';

export interface LbMaps {
  readonly services: LbServicesMap;
  readonly backends: LbBackendsMap;
  readonly tables: LbTables;
  readonly affinity: LbAffinityMap;
  /** Connections from outside the node through a frontend (bpf/host.c). */
  readonly nat: LbNatMap;
}

export const LB_MAP_LAYOUTS = [LB_SVC_LAYOUT, LB_BE_LAYOUT, LB_TBL_LAYOUT, LB_AFF_LAYOUT, LB_NAT_LAYOUT] as const;

export function openLbMaps(open: (name: string) => RawMap, inner?: InnerMaps): LbMaps {
  return {
    services: openLbServices(open(LB_SVC_LAYOUT.name)),
    backends: openLbBackends(open(LB_BE_LAYOUT.name)),
    tables: new LbTables(open(LB_TBL_LAYOUT.name), inner),
    affinity: openLbAffinity(open(LB_AFF_LAYOUT.name)),
    nat: openLbNat(open(LB_NAT_LAYOUT.name)),
  };
}
