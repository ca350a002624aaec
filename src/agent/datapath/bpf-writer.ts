/**
 * The agent's DatapathWriter and DatapathStats over the pinned maps of
 * lxc.o (src/datapath/pinned-maps.ts).
 *
 * - readCurrent: a dump of sl_iphost/sl_ipcache/sl_endpoints/sl_policy_v3 in
 *   the compiler's terms (stateFromMapContents).
 * - apply: applyPlan writes the plan in its order and carries out the
 *   fail-closed rules of apply-plan.ts; its failures are reported per map
 *   (iphost for /32s, ipcache for shorter prefixes, endpoints, policy) with
 *   the endpoints that were closed (marked POLICY_INCOMPLETE: they drop
 *   every connection until a complete apply clears the flag).
 * - stats: entries and max entries per map (pressure), and the per-CPU
 *   metrics map summed (drops by reason, NONE = forwarded).
 *
 * openBpfDatapath creates the maps missing from the pin dir with the
 * configured sizes and refuses pinned ones of another size (map-sizes.ts),
 * removes the pins of map layouts this build replaced (retired-pins.ts),
 * then makes sure this build's node-shared lxc programs are pinned
 * (lxc-shared.ts): loading them runs the verifier for ~100 ms on the calling
 * thread, which belongs in the agent's start, not in the first CNI ADD the
 * agent runs in-process after an install or upgrade.
 */
import { constants } from 'node:os';
import { openSharedLxc } from '../../datapath/lxc-shared.js';
import { dumpMetrics } from '../../datapath/maps/metrics.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../../datapath/pinned-maps.js';
import { applyPlan, type ApplyFailure, type ApplyReport } from '../../policy-engine/apply.js';
import type { ApplyPlan } from '../../policy/apply-plan.js';
import { stateFromMapContents } from '../../policy/datapath-state.js';
import type { ApplyResult, DatapathStats, DatapathWriter, MapFailure, MapUsage, PacketCounter } from '../ports.js';
import { agentMaps, checkMapSizes, createDatapathMaps, type CreateMapsOptions } from './map-sizes.js';
import type { BpfState } from './policy-compiler.js';
import { removeRetiredPins } from './retired-pins.js';

export type BpfDatapathOptions = CreateMapsOptions;

export function openBpfDatapath(opts: BpfDatapathOptions): BpfDatapath {
  createDatapathMaps(opts);
  const retiredPinsRemoved = removeRetiredPins(opts.pinDir);
  const maps = openPinnedDatapathMaps(opts.pinDir);
  try {
    if (opts.mapSizes !== undefined) checkMapSizes(maps, opts.mapSizes, opts.pinDir);
    openSharedLxc({ pinRoot: opts.pinDir, ...(opts.objectPath !== undefined ? { objectPath: opts.objectPath } : {}) }).close();
  } catch (e) {
    maps.close();
    throw e;
  }
  return new BpfDatapath(maps, retiredPinsRemoved);
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The report's failures, one per map (the key of a failed ipcache write tells iphost from ipcache). */
export function mapFailures(report: ApplyReport): MapFailure[] {
  const byMap = new Map<string, ApplyFailure[]>();
  for (const f of report.failures) {
    const map = f.map === 'ipcache' && f.key.endsWith('/32') ? 'iphost' : f.map;
    const list = byMap.get(map);
    if (list === undefined) byMap.set(map, [f]);
    else list.push(f);
  }
  const closed = report.failClosed.endpointsClosed;
  return [...byMap].map(([map, list]) => {
    const first = list[0] as ApplyFailure;
    const code = first.errno !== undefined ? ERRNO_NAMES.get(first.errno) ?? `errno ${first.errno}` : undefined;
    const more = list.length > 1 ? ` (and ${list.length - 1} more)` : '';
    return {
      map,
      message: `${first.step} ${first.key}: ${first.message}${more}`,
      ...(code !== undefined ? { code } : {}),
      ...(closed.length > 0 ? { endpoints: closed } : {}),
    };
  });
}

export class BpfDatapath implements DatapathWriter<BpfState, ApplyPlan>, DatapathStats {
  /** retiredPinsRemoved: pins of replaced map layouts this open removed (retired-pins.ts), for the log. */
  constructor(readonly maps: PinnedDatapathMaps, readonly retiredPinsRemoved: readonly string[] = []) {}

  readCurrent(): Promise<BpfState> {
    const m = this.maps;
    const read = stateFromMapContents({ ipcache: m.ipcache.entries(), endpoints: m.endpoints.entries(), policy: m.policy.entries() });
    return Promise.resolve({ datapath: read.state, foreignPolicyKeys: read.foreignPolicyKeys });
  }

  apply(plan: ApplyPlan): Promise<ApplyResult> {
    const report = applyPlan(plan, this.maps);
    const { written } = report;
    return Promise.resolve({ applied: written.ipcache + written.endpoints + written.policy, failures: mapFailures(report) });
  }

  mapUsage(): readonly MapUsage[] {
    return agentMaps(this.maps).map(([map, raw]) => {
      let entries = 0;
      for (const _ of raw.keys()) entries++;
      return { map, entries, maxEntries: raw.info.maxEntries };
    });
  }

  packetCounters(): readonly PacketCounter[] {
    return dumpMetrics(this.maps.metrics);
  }

  /** Releases the fds; the pinned maps keep enforcing. */
  close(): void {
    this.maps.close();
  }
}
