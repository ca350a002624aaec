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
 *
 * It also owns sl_lxc_addr_v1 (src/datapath/maps/lxc-addresses.ts), the same
 * endpoints keyed by address: pod IPv4 → host veth, published and retired in
 * the same phases. The datapath trusts an address entry only while sl_lxc_v1
 * confirms it, so the order of the two maps' writes within a phase does not
 * matter, and an address entry that outlives its interface entry (until
 * this owner's next round) is ignored.
 */
import type { EndpointConfig, LxcAddress } from '../datapath/generated/abi.js';
import { releaseFrom, type LxcEntryStore } from '../datapath/lxc-shared.js';
import { deleteAll, upsertAll, type MapStore } from './map-writes.js';
import { MapView } from './map-view.js';
import { Phase, type Reconciler, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';
import { formatIpv4 } from '../policy/cidr.js';

const MAP = 'lxc';
const ADDRESS_MAP = 'lxc-addresses';

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

/** The two maps this owner writes. */
export interface LxcOwnerMaps {
  readonly interfaces: MapStore<number, EndpointConfig> & LxcEntryStore;
  /** Pod IPv4 (natural order) → host veth. */
  readonly addresses: MapStore<number, LxcAddress>;
}

export class LxcInterfacesOwner implements Reconciler<LxcRoundInput> {
  readonly name = MAP;
  private readonly map: LxcOwnerMaps['interfaces'];
  private readonly addresses: LxcOwnerMaps['addresses'];
  private readonly view: MapView<ReadonlyMap<number, EndpointConfig>>;
  private readonly addressView: MapView<ReadonlyMap<number, number>>;

  constructor(maps: LxcOwnerMaps) {
    this.map = maps.interfaces;
    this.addresses = maps.addresses;
    this.view = new MapView(() => new Map([...this.map.entries()].map(([k, v]) => [k, { endpointId: v.endpointId, ipv4: v.ipv4 }])));
    this.addressView = new MapView(() => new Map([...this.addresses.entries()].map(([addr, a]) => [addr, a.ifindex])));
  }

  current(): ReadonlyMap<number, EndpointConfig> {
    return this.view.current();
  }

  plan(input: LxcRoundInput): readonly WriteStep[] {
    return [...this.planInterfaces(input), ...this.planAddresses(input)];
  }

  private planAddresses(input: LxcRoundInput): WriteStep[] {
    const from = this.addressView.current();
    const to = new Map<number, number>(input.interfaces.filter((i) => i.ipv4 !== 0).map((i) => [i.ipv4, i.hostIfindex]));
    this.addressView.ask(to);
    const upserts: [number, LxcAddress][] = [...to].filter(([addr, ifindex]) => from.get(addr) !== ifindex).map(([addr, ifindex]) => [addr, { ifindex }]);
    const deletes = [...from.keys()].filter((addr) => !to.has(addr));
    const key = (addr: number): string => `address ${formatIpv4(addr)}`;
    const steps: WriteStep[] = [];
    if (upserts.length > 0) {
      steps.push({
        phase: Phase.PUBLISH, kind: 'lxc-address-upsert', size: upserts.length,
        run: (_fc, fail) => upsertAll(this.addresses, upserts, (k, e) => fail(stepFailure('lxc-address-upsert', ADDRESS_MAP, key(k), e))),
      });
    }
    if (deletes.length > 0) {
      steps.push({
        phase: Phase.RETIRE, kind: 'lxc-address-delete', size: deletes.length,
        run: (_fc, fail) => deleteAll(this.addresses, deletes, (k, e) => fail(stepFailure('lxc-address-delete', ADDRESS_MAP, key(k), e))),
      });
    }
    return steps;
  }

  private planInterfaces(input: LxcRoundInput): WriteStep[] {
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
    this.addressView.settle(complete);
  }

  invalidate(): void {
    this.view.invalidate();
    this.addressView.invalidate();
  }

  entries(): Readonly<Record<string, number>> {
    return { lxc: this.view.known()?.size ?? 0, [ADDRESS_MAP]: this.addressView.known()?.size ?? 0 };
  }
}
