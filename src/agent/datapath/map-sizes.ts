/**
 * The agent's map sizes (config `mapSizes`) on the pinned maps of lxc.o.
 *
 * - The config names maps by their job (`policy`); the kernel by pin name
 *   (`sl_policy_v3`, bumped with the layout). AGENT_MAP_PINS is that mapping,
 *   from the map modules' layouts, so a layout bump carries the size along.
 * - createDatapathMaps: maps missing from the pin dir are created by loading
 *   lxc.o once with the pin dir and the sizes (libbpf creates and pins them;
 *   no program stays loaded). Maps already pinned are reused as they are.
 * - checkMapSizes: a pinned map keeps its size for life (resizing means a new
 *   map, without the entries that enforce policy now), so a pin of another
 *   size than configured is an error naming the map, both sizes and the way
 *   out, never a silent re-creation.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RawMap } from '../../datapath/api.js';
import { openObject } from '../../datapath/bpf-object.js';
import { LXC_MAP_LAYOUTS, LXC_OBJECT_PATH, type LxcMaps } from '../../datapath/lxc.js';
import { CT_LAYOUT } from '../../datapath/maps/conntrack.js';
import { ENDPOINTS_LAYOUT } from '../../datapath/maps/endpoints.js';
import { FRAG_LAYOUT } from '../../datapath/maps/frag.js';
import { IPCACHE_LAYOUT, IPHOST_LAYOUT } from '../../datapath/maps/ipcache.js';
import { LXC_IFACES_LAYOUT } from '../../datapath/maps/lxc-interfaces.js';
import { POLICY_V3_LAYOUT } from '../../datapath/maps/policy-v3.js';
import { MAP_NAMES, type MapName } from '../config.js';
import { AgentError } from '../errors.js';

export type MapSizes = Readonly<Record<MapName, number>>;

/** Config name → pin name of the map in lxc.o. */
export const AGENT_MAP_PINS: Readonly<Record<MapName, string>> = {
  ipcache: IPCACHE_LAYOUT.name,
  iphost: IPHOST_LAYOUT.name,
  policy: POLICY_V3_LAYOUT.name,
  endpoints: ENDPOINTS_LAYOUT.name,
  conntrack: CT_LAYOUT.name,
  fragments: FRAG_LAYOUT.name,
  interfaces: LXC_IFACES_LAYOUT.name,
};

/** The sizes as OpenOptions.maxEntries (by pin name). */
export function maxEntriesByPin(sizes: MapSizes): Record<string, number> {
  return Object.fromEntries(MAP_NAMES.map((name) => [AGENT_MAP_PINS[name], sizes[name]]));
}

/** The maps the config sizes, by config name (also what metrics call them). */
export function agentMaps(maps: LxcMaps): ReadonlyArray<readonly [MapName, RawMap]> {
  return [
    ['iphost', maps.ipcache.hosts.raw], ['ipcache', maps.ipcache.prefixes.raw], ['policy', maps.policy.raw],
    ['endpoints', maps.endpoints.raw], ['conntrack', maps.conntrack.raw], ['fragments', maps.frag.raw],
    ['interfaces', maps.interfaces.raw],
  ];
}

export interface CreateMapsOptions {
  readonly pinDir: string;
  /** Absent: lxc.o's compiled sizes. */
  readonly mapSizes?: MapSizes;
  /** lxc.o; default: the built one (LXC_OBJECT_PATH). */
  readonly objectPath?: string;
}

/**
 * Creates the maps of lxc.o missing from `pinDir`, sized by `mapSizes`.
 * Returns true when it loaded the object (something was missing). A pinned
 * map of another size than asked for fails the load (BpfError op
 * 'max_entries', naming both sizes).
 */
export function createDatapathMaps(opts: CreateMapsOptions): boolean {
  if (LXC_MAP_LAYOUTS.every((l) => existsSync(join(opts.pinDir, l.name)))) return false;
  const object = openObject(opts.objectPath ?? LXC_OBJECT_PATH, {
    pinRoot: opts.pinDir,
    ...(opts.mapSizes !== undefined ? { maxEntries: maxEntriesByPin(opts.mapSizes) } : {}),
  });
  object.close();
  return true;
}

/** Throws AgentError('invalid-config', field `mapSizes.<name>`) for the first pinned map of another size. */
export function checkMapSizes(maps: LxcMaps, sizes: MapSizes, pinDir: string): void {
  for (const [name, raw] of agentMaps(maps)) {
    const pinned = raw.info.maxEntries;
    if (pinned === sizes[name]) continue;
    throw new AgentError(
      'invalid-config',
      `mapSizes.${name}: map ${AGENT_MAP_PINS[name]} is pinned in ${pinDir} with max_entries ${pinned}, configured ${sizes[name]}: ` +
        `a pinned map keeps its size; configure ${pinned}, or remove the pins (their entries go with them) to resize`,
      `mapSizes.${name}`,
    );
  }
}
