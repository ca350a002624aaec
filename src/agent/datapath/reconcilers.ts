/**
 * The agent's datapath: the map owners of src/reconcile over the pinned maps
 * of lxc.o, run as one round per snapshot (SyncDatapath), plus the counters
 * read at scrape time (DatapathStats).
 *
 * The owner list, in order: endpoints, ipcache and policy (the "policy"
 * group, from one compile: policy-stage.ts), then lxc interfaces (host veth
 * → endpoint), conntrack config, the load balancer (Services: frontends,
 * backends, tables; from the snapshot's lb input) and, with the agent's
 * `routing`, node routes (the other nodes' podCIDRs, vxlan, the fabric
 * program: node-routing.ts). After a complete round of the policy
 * group the compile's ids go to the seed keeper and the applied view (what
 * the numbers in the maps mean) is replaced.
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
import { flushEndpointConnections } from '../../datapath/maps/conntrack.js';
import { parseIpv4 } from '../../datapath/maps/ipv4.js';
import type { LbMaps } from '../../datapath/maps/lb-maps.js';
import type { RawMap } from '../../datapath/api.js';
import { dumpMetrics } from '../../datapath/maps/metrics.js';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../../datapath/pinned-maps.js';
import { SluiceCounter, type CtConfig, type SluiceEvent } from '../../datapath/generated/abi.js';
import { readEvents } from '../../datapath/maps/events.js';
import { setBpfHostRouting, setTraceMode, type TraceMode } from '../../datapath/maps/config.js';
import type { CompiledPolicy } from '../../policy/compile.js';
import { appliedViewOf, EMPTY_APPLIED_VIEW, type AppliedView } from '../../reconcile/applied-view.js';
import { EndpointsOwner } from '../../reconcile/endpoints.js';
import { IpcacheOwner } from '../../reconcile/ipcache.js';
import { LbOwner, type LbOwnerOptions, type LbRoundInput } from '../../reconcile/lb.js';
import { PolicyOwner } from '../../reconcile/policy.js';
import { CtConfigOwner, type CtConfigRoundInput } from '../../reconcile/ct-config.js';
import { LxcInterfacesOwner, type LxcInterface, type LxcRoundInput } from '../../reconcile/lxc-interfaces.js';
import { NodeRoutesOwner, type NodeNetworkPort, type NodeRoutesRoundInput } from '../../reconcile/node-routes.js';
import type { PolicyRoundInput } from '../../reconcile/policy-input.js';
import type { MapFailure, Reconciler, StepFailure } from '../../reconcile/reconciler.js';
import { runRound, type OwnerReport } from '../../reconcile/round.js';
import type { DatapathStats, FlowSource, MapUsage, OwnerOutcome, PacketCounter, RoundOutcome, SyncDatapath } from '../ports.js';
import type { HostRouting, RoutingConfig } from '../config.js';
import type { AgentSnapshot } from '../snapshot.js';
import { agentMaps, checkMapSizes, createDatapathMaps, type CreateMapsOptions } from './map-sizes.js';
import { nodeRoutingInput } from './node-routing.js';
import { PolicyStage } from './policy-stage.js';
import { removeRetiredPins } from './retired-pins.js';

export type BpfDatapathOptions = CreateMapsOptions;

/** What the agent's owners read from a round. */
export interface AgentRoundInput extends PolicyRoundInput, LxcRoundInput, CtConfigRoundInput, NodeRoutesRoundInput, LbRoundInput {
  readonly snapshot: AgentSnapshot;
}

export interface AgentDatapathOptions {
  /** The compile's ids of an earlier process (seed-file.ts). */
  readonly seed?: ConstructorParameters<typeof PolicyStage>[0];
  /** Told every compile whose entries are now in the maps (the seed keeper). */
  readonly onApplied?: (compiled: CompiledPolicy) => void;
  /** Conntrack lifetimes in ms; absent or 0: the datapath's defaults. */
  readonly conntrack?: Partial<CtConfig>;
  /** Routes to the other nodes' pods (absent: none; the node-routes owner is not in the list). */
  readonly routing?: { readonly config: RoutingConfig; readonly port: NodeNetworkPort };
  /** Who forwards packets for local pods (config hostRouting); absent: the node's stack. */
  readonly hostRouting?: HostRouting;
  /** How Services pick backends (default Maglev, 16381 slots). */
  readonly lb?: LbOwnerOptions;
}

