/**
 * sl_ct_cfg_v1: one ct_config element, the connection lifetimes conntrack
 * gives each state (bpf/lib/conntrack.h), in milliseconds. 0 means the
 * default (SLUICE_CT_DEFAULT_* in sluice_abi.h), which is what a never-written
 * element holds. Changes apply from the next packet of each connection.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { ctConfigCodec, SluiceCtDefaultMs, type CtConfig } from '../generated/abi.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const CT_CONFIG_LAYOUT: MapLayout = {
  name: 'sl_ct_cfg_v1',
  type: BpfMapType.ARRAY,
  keySize: u32Codec.size,
  valueSize: ctConfigCodec.size,
  maxEntries: 1,
};

export type CtConfigMap = TypedMap<number, CtConfig>;

/** Types raw after checking it is the conntrack config map of this layout. */
export function openCtConfig(raw: RawMap): CtConfigMap {
  checkLayout(raw.info, CT_CONFIG_LAYOUT);
  return typedMap(raw, u32Codec, ctConfigCodec);
}

/** The lifetimes the datapath uses when the config says 0. */
export const CT_DEFAULTS: CtConfig = {
  tcpSynMs: SluiceCtDefaultMs.TCP_SYN_MS,
  tcpEstablishedMs: SluiceCtDefaultMs.TCP_ESTABLISHED_MS,
  tcpFinMs: SluiceCtDefaultMs.TCP_FIN_MS,
  tcpClosedMs: SluiceCtDefaultMs.TCP_CLOSED_MS,
  udpMs: SluiceCtDefaultMs.UDP_MS,
  icmpMs: SluiceCtDefaultMs.ICMP_MS,
};

/** As written (0 = default). */
export function readCtConfig(map: CtConfigMap): CtConfig {
  const cfg = map.lookup(0);
  if (!cfg) throw new Error(`${CT_CONFIG_LAYOUT.name}: element 0 missing from a one-element array`);
  return cfg;
}

/** Writes the lifetimes given, keeping the others; 0 restores a default. */
export function writeCtConfig(map: CtConfigMap, changes: Partial<CtConfig>): void {
  for (const [field, ms] of Object.entries(changes)) {
    if (!Number.isInteger(ms) || ms < 0 || ms > 0xffff_ffff) throw new RangeError(`ct config ${field}: want 0..2^32-1 ms, got ${ms}`);
  }
  map.update(0, { ...readCtConfig(map), ...changes });
}

/** The lifetimes in effect: the written ones, defaults where 0. */
export function effectiveCtConfig(map: CtConfigMap): CtConfig {
  const cfg = readCtConfig(map);
  const out = { ...cfg };
  for (const k of Object.keys(CT_DEFAULTS) as (keyof CtConfig)[]) out[k] = cfg[k] || CT_DEFAULTS[k];
  return out;
}
