/**
 * Opens the shared datapath maps from their pins, for a process that did not
 * load the programs (the CLI, an agent after restart). Each map is checked
 * against its module's layout, so a pin left by another ABI fails loudly.
 */
import { join } from 'node:path';
import { openPinnedMap, type PinnedMap } from './bpf-map.js';
import { openLxcMaps, type LxcMaps } from './lxc.js';

export interface PinnedDatapathMaps extends LxcMaps {
  /** Releases our fds; the pins stay. */
  close(): void;
}

export function openPinnedDatapathMaps(pinRoot: string): PinnedDatapathMaps {
  const opened: PinnedMap[] = [];
  const close = (): void => {
    for (const m of opened) m.close();
  };
  try {
    const maps = openLxcMaps((name) => {
      const map = openPinnedMap(join(pinRoot, name));
      opened.push(map);
      return map;
    });
    return { ...maps, close };
  } catch (err) {
    close();
    throw err;
  }
}
