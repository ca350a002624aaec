/**
 * Owner of sl_ct_cfg_v1 (src/datapath/maps/ct-config.ts): the connection
 * lifetimes conntrack gives each state, in ms (0: the datapath's default).
 * Desired: the node's configured lifetimes; one element, written when it
 * differs from what the map holds. Changes apply from the next packet of
 * each connection.
 */
import type { CtConfig } from '../datapath/generated/abi.js';
import { upsertAll, type MapStore } from './map-writes.js';
import { MapView } from './map-view.js';
import { Phase, type Reconciler, type WriteStep } from './reconciler.js';
import { stepFailure } from './round.js';

const MAP = 'ct-config';
const KEYS: readonly (keyof CtConfig)[] = ['tcpSynMs', 'tcpEstablishedMs', 'tcpFinMs', 'tcpClosedMs', 'udpMs', 'icmpMs'];

export interface CtConfigRoundInput {
  /** Absent fields: 0, the datapath's default. */
  readonly conntrack: Partial<CtConfig>;
}

export class CtConfigOwner implements Reconciler<CtConfigRoundInput> {
  readonly name = MAP;
  private readonly view: MapView<CtConfig | undefined>;

  constructor(private readonly map: MapStore<number, CtConfig>) {
    this.view = new MapView(() => {
      for (const [k, v] of map.entries()) if (k === 0) return v;
      return undefined;
    });
  }

  current(): CtConfig | undefined {
    return this.view.current();
  }

  plan(input: CtConfigRoundInput): readonly WriteStep[] {
    const to = Object.fromEntries(KEYS.map((k) => [k, input.conntrack[k] ?? 0])) as unknown as CtConfig;
    this.view.ask(to);
    const from = this.current();
    if (from !== undefined && KEYS.every((k) => from[k] === to[k])) return [];
    return [{
      phase: Phase.PUBLISH, kind: 'ct-config-update', size: 1,
      run: (_fc, fail) => upsertAll(this.map, [[0, to]], (_k, e) => fail(stepFailure('ct-config-update', MAP, 'element 0', e))),
    }];
  }

  settle(complete: boolean): void {
    this.view.settle(complete);
  }

  invalidate(): void {
    this.view.invalidate();
  }
}
