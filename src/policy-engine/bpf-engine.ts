/**
 * The BPF engine: answers reachability and explain questions with the real
 * datapath. The cluster is compiled (src/policy/compile.ts), every pod with
 * an address becomes an endpoint, the lxc programs are loaded once with their
 * maps pinned in a temporary directory (/sys/fs/bpf/sluice-pe-<random>,
 * removed when done), as on a node, the compiled state is
 * applied by the agent's own map owners (src/reconcile), and every
 * question is a BPF_PROG_TEST_RUN of synthesized packets: the opening packet
 * through the source's from_container then the destination's to_container,
 * and, when that passed, the reply through the destination's from_container
 * then the source's to_container (it must pass: conntrack). Each run is
 * made as its endpoint (runAs: the endpoint's sl_lxc_v1 entry for the test
 * run's interface, src/datapath/lxc-test-run.ts).
 *
 * Every probe uses its own source port, so no probe is ever mistaken for the
 * reply of an earlier one; when a probed port was used as a source port
 * before, conntrack is emptied first.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ProgramInfo } from '../datapath/api.js';
import { BPFFS_MOUNT, ensureBpffsMounted, ensurePinDir, removePinDir } from '../datapath/bpffs.js';
import { SluiceEventType, sluiceDropReasonName, type SluiceEvent } from '../datapath/generated/abi.js';
import { loadLxc, LXC_OBJECT_PATH, type LxcDatapath } from '../datapath/lxc.js';
import { runAs } from '../datapath/lxc-test-run.js';
import { setTraceAllowed } from '../datapath/maps/config.js';
import { readEvents } from '../datapath/maps/events.js';
import type { Cluster } from '../policy/cluster.js';
import { compilePolicy, type CompiledPolicy } from '../policy/compile.js';
import { PolicyError } from '../policy/errors.js';
import type { TrafficProtocol } from '../policy/match.js';
import type { RuleRef } from '../policy/model.js';
import type { ClusterPod } from '../policy/objects.js';
import type { Direction } from '../policy/policy-types.js';
import type { Reachability } from '../policy/reachability.js';
import { appliedViewOf, EMPTY_APPLIED_VIEW, type AppliedView } from '../reconcile/applied-view.js';
import { applyDatapathState, policyGroup, type ApplyReport, type PolicyGroup } from '../reconcile/policy-group.js';
import type { DirectionExplanation, Explanation, PolicyEngine } from './engine.js';
import { openingFrame, replyFrame, type Flow } from './packets.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const EVENT_WAIT_MS = 2000;

export interface BpfEngineOptions {
  /** The lxc object (default build/bpf/lxc.o). */
  readonly objectPath?: string;
  /** The bpffs mount the temporary pin directory goes under (default /sys/fs/bpf). */
  readonly bpffs?: string;
}

/** A program run's outcome. */
export type Pass = 'pass' | 'drop';

export interface PairProbe {
  readonly flow: Flow;
  readonly egress: Pass;
  /** Undefined when egress dropped the packet. */
  readonly ingress?: Pass;
  /** The reply's egress (at the destination) and ingress (at the source), run when the packet arrived. */
  readonly reply?: { readonly egress: Pass; readonly ingress?: Pass };
  /** The opening packet arrived. */
  readonly allowed: boolean;
}

export interface BpfReachability {
  readonly matrix: Reachability;
  /** Pairs whose opening packet arrived but whose reply was dropped: a datapath fault. */
  readonly replyDropped: readonly (readonly [string, string])[];
}

export class BpfEngineError extends Error {
  override readonly name = 'BpfEngineError';
  constructor(
    readonly code: 'apply-failed' | 'unexpected-verdict' | 'no-address',
    message: string,
  ) {
    super(message);
  }
}

/** The engine as the CLI uses it: load, ask, unload, per question. */
export class BpfPolicyEngine implements PolicyEngine {
  readonly name = 'bpf';

  constructor(private readonly options: BpfEngineOptions = {}) {}

  async reachability(cluster: Cluster, port: number, protocol: TrafficProtocol, pods?: readonly string[]): Promise<Reachability> {
    const r = await withLoadedCluster(cluster, this.options, (lc) => lc.reachability(port, protocol, pods));
    if (r.replyDropped.length > 0) {
      const pairs = r.replyDropped.map(([a, b]) => `${a} → ${b}`).join(', ');
      throw new BpfEngineError('unexpected-verdict', `the reply of an allowed connection was dropped (${protocol}/${port}): ${pairs}`);
    }
    return r.matrix;
  }

