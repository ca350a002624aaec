/**
 * What a node's pinned load-balancer maps (bpf/lib/lb.h) hold, read through
 * their codecs for the Service tests: frontends, backends, table keys and
 * ClientIP affinities; and which of those belong to given services or a
 * given address (what a deleted Service must not leave behind).
 */
import type { LbTableKey } from '../../../src/datapath/generated/abi.js';
import { dumpLbAffinity, type LbAffinityRow } from '../../../src/datapath/maps/lb-affinity.js';
import { dumpLbBackends, type LbBackendRow } from '../../../src/datapath/maps/lb-backends.js';
import { dumpLbServices, type LbServiceRow } from '../../../src/datapath/maps/lb-services.js';
import { openPinnedDatapathMaps } from '../../../src/datapath/pinned-maps.js';

export interface LbPinned {
  readonly frontends: readonly LbServiceRow[];
  readonly backends: readonly LbBackendRow[];
  readonly tables: readonly LbTableKey[];
  readonly affinities: readonly LbAffinityRow[];
}

/** Every entry of the load-balancer maps pinned in `pinDir` (a node's pin root). */
export function readLbPins(pinDir: string): LbPinned {
  const maps = openPinnedDatapathMaps(pinDir);
  try {
    const { lb } = maps;
    return {
      frontends: dumpLbServices(lb.services),
      backends: dumpLbBackends(lb.backends),
      tables: lb.tables.keys(),
      affinities: dumpLbAffinity(lb.affinity),
    };
  } finally {
    maps.close();
  }
}

/** The service ids of the frontends at `address` (any port, protocol and scope). */
export function serviceIdsAt(pinned: LbPinned, address: string): number[] {
  return [...new Set(pinned.frontends.filter((f) => f.frontend.startsWith(`${address}:`)).map((f) => f.serviceId))].sort((a, b) => a - b);
}

/** The entries at `address` or of `serviceIds`, one line each ("frontend …", "backend …", "table …", "affinity …"). */
export function entriesOf(pinned: LbPinned, address: string, serviceIds: readonly number[]): string[] {
  const ids = new Set(serviceIds);
  return [
    ...pinned.frontends.filter((f) => f.frontend.startsWith(`${address}:`) || ids.has(f.serviceId)).map((f) => `frontend ${f.frontend} ${f.scope} service ${f.serviceId}`),
    ...pinned.backends.filter((b) => ids.has(b.serviceId)).map((b) => `backend ${b.backendId} ${b.address} service ${b.serviceId}`),
    ...pinned.tables.filter((t) => ids.has(t.serviceId)).map((t) => `table service ${t.serviceId} set ${t.backendSet}`),
    ...pinned.affinities.filter((a) => ids.has(a.serviceId)).map((a) => `affinity ${a.client} → backend ${a.backendId} service ${a.serviceId}`),
  ];
}
