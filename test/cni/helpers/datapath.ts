/**
 * What the agent's endpoints owner does for a pod no policy selects: give
 * each registered endpoint its entry in sl_endpoints_v2. The agent runs with
 * --datapath none in these tests, so the test writes the entries itself,
 * after checking that without them the programs drop everything.
 */
import { spawnSync } from 'node:child_process';
import { endpointEntry } from '../../../src/datapath/maps/endpoints.js';
import { openPinnedDatapathMaps } from '../../../src/datapath/pinned-maps.js';

export function admitEndpoints(pinRoot: string, endpointIds: readonly number[]): void {
  const maps = openPinnedDatapathMaps(pinRoot);
  try {
    for (const id of endpointIds) {
      // A not-isolated entry where none is (what the agent's endpoints owner writes for a pod no policy selects).
      if (maps.endpoints.lookup(id) === undefined) maps.endpoints.update(id, endpointEntry({ ingress: false, egress: false }, 0, { ingress: 0, egress: 0 }));
    }
  } finally {
    maps.close();
  }
}

export function endpointEntries(pinRoot: string): number[] {
  const maps = openPinnedDatapathMaps(pinRoot);
  try {
    return [...maps.endpoints.entries()].map(([id]) => id).sort((a, b) => a - b);
  } finally {
    maps.close();
  }
}

/** One ICMP echo from inside a netns; true when answered within a second. */
export function ping(fromNetns: string, ip: string): boolean {
  return spawnSync('nsenter', [`--net=${fromNetns}`, 'ping', '-c', '1', '-W', '1', ip], { encoding: 'utf8' }).status === 0;
}
