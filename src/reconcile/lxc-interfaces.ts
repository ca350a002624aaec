/**
 * Owner of sl_lxc_v1 (src/datapath/maps/lxc-interfaces.ts): host veth
 * ifindex → {endpoint id, pod IPv4}, how the node-shared lxc programs learn
 * which endpoint a packet's interface serves (bpf/lib/config.h). Desired:
 * one entry per registered local endpoint. The CNI attaches the programs
 * only after its registration's round completed, which includes this owner,
 * so an attached interface always has its entry; an interface whose entry
 * is missing drops everything (INTERFACE_UNKNOWN).
 *
 *  - PUBLISH: entries new or changed (a re-run ADD on a new veth);
 *  - RETIRE: entries no registered endpoint has (the CNI's DEL or the sweep
 *    normally deleted them already), through the map's one deletion path
 *    (releaseFrom in src/datapath/lxc-shared.ts), and only while the entry
 *    still names the endpoint it named when read.
 */
import type { EndpointConfig } from '../datapath/generated/abi.js';
import { releaseFrom, type LxcEntryStore } from '../datapath/lxc-shared.js';
import { upsertAll, type MapStore } from './map-writes.js';
import { MapView } from './map-view.js';
import { Phase, type Reconciler, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';

const MAP = 'lxc';

/** A local endpoint as this owner needs it. */
export interface LxcInterface {
  readonly hostIfindex: number;
  readonly endpointId: number;
  /** Natural order (parseIpv4). */
  readonly ipv4: number;
}

export interface LxcRoundInput {
  readonly interfaces: readonly LxcInterface[];
}

export class LxcInterfacesOwner implements Reconciler<LxcRoundInput> {
  readonly name = MAP;
  private readonly view: MapView<ReadonlyMap<number, EndpointConfig>>;

  constructor(private readonly map: MapStore<number, EndpointConfig> & LxcEntryStore) {
    this.view = new MapView(() => new Map([...map.entries()].map(([k, v]) => [k, { endpointId: v.endpointId, ipv4: v.ipv4 }])));
  }

  current(): ReadonlyMap<number, EndpointConfig> {
    return this.view.current();
  }

  plan(input: LxcRoundInput): readonly WriteStep[] {
    const from = this.current();
    const to = new Map<number, EndpointConfig>(input.interfaces.map((i) => [i.hostIfindex, { endpointId: i.endpointId, ipv4: i.ipv4 }]));
    this.view.ask(to);
    const upserts = [...to].filter(([k, v]) => {
      const old = from.get(k);
      return old === undefined || old.endpointId !== v.endpointId || old.ipv4 !== v.ipv4;
    });
    const deletes = [...from].filter(([k]) => !to.has(k)).map(([ifindex, c]) => ({ ifindex, endpointId: c.endpointId }));
    const steps: WriteStep[] = [];
    const key = (ifindex: number): string => `ifindex ${ifindex}`;
    if (upserts.length > 0) {
      steps.push({
        phase: Phase.PUBLISH, kind: 'lxc-upsert', size: upserts.length,
        run: (_fc, fail) => upsertAll(this.map, upserts, (k, e) => fail(stepFailure('lxc-upsert', MAP, key(k), e))),
      });
    }
    if (deletes.length > 0) {
      steps.push({
        phase: Phase.RETIRE, kind: 'lxc-delete', size: deletes.length,
        run: (_fc, fail) => {
          // The map's one deletion path; an entry re-registered meanwhile (another endpoint now) stays.
          let n = 0;
          for (const d of deletes) {
            try {
              n += releaseFrom(this.map, [d]).length;
            } catch (e) {
              fail(stepFailure('lxc-delete', MAP, key(d.ifindex), e));
            }
          }
          return n;
        },
      });
    }
    return steps;
  }

  settle(complete: boolean): void {
    this.view.settle(complete);
  }

  invalidate(): void {
    this.view.invalidate();
  }

  entries(): Readonly<Record<string, number>> {
    return { lxc: this.view.known()?.size ?? 0 };
  }
}