  explain(cluster: Cluster, from: string, to: string, port: number, protocol: TrafficProtocol): Promise<Explanation> {
    return withLoadedCluster(cluster, this.options, (lc) => lc.explain(from, to, port, protocol));
  }
}

/** Loads `cluster`, runs fn, and unloads (pins removed) whatever happens. */
export async function withLoadedCluster<T>(cluster: Cluster, options: BpfEngineOptions, fn: (lc: LoadedCluster) => T | Promise<T>): Promise<T> {
  const lc = LoadedCluster.load(cluster, options);
  try {
    return await fn(lc);
  } finally {
    lc.close();
  }
}

interface LoadedEndpoint {
  readonly pod: ClusterPod;
  readonly endpointId: number;
  readonly addr: number;
  /** The cluster's one program pair and its maps, the same for every endpoint. */
  readonly lxc: LxcDatapath;
}

/** A cluster compiled and loaded into the datapath; close() unloads it. */
export class LoadedCluster {
  private readonly usedSourcePorts = new Set<number>();
  private readonly probedPorts = new Set<number>();
  private nextSourcePort = 1024;
  /** The agent's map owners over the engine's maps (created with the first apply). */
  private group: PolicyGroup | undefined;
  /** What the numbers in the maps mean, replaced by every apply that reached them. */
  private view: AppliedView = EMPTY_APPLIED_VIEW;

  private constructor(
    readonly pinRoot: string,
    private current: CompiledPolicy,
    private readonly endpoints: ReadonlyMap<string, LoadedEndpoint>,
    private readonly lxc: LxcDatapath,
  ) {}

  /** What is loaded now. */
  get compiled(): CompiledPolicy {
    return this.current;
  }

  /**
   * Every pod of `cluster` becomes endpoint 1, 2, … (in pod order). Throws
   * BpfEngineError for a pod without an IPv4 address or a failed apply.
   */
  static load(cluster: Cluster, options: BpfEngineOptions = {}): LoadedCluster {
    const missing = cluster.pods.filter((p) => p.ip === undefined).map((p) => p.id);
    if (missing.length > 0) {
      throw new BpfEngineError('no-address', `the bpf engine needs every pod's status.podIP; missing for ${missing.join(', ')}`);
    }
    const compiled = compilePolicy({ cluster, endpoints: new Map(cluster.pods.map((p, i) => [p.id, i + 1])) });
    const bpffs = options.bpffs ?? BPFFS_MOUNT;
    ensureBpffsMounted(bpffs);
    const pinRoot = join(bpffs, `sluice-pe-${randomBytes(6).toString('hex')}`);
    ensurePinDir(pinRoot);
    let lxc: LxcDatapath | undefined;
    try {
      lxc = loadLxc({ pinRoot, objectPath: options.objectPath ?? LXC_OBJECT_PATH });
      const loaded = new Map<string, LoadedEndpoint>();
      for (const [endpointId, ep] of compiled.endpoints) {
        loaded.set(ep.pod.id, { pod: ep.pod, endpointId, addr: Number(ep.pod.ip?.value ?? 0), lxc });
      }
      const lc = new LoadedCluster(pinRoot, compiled, loaded, lxc);
      lc.apply(compiled);
      return lc;
    } catch (e) {
      lxc?.close();
      removePinDir(pinRoot);
      throw e;
    }
  }

  close(): void {
    this.lxc.close();
    removePinDir(this.pinRoot);
  }

  /**
   * Moves the loaded datapath to `cluster` by the diff from what is loaded
   * (the incremental path an agent takes). The pods must be the same, with
   * the same addresses: a run finds its endpoint by id and address.
   */
  update(cluster: Cluster): ApplyReport {
    const endpoints = new Map<string, number>();
    for (const pod of cluster.pods) {
      const ep = this.endpoints.get(pod.id);
      if (ep === undefined || pod.ip === undefined || Number(pod.ip.value) !== ep.addr) {
        throw new BpfEngineError('no-address', `update: pod ${pod.id} is not loaded with that address; load the cluster anew`);
      }
      endpoints.set(pod.id, ep.endpointId);
    }
    if (endpoints.size !== this.endpoints.size) throw new BpfEngineError('no-address', 'update: the cluster lost pods; load it anew');
    const next = compilePolicy({ cluster, endpoints }, this.current);
    const report = this.apply(next);
    this.current = next;
    return report;
  }

