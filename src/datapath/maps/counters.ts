/**
 * sl_counters_v1: per-CPU array of counter_value indexed by enum
 * sluice_counter (bpf/lib/counters.h): what the datapath did besides
 * forwarding and dropping — events lost to a full ring buffer, conntrack and
 * fragment bookkeeping. Readers sum the CPUs.
 */
import type { PerCpuMap, RawMap } from '../api.js';
import { BpfMapType, perCpuMap } from '../bpf-map.js';
import { counterValueCodec, SluiceCounter, sluiceCounterName, type CounterValue } from '../generated/abi.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const COUNTERS_LAYOUT: MapLayout = {
  name: 'sl_counters_v1',
  type: BpfMapType.PERCPU_ARRAY,
  keySize: u32Codec.size,
  valueSize: counterValueCodec.size,
  maxEntries: SluiceCounter.MAX,
};

export type CountersMap = PerCpuMap<number, CounterValue>;

/** Types raw after checking it is the counters map of this layout. */
export function openCounters(raw: RawMap): CountersMap {
  checkLayout(raw.info, COUNTERS_LAYOUT);
  return perCpuMap(raw, u32Codec, counterValueCodec);
}

/** One counter (a SluiceCounter value), summed over CPUs. */
export function readDatapathCounter(map: CountersMap, counter: number): bigint {
  if (!Number.isInteger(counter) || counter < 0 || counter >= SluiceCounter.MAX) {
    throw new RangeError(`no datapath counter ${counter} (0..${SluiceCounter.MAX - 1})`);
  }
  return (map.lookup(counter) ?? []).reduce((sum, v) => sum + v.value, 0n);
}

export interface CounterRow {
  readonly counter: string; // EVENTS_LOST, CT_CREATED, ...
  readonly value: bigint;
}

/** The non-zero counters, summed over CPUs, in index order. */
export function dumpCounters(map: CountersMap): CounterRow[] {
  const rows: CounterRow[] = [];
  for (const [index, perCpu] of map.entries()) {
    const value = perCpu.reduce((sum, v) => sum + v.value, 0n);
    if (value !== 0n) rows.push({ counter: sluiceCounterName(index), value });
  }
  return rows;
}
