/**
 * sl_config_v1: one global_config element, node-wide switches the datapath
 * reads per packet (bpf/lib/config.h). Changes take effect on the next packet.
 */
import type { RawMap, TypedMap } from '../api.js';
import { BpfMapType, typedMap } from '../bpf-map.js';
import { globalConfigCodec, SluiceConfigFlags, type GlobalConfig } from '../generated/abi.js';
import { checkLayout, u32Codec, type MapLayout } from './layout.js';

export const CONFIG_LAYOUT: MapLayout = {
  name: 'sl_config_v1',
  type: BpfMapType.ARRAY,
  keySize: u32Codec.size,
  valueSize: globalConfigCodec.size,
  maxEntries: 1,
};

export type ConfigMap = TypedMap<number, GlobalConfig>;

/** Types raw after checking it is a config map of this layout. */
export function openConfig(raw: RawMap): ConfigMap {
  checkLayout(raw.info, CONFIG_LAYOUT);
  return typedMap(raw, u32Codec, globalConfigCodec);
}

/** The one element (an array element always exists; zero until written). */
export function readGlobalConfig(map: ConfigMap): GlobalConfig {
  const cfg = map.lookup(0);
  if (!cfg) throw new Error(`${CONFIG_LAYOUT.name}: element 0 missing from a one-element array`);
  return cfg;
}

export function writeGlobalConfig(map: ConfigMap, cfg: GlobalConfig): void {
  map.update(0, cfg);
}

/** Turns TRACE events for allowed packets on or off, keeping other flags. */
export function setTraceAllowed(map: ConfigMap, on: boolean): void {
  const bit = SluiceConfigFlags.TRACE_ALLOWED;
  const { flags } = readGlobalConfig(map);
  writeGlobalConfig(map, { flags: on ? (flags | bit) >>> 0 : (flags & ~bit) >>> 0 });
}

/**
 * Which allowed packets the datapath reports (drops always are): none; those policy decided (one
 * per connection); those plus each tracked TCP packet that shows a new flag (a handful per
 * connection: SYN-ACK, first PSH, FIN, RST); or every packet.
 */
export type TraceMode = 'off' | 'policy' | 'tcp-flags' | 'all';

export const TRACE_MODES: readonly TraceMode[] = ['off', 'policy', 'tcp-flags', 'all'];

const TRACE_BITS: Readonly<Record<TraceMode, number>> = {
  off: 0,
  policy: SluiceConfigFlags.TRACE_NEW,
  'tcp-flags': SluiceConfigFlags.TRACE_NEW | SluiceConfigFlags.TRACE_TCP_FLAGS,
  all: SluiceConfigFlags.TRACE_ALLOWED,
};

/** Sets the trace bits for a mode, keeping other flags. */
export function setTraceMode(map: ConfigMap, mode: TraceMode): void {
  const bits = SluiceConfigFlags.TRACE_ALLOWED | SluiceConfigFlags.TRACE_NEW | SluiceConfigFlags.TRACE_TCP_FLAGS;
  const want = TRACE_BITS[mode];
  const { flags } = readGlobalConfig(map);
  writeGlobalConfig(map, { flags: ((flags & ~bits) | want) >>> 0 });
}

/** Turns delivery to local pods past the node's stack (bpf/lib/host-routing.h) on or off, keeping other flags. */
export function setBpfHostRouting(map: ConfigMap, on: boolean): void {
  const bit = SluiceConfigFlags.BPF_HOST_ROUTING;
  const { flags } = readGlobalConfig(map);
  writeGlobalConfig(map, { flags: on ? (flags | bit) >>> 0 : (flags & ~bit) >>> 0 });
}