  private apply(to: CompiledPolicy): ApplyReport {
    const first = this.endpoints.values().next().value;
    if (first === undefined) return { ok: true, written: { ipcache: 0, endpoints: 0, policy: 0 }, planned: 0, failures: [], failClosed: { taintedIdentities: [], policyEntriesRemoved: 0, endpointsClosed: [] } };
    this.group ??= policyGroup(first.lxc.maps);
    const report = applyDatapathState(this.group, to.datapath);
    if (!report.ok) {
      const why = report.failures.slice(0, 3).map((f) => `${f.map} ${f.key}: ${f.message}`).join('; ');
      throw new BpfEngineError('apply-failed', `applying the compiled maps failed (${report.failures.length} writes): ${why}`);
    }
    this.view = appliedViewOf(to, this.view.generation + 1);
    return report;
  }

  /** One new connection from → to and, if it arrived, its reply. */
  probe(from: string, to: string, port: number, protocol: TrafficProtocol): PairProbe {
    const src = this.endpoint(from, 'from');
    const dst = this.endpoint(to, 'to');
    const flow: Flow = { protocol, src: src.addr, dst: dst.addr, sport: this.sourcePort(port, protocol), dport: protocol === 'ICMP' ? 0 : port };
    const forward = openingFrame(flow);
    const egress = run(src, src.lxc.fromContainer, forward);
    if (egress === 'drop') return { flow, egress, allowed: false };
    const ingress = run(dst, dst.lxc.toContainer, forward);
    if (ingress === 'drop') return { flow, egress, ingress, allowed: false };
    const back = replyFrame(flow);
    const replyEgress = run(dst, dst.lxc.fromContainer, back);
    const reply = replyEgress === 'drop' ? { egress: replyEgress } : { egress: replyEgress, ingress: run(src, src.lxc.toContainer, back) };
    return { flow, egress, ingress, reply, allowed: true };
  }

