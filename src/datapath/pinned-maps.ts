/**
 * Opens the shared datapath maps from their pins, for a process that did not
 * load the programs (the CLI, an agent after restart). Each map is checked
 * against its module's layout, so a pin left by another ABI fails loudly.
 */
import { join } from 'node:path';
import { openPinnedMap, type PinnedMap } from './bpf-map.js';
import type { LxcMaps } from './lxc.js';
import { CONFIG_LAYOUT, openConfig } from './maps/config.js';
import { EVENTS_LAYOUT, openEvents } from './maps/events.js';
import { IPCACHE_LAYOUT, IPHOST_LAYOUT, openIpcache } from './maps/ipcache.js';
import { METRICS_LAYOUT, openMetrics } from './maps/metrics.js';
import { POLICY_LAYOUT, openPolicy } from './maps/policy.js';

export interface PinnedDatapathMaps extends LxcMaps {
  /** Releases our fds; the pins stay. */
  close(): void;
}

export function openPinnedDatapathMaps(pinRoot: string): PinnedDatapathMaps {
  const opened: PinnedMap[] = [];
  const open = (name: string): PinnedMap => {
    const map = openPinnedMap(join(pinRoot, name));
    opened.push(map);
    return map;
  };
  const close = (): void => {
    for (const m of opened) m.close();
  };
  try {
    return {
      ipcache: openIpcache(open(IPHOST_LAYOUT.name), open(IPCACHE_LAYOUT.name)),
      policy: openPolicy(open(POLICY_LAYOUT.name)),
      metrics: openMetrics(open(METRICS_LAYOUT.name)),
      config: openConfig(open(CONFIG_LAYOUT.name)),
      events: openEvents(open(EVENTS_LAYOUT.name)),
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}
