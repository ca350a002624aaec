/**
 * The agent's DatapathWriter and DatapathStats over the pinned maps of
 * lxc.o (src/datapath/pinned-maps.ts).
 *
 * - readCurrent: a dump of sl_iphost/sl_ipcache/sl_endpoints/sl_policy_v2 in
 *   the compiler's terms (stateFromMapContents).
 * - apply: applyPlan writes the plan in its order and carries out the
 *   fail-closed rules of apply-plan.ts; its failures are reported per map
 *   (iphost for /32s, ipcache for shorter prefixes, endpoints, policy) with
 *   the endpoints that were closed.
 * - stats: entries and max entries per map (pressure), and the per-CPU
 *   metrics map summed (drops by reason, NONE = forwarded).
 *
 * openBpfDatapath creates the maps when the pin dir has none yet, by loading
 * lxc.o once with the pin dir (which creates and pins every shared map) and
 * closing it again: no program stays loaded.
 */
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { RawMap } from '../../datapath/api.js';
import { loadLxc } from '../../datapath/lxc.js';
import { ENDPOINTS_LAYOUT } from '../../datapath/maps/endpoints.js';
import { dumpMetrics } from '../../datapath/maps/metrics.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../../datapath/pinned-maps.js';
import { applyPlan, type ApplyFailure, type ApplyReport } from '../../policy-engine/apply.js';
import type { ApplyPlan } from '../../policy/apply-plan.js';
import { stateFromMapContents } from '../../policy/datapath-state.js';
import type { ApplyResult, DatapathStats, DatapathWriter, MapFailure, MapUsage, PacketCounter } from '../ports.js';
import type { BpfState } from './policy-compiler.js';

export interface BpfDatapathOptions {
  readonly pinDir: string;
  /** lxc.o; default: the built one (LXC_OBJECT_PATH). */
  readonly objectPath?: string;
}

/** Creates the shared maps in `pinDir` when they are not there. Returns true when it created them. */
export function ensureDatapathMaps(opts: BpfDatapathOptions): boolean {
  if (existsSync(join(opts.pinDir, ENDPOINTS_LAYOUT.name))) return false;
  const lxc = loadLxc({ pinRoot: opts.pinDir, endpoint: { endpointId: 0, ipv4: 0 }, ...(opts.objectPath !== undefined ? { objectPath: opts.objectPath } : {}) });
  lxc.close();
  return true;
}

export function openBpfDatapath(opts: BpfDatapathOptions): BpfDatapath {
  ensureDatapathMaps(opts);
  return new BpfDatapath(openPinnedDatapathMaps(opts.pinDir));
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
  constructor(readonly maps: PinnedDatapathMaps) {}

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
    const m = this.maps;
    const maps: [string, RawMap][] = [
      ['iphost', m.ipcache.hosts.raw], ['ipcache', m.ipcache.prefixes.raw], ['policy', m.policy.raw],
      ['endpoints', m.endpoints.raw], ['conntrack', m.conntrack.raw],
    ];
    return maps.map(([map, raw]) => {
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