  /** Every ordered pair of `pods` (default all), as reachability.ts shapes it. */
  reachability(port: number, protocol: TrafficProtocol, pods: readonly string[] = this.compiled.cluster.pods.map((p) => p.id)): BpfReachability {
    const sorted = [...new Set(pods)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const allowed: Record<string, Record<string, boolean>> = {};
    const replyDropped: [string, string][] = [];
    for (const from of sorted) {
      const row: Record<string, boolean> = {};
      for (const to of sorted) {
        const p = this.probe(from, to, port, protocol);
        row[to] = p.allowed;
        if (p.allowed && (p.reply?.egress !== 'pass' || p.reply.ingress !== 'pass')) replyDropped.push([from, to]);
      }
      allowed[from] = row;
    }
    return { matrix: { protocol, port, pods: sorted, allowed }, replyDropped };
  }

  /**
   * One connection with tracing on: the verdict of each program and, from
   * the datapath's own events, the rule that allowed it or the drop reason.
   */
  async explain(from: string, to: string, port: number, protocol: TrafficProtocol): Promise<Explanation> {
    const src = this.endpoint(from, 'from');
    const dst = this.endpoint(to, 'to');
    const maps = src.lxc.maps;
    const events: SluiceEvent[] = [];
    const reader = readEvents(maps.events, (batch) => events.push(...batch));
    setTraceAllowed(maps.config, true);
    try {
      await settled(events); // events of earlier probes, if any, are not ours
      events.length = 0;
      const p = this.probe(from, to, port, protocol);
      const runs = 1 + (p.ingress === undefined ? 0 : 1) + (p.reply === undefined ? 0 : 1 + (p.reply.ingress === undefined ? 0 : 1));
      await untilCount(events, runs);
      const find = (ep: LoadedEndpoint, direction: Direction): SluiceEvent | undefined =>
        events.find((e) => e.endpointId === ep.endpointId && e.direction === (direction === 'ingress' ? 0 : 1) &&
          e.sport === p.flow.sport && e.saddr === p.flow.src && e.daddr === p.flow.dst);
      const egress = this.direction('egress', src, p.egress, find(src, 'egress'));
      const ingress = p.ingress === undefined
        ? { direction: 'ingress' as const, pod: dst.pod.id, isolatedBy: this.isolatedBy(dst, 'ingress'), verdict: 'not-reached' as const, rules: [] }
        : this.direction('ingress', dst, p.ingress, find(dst, 'ingress'));
      const reply = p.reply === undefined ? undefined : p.reply.egress === 'pass' && p.reply.ingress === 'pass' ? 'passed' : 'dropped';
      return { engine: 'bpf', from, to, protocol, port, allowed: p.allowed, egress, ingress, ...(reply === undefined ? {} : { reply }) };
    } finally {
      setTraceAllowed(maps.config, false);
      reader.stop();
    }
  }

  private direction(direction: Direction, ep: LoadedEndpoint, pass: Pass, event: SluiceEvent | undefined): DirectionExplanation {
    const isolatedBy = this.isolatedBy(ep, direction);
    const ruleId = event?.ruleId ?? 0;
    // The rule id the datapath reported, named by what the maps hold now (the applied view).
    const rule = ruleId === 0 ? undefined : this.view.rule(ruleId);
    const rules: RuleRef[] = rule === undefined ? [] : [{ policy: rule.policy, direction: rule.direction, index: rule.index }];
    const extra = {
      ...(event === undefined ? {} : { remoteIdentity: direction === 'egress' ? event.dstIdentity : event.srcIdentity }),
      ...(event !== undefined && event.eventType === SluiceEventType.DROP ? { dropReason: sluiceDropReasonName(event.dropReason) } : {}),
    };
    const verdict = pass === 'drop' ? 'denied' : isolatedBy.length === 0 ? 'not-isolated' : 'allowed';
    return { direction, pod: ep.pod.id, isolatedBy, verdict, rules, ...extra };
  }

  private isolatedBy(ep: LoadedEndpoint, direction: Direction): readonly string[] {
    return this.compiled.endpoints.get(ep.endpointId)?.isolatedBy[direction] ?? [];
  }

  private endpoint(ref: string, field: string): LoadedEndpoint {
    const ep = this.endpoints.get(ref);
    if (ep === undefined) throw new PolicyError('not-found', `no pod "${ref}" in the cluster`, field);
    return ep;
  }

  /**
   * A source port (ICMP: echo id) never used before in this cluster and
   * never a probed port; if `port` itself was a source port before, a reply
   * to that old probe could look like this one, so conntrack is emptied.
   */
  private sourcePort(port: number, protocol: TrafficProtocol): number {
    if (protocol !== 'ICMP') {
      if (this.usedSourcePorts.has(port)) this.flushConntrack();
      this.probedPorts.add(port);
    }
    for (let tries = 0; tries < 0x10000; tries++) {
      const candidate = this.nextSourcePort;
      this.nextSourcePort = candidate >= 0xffff ? 1024 : candidate + 1;
      if (this.probedPorts.has(candidate) || this.usedSourcePorts.has(candidate)) continue;
      this.usedSourcePorts.add(candidate);
      return candidate;
    }
    // Every port was used: start over with an empty conntrack.
    this.flushConntrack();
    return this.sourcePort(port, protocol);
  }

  private flushConntrack(): void {
    const ct = this.lxc.maps.conntrack;
    ct.deleteBatch([...ct.entries()].map(([k]) => k));
    this.usedSourcePorts.clear();
  }
}

/** One test run of prog as ep. */
function run(ep: LoadedEndpoint, prog: ProgramInfo, data: Buffer): Pass {
  const { retval } = runAs(ep.lxc.maps.interfaces, { endpointId: ep.endpointId, ipv4: ep.addr }, prog, { data });
  if (retval === TC_ACT_OK || retval === TC_ACT_REDIRECT) return 'pass';
  if (retval === TC_ACT_SHOT) return 'drop';
  throw new BpfEngineError('unexpected-verdict', `${prog.name} returned ${retval} (want TC_ACT_OK ${TC_ACT_OK} or TC_ACT_SHOT ${TC_ACT_SHOT})`);
}

/** Resolves once no event arrived for a while (the ring buffer is drained). */
async function settled(events: readonly SluiceEvent[]): Promise<void> {
  for (let last = -1; last !== events.length;) {
    last = events.length;
    await sleep(20);
  }
}

async function untilCount(events: readonly SluiceEvent[], n: number): Promise<void> {
  const deadline = Date.now() + EVENT_WAIT_MS;
  while (events.length < n && Date.now() < deadline) await sleep(5);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
