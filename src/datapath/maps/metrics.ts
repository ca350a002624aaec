/**
 * sl_metrics_v1: per-CPU array of {packets, bytes} indexed by
 * (direction, drop reason); reason NONE counts forwarded packets
 * (bpf/lib/metrics.h). Readers sum the CPUs.
 */
import type { PerCpuMap, RawMap } from '../api.js';
import { BpfMapType, perCpuMap } from '../bpf-map.js';
import {
  metricsValueCodec, SluiceDirection, SluiceDropReason, SluiceMapCapacity, sluiceDirectionName, sluiceDropReasonName, type MetricsValue,
} from '../generated/abi.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const METRICS_LAYOUT: MapLayout = {
  name: 'sl_metrics_v1',
  type: BpfMapType.PERCPU_ARRAY,
  keySize: u32Codec.size,
  valueSize: metricsValueCodec.size,
  maxEntries: SluiceMapCapacity.METRICS_ENTRIES, // one slot per (direction, reason)
};

export type MetricsMap = PerCpuMap<number, MetricsValue>;

/** Types raw after checking it is a metrics map of this layout. */
export function openMetrics(raw: RawMap): MetricsMap {
  checkLayout(raw.info, METRICS_LAYOUT);
  return perCpuMap(raw, u32Codec, metricsValueCodec);
}

/** The slot of (direction, reason), as metrics_index() computes it in C. */
export function metricsIndex(direction: number, reason: number): number {
  if (direction < 0 || direction >= SluiceDirection.MAX || reason < 0 || reason >= SluiceDropReason.REASON_MAX) {
    throw new RangeError(`no metrics slot for direction ${direction}, reason ${reason}`);
  }
  return direction * SluiceDropReason.REASON_MAX + reason;
}

export interface MetricsRow {
  readonly direction: string; // INGRESS | EGRESS
  readonly reason: string; // NONE (= forwarded) or the drop reason
  readonly packets: bigint;
  readonly bytes: bigint;
}

/** Summed over CPUs. */
export function readCounter(map: MetricsMap, direction: number, reason: number): MetricsValue {
  const perCpu = map.lookup(metricsIndex(direction, reason)) ?? [];
  return sumCpus(perCpu);
}

/** The non-zero counters, summed over CPUs, in index order. */
export function dumpMetrics(map: MetricsMap): MetricsRow[] {
  const rows: MetricsRow[] = [];
  for (const [index, perCpu] of map.entries()) {
    const total = sumCpus(perCpu);
    if (total.packets === 0n && total.bytes === 0n) continue;
    rows.push({
      direction: sluiceDirectionName(Math.floor(index / SluiceDropReason.REASON_MAX)),
      reason: sluiceDropReasonName(index % SluiceDropReason.REASON_MAX),
      packets: total.packets,
      bytes: total.bytes,
    });
  }
  return rows;
}

function sumCpus(values: readonly MetricsValue[]): MetricsValue {
  return values.reduce((acc, v) => ({ packets: acc.packets + v.packets, bytes: acc.bytes + v.bytes }),
    { packets: 0n, bytes: 0n });
}