/** The registered local endpoints as sl_lxc_v1 entries (an endpoint without a valid address gets none: its interface drops everything). */
export function lxcInterfaces(snapshot: AgentSnapshot): LxcInterface[] {
  const out: LxcInterface[] = [];
  for (const { endpoint } of snapshot.localEndpoints) {
    let ipv4: number;
    try {
      ipv4 = parseIpv4(endpoint.ip);
    } catch {
      continue;
    }
    out.push({ hostIfindex: endpoint.hostIfindex, endpointId: endpoint.endpointId, ipv4 });
  }
  return out;
}

export function openBpfDatapath(opts: BpfDatapathOptions, datapath: AgentDatapathOptions = {}): BpfDatapath {
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
  return new BpfDatapath(maps, datapath, retiredPinsRemoved);
}

/** The load balancer's maps by job name (metrics), beside the sized ones of agentMaps. */
export function lbMaps(lb: LbMaps): ReadonlyArray<readonly [string, RawMap]> {
  return [
    ['lb-services', lb.services.raw], ['lb-backends', lb.backends.raw], ['lb-tables', lb.tables.raw], ['lb-affinity', lb.affinity.raw],
    ['lb-nat', lb.nat.raw],
  ];
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** An owner's failures as the loop reports them: one per map, with the endpoints the round closed. */
export function ownerFailures(report: OwnerReport, closed: readonly number[]): MapFailure[] {
  if (report.planError !== undefined) return [{ map: report.name, message: `cannot read the map back: ${report.planError.message}` }];
  const byMap = new Map<string, StepFailure[]>();
  for (const f of report.failures) {
    const list = byMap.get(f.map);
    if (list === undefined) byMap.set(f.map, [f]);
    else list.push(f);
  }
  return [...byMap].map(([map, list]) => {
    const first = list[0] as StepFailure;
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

export class BpfDatapath implements SyncDatapath, DatapathStats, FlowSource {
  readonly endpointsOwner: EndpointsOwner;
  readonly ipcacheOwner: IpcacheOwner;
  readonly policyOwner: PolicyOwner;
  readonly lxcOwner: LxcInterfacesOwner;
  readonly ctConfigOwner: CtConfigOwner;
  readonly nodeRoutesOwner: NodeRoutesOwner | undefined;
  readonly lbOwner: LbOwner;
  private readonly list: readonly Reconciler<AgentRoundInput>[];
  private readonly stage: PolicyStage;
  private view: AppliedView = EMPTY_APPLIED_VIEW;
  private viewSource: CompiledPolicy | undefined;

  /** retiredPinsRemoved: pins of replaced map layouts this open removed (retired-pins.ts), for the log. */
  constructor(readonly maps: PinnedDatapathMaps, private readonly options: AgentDatapathOptions = {}, readonly retiredPinsRemoved: readonly string[] = []) {
    this.stage = new PolicyStage(options.seed);
    // A node-wide switch, not per-round state: written once, before any round publishes an address.
    setBpfHostRouting(maps.config, options.hostRouting === 'bpf');
    this.endpointsOwner = new EndpointsOwner(maps.endpoints, (id) => flushEndpointConnections(maps.conntrack, id));
    this.ipcacheOwner = new IpcacheOwner(maps.ipcache);
    this.policyOwner = new PolicyOwner(maps.policy);
    this.lxcOwner = new LxcInterfacesOwner(maps);
    this.ctConfigOwner = new CtConfigOwner(maps.ctConfig);
    this.nodeRoutesOwner = options.routing !== undefined ? new NodeRoutesOwner(options.routing.port, maps.nodeRoutes) : undefined;
    this.lbOwner = new LbOwner(maps.lb, options.lb);
    this.list = [
      this.endpointsOwner, this.ipcacheOwner, this.policyOwner, this.lxcOwner, this.ctConfigOwner, this.lbOwner,
      ...(this.nodeRoutesOwner !== undefined ? [this.nodeRoutesOwner] : []),
    ];
  }

  get owners(): readonly string[] {
    return this.list.map((o) => o.name);
  }

  get endpointOwners(): readonly string[] {
    return [this.endpointsOwner.name, this.ipcacheOwner.name, this.policyOwner.name, this.lxcOwner.name];
  }

  /** What the maps hold now, by number → name (read-only; replaced after each complete round). */
  applied(): AppliedView {
    return this.view;
  }

  async reconcile(snapshot: AgentSnapshot): Promise<RoundOutcome> {
    // A read-back of the lb maps (start, or after a failed round) in slices that leave the event loop free; nothing once the owner knows its maps.
    await this.lbOwner.prefetch({ lb: snapshot.lb });
    const t0 = performance.now();
    const current = { ipcache: this.ipcacheOwner.current(), endpoints: this.endpointsOwner.current(), policy: this.policyOwner.current().policy };
    const compiled = this.stage.compile(snapshot, current);
    const t1 = performance.now();
    const routing = this.options.routing;
    const report = runRound(this.list, {
      snapshot, datapath: compiled.datapath, interfaces: lxcInterfaces(snapshot), conntrack: this.options.conntrack ?? {}, lb: snapshot.lb,
      ...(routing !== undefined ? { nodeRouting: nodeRoutingInput(snapshot.nodes, snapshot.nodeName, routing.config) } : {}),
    });
    const t2 = performance.now();
    const owners: OwnerOutcome[] = report.owners.map((o) => ({
      name: o.name, complete: o.complete, failures: ownerFailures(o, report.closedEndpoints), planMs: o.planMs, writeMs: o.writeMs,
    }));
    if (report.owners.every((o) => o.group !== 'policy' || o.complete)) this.publish(compiled);
    const entries: Record<string, number> = {};
    for (const o of this.list) Object.assign(entries, o.entries?.() ?? {});
    return {
      planned: report.planned,
      operations: report.operations,
      owners,
      summary: { identities: compiled.stats.identities, entries },
      timings: { prepareMs: t1 - t0, writeMs: t2 - t1 },
    };
  }

  invalidate(): void {
    for (const o of this.list) o.invalidate();
  }

  mapUsage(): readonly MapUsage[] {
    return [...agentMaps(this.maps), ...lbMaps(this.maps.lb)].map(([map, raw]) => {
      let entries = 0;
      for (const _ of raw.keys()) entries++;
      return { map, entries, maxEntries: raw.info.maxEntries };
    });
  }

  packetCounters(): readonly PacketCounter[] {
    return dumpMetrics(this.maps.metrics);
  }

  readEvents(onEvents: (events: SluiceEvent[]) => void): { stop(): void } {
    return readEvents(this.maps.events, onEvents);
  }

  setTraceMode(mode: TraceMode): void {
    setTraceMode(this.maps.config, mode);
  }

  lostEventsPerCpu(): readonly bigint[] {
    return (this.maps.counters.lookup(SluiceCounter.EVENTS_LOST) ?? []).map((v) => v.value);
  }

  /** Releases the fds; the pinned maps keep enforcing. */
  close(): void {
    this.maps.close();
  }

  private publish(compiled: CompiledPolicy): void {
    const from = this.viewSource;
    if (from === undefined || from.identities !== compiled.identities || from.rules !== compiled.rules || from.endpoints !== compiled.endpoints) {
      this.view = appliedViewOf(compiled, this.view.generation + 1);
      this.viewSource = compiled;
    }
    this.options.onApplied?.(compiled);
  }
}
