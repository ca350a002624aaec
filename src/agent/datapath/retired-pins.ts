/**
 * Pins of map layouts this build no longer uses. A layout change gets a new
 * pin name (sl_policy_v2 → sl_policy_v3), so an upgraded node keeps the old
 * map pinned beside the new one, with its memory (sl_policy_v2 at its
 * compiled size is 4M trie entries), until someone removes the name. The agent
 * does that at start, once its own maps are in place.
 *
 * Removing a pin removes only the name: programs of an older build still
 * attached to a pod hold their maps until they are detached; no program of
 * this build refers to these names.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';

export const RETIRED_MAP_PINS: readonly string[] = [
  'sl_policy_v1', // hash (endpoint, identity, direction): no ports; replaced by v2
  'sl_policy_v2', // LPM trie with port prefixes; replaced by the v3 hash (issue 3: flat per-packet cost)
  'sl_endpoints_v1', // replaced by v2's per-direction port-class masks
  'sl_ct_v1', // conntrack without entry kinds and NAT fields; replaced by v2 (Services: the backend a connection is pinned to)
];

/** Removes the retired pins present in pinDir; returns the removed paths. */
export function removeRetiredPins(pinDir: string): string[] {
  const removed: string[] = [];
  for (const name of RETIRED_MAP_PINS) {
    const path = join(pinDir, name);
    try {
      rmSync(path);
      removed.push(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return removed;
}
