/**
 * Runs bpf/lxc.c's programs on crafted packets (BPF_PROG_TEST_RUN) and
 * reports what a test asserts on: the return value, the events emitted and
 * the metrics counters that moved.
 *
 * One harness per test file: its own pin root under /sys/fs/bpf/sluice-t-*,
 * removed by close(). Events arrive through the ring buffer's libuv reader;
 * to know that a run emitted nothing (and not "nothing yet"), every run is
 * followed by a sentinel frame that is always dropped with a known length,
 * and the run's events are exactly those read before the sentinel's; the
 * sentinel's own drop is taken out of the metrics deltas.
 *
 * One program pair serves every endpoint, as on a node: a run simulates an
 * endpoint by writing its sl_lxc_v1 entry for the test run's interface first
 * (runAs, src/datapath/lxc-test-run.ts). Every endpoint the harness knows
 * gets an endpoint entry (not isolated) at reset(), as the agent writes one
 * before attaching: without it every packet would be ENDPOINT_UNKNOWN.
 */
import type { ProgramInfo, RingBufferReader, TestRunOptions, TestRunResult } from '../../src/datapath/api.js';
import {
  SluiceCounter, SluiceDirection, SluiceDropReason, SluiceEventFlags, SluiceEventType, SluiceIdentityReserved, SluiceVerdict,
  type EndpointConfig, type SluiceEvent,
} from '../../src/datapath/generated/abi.js';
import { loadLxc, type LxcDatapath } from '../../src/datapath/lxc.js';
import { runAs } from '../../src/datapath/lxc-test-run.js';
import { readDatapathCounter } from '../../src/datapath/maps/counters.js';
import { endpointEntry } from '../../src/datapath/maps/endpoints.js';
import { readEvents } from '../../src/datapath/maps/events.js';
import { metricsIndex, readCounter } from '../../src/datapath/maps/metrics.js';
import { ethernet } from './packet.js';
import { createTestPinRoot, removeTestPinRoot } from './pins.js';

export const TC_ACT_OK = 0;
export const TC_ACT_SHOT = 2;

/** Where a harness's pin root comes from and goes. */
export interface HarnessPins {
  create(): string;
  remove(dir: string): void;
}

const TEST_PINS: HarnessPins = { create: createTestPinRoot, remove: removeTestPinRoot };

/** Which of the two programs: the pod's egress or its ingress. */
export type LxcProgram = 'from_container' | 'to_container';

/** A counter that moved during one run. */
export interface MetricsDelta {
  readonly direction: number;
  readonly reason: number;
  readonly packets: bigint;
  readonly bytes: bigint;
}

/** A datapath counter (sl_counters_v1) that moved, by name. */
export type CounterDeltas = Readonly<Record<string, bigint>>;

export interface RunResult {
  readonly retval: number;
  /** The frame as the program left it (rewritten by NAT, or a reject built in its place). */
  readonly data: Buffer;
  readonly events: SluiceEvent[];
  readonly metrics: MetricsDelta[];
  /** Datapath counters that moved during the run (EVENTS_LOST, CT_CREATED, ...). */
  readonly counters: CounterDeltas;
}

/** Length of the sentinel frame; test frames must not use it. */
const SENTINEL_LEN = 1031;
/** An IEEE "local experimental" ethertype: unsupported L3, always dropped. */
const SENTINEL_ETHERTYPE = 0x88b5;
const SENTINEL_TIMEOUT_MS = 2000;
const SENTINEL_FRAME = ethernet(SENTINEL_ETHERTYPE, Buffer.alloc(SENTINEL_LEN - 14));

export class LxcHarness {
  private pending: SluiceEvent[] = [];
  private waiter: (() => void) | undefined;
  private readonly endpointIds: number[] = [];
  private reader: RingBufferReader | undefined;

  private constructor(
    readonly pinRoot: string,
    readonly dp: LxcDatapath,
    /** The endpoint a run simulates unless told otherwise. */
    readonly endpoint: EndpointConfig,
    private readonly pins: HarnessPins,
  ) {}

  /**
   * Loads lxc.o in a fresh pin root (pins.create(), default
   * /sys/fs/bpf/sluice-t-*), runs it as endpoint by default, and starts
   * reading events.
   */
  static open(endpoint: EndpointConfig, pins: HarnessPins = TEST_PINS): LxcHarness {
    const pinRoot = pins.create();
    let dp: LxcDatapath | undefined;
    try {
      dp = loadLxc({ pinRoot });
      const harness = new LxcHarness(pinRoot, dp, endpoint, pins);
      harness.endpointIds.push(endpoint.endpointId);
      harness.reset();
      harness.reader = readEvents(dp.maps.events, (events) => harness.deliver(events));
      return harness;
    } catch (err) {
      dp?.close();
      pins.remove(pinRoot);
      throw err;
    }
  }

  /**
   * Another endpoint served by the same programs and maps (as every endpoint
   * on a node is), with a not-isolated endpoint entry: pass it as run()'s
   * `as` to simulate it.
   */
  addEndpoint(endpoint: EndpointConfig): EndpointConfig {
    this.endpointIds.push(endpoint.endpointId);
    this.dp.maps.endpoints.update(endpoint.endpointId, endpointEntry({ ingress: false, egress: false }, 0));
    return endpoint;
  }

  /** One BPF_PROG_TEST_RUN of program as `as` (default: the harness's endpoint), events not collected. */
  testRun(program: ProgramInfo, opts: TestRunOptions, as: EndpointConfig = this.endpoint): TestRunResult {
    return runAs(this.dp.maps.interfaces, as, program, opts);
  }

  /**
   * Empties ipcache, policy, conntrack and fragments, restores the default
   * config and conntrack lifetimes, and gives every loaded endpoint a fresh
   * not-isolated entry at revision 0: each table row starts clean.
   */
  reset(): void {
    const { ipcache, policy, endpoints, conntrack, frag, config, ctConfig } = this.dp.maps;
    ipcache.deleteBatch([...ipcache.entries()].map(([k]) => k));
    policy.deleteBatch([...policy.entries()].map(([k]) => k));
    endpoints.deleteBatch([...endpoints.entries()].map(([k]) => k));
    conntrack.deleteBatch([...conntrack.entries()].map(([k]) => k));
    frag.deleteBatch([...frag.entries()].map(([k]) => k));
    config.update(0, { flags: 0 });
    ctConfig.update(0, { tcpSynMs: 0, tcpEstablishedMs: 0, tcpFinMs: 0, tcpClosedMs: 0, udpMs: 0, icmpMs: 0 });
    endpoints.updateBatch(this.endpointIds.map((id) => [id, endpointEntry({ ingress: false, egress: false }, 0)] as const));
  }

  /** Runs one frame through a program as `as` (default: the harness's endpoint); see the file comment for events. */
  async run(prog: LxcProgram, frame: Buffer, opts: { ctx?: Buffer; as?: EndpointConfig } = {}): Promise<RunResult> {
    const program = programOf(this.dp, prog);
    const as = opts.as ?? this.endpoint;
    let out: TestRunResult | undefined;
    const seen = await this.observe(directionOf(prog), (sentinel) => {
      out = this.testRun(program, opts.ctx ? { data: frame, ctx: opts.ctx } : { data: frame }, as);
      this.testRun(program, { data: sentinel }, as);
    }, [frame]);
    return { retval: out?.retval ?? -1, data: out?.data ?? Buffer.alloc(0), ...seen };
  }

  /**
   * The events and counter changes caused by `act`, which must send its
   * packets and then the sentinel frame it is given, all through programs of
   * `direction` and in that order (e.g. over a veth, from one socket).
   */
  async observe(direction: number, act: (sentinel: Buffer) => void,
    frames: readonly Buffer[]): Promise<Omit<RunResult, 'retval' | 'data'>> {
    if (frames.some((f) => f.length === SENTINEL_LEN)) {
      throw new Error(`frame length ${SENTINEL_LEN} is reserved for the sentinel`);
    }
    const before = this.counters();
    const countersBefore = this.datapathCounters();
    act(SENTINEL_FRAME);
    const events = await this.eventsUntilSentinel();
    // The sentinel's own drop was counted once the sentinel event arrived, and
    // with it everything sent before the sentinel.
    const metrics = withoutSentinel(diff(before, this.counters()), direction);
    const counters: Record<string, bigint> = {};
    for (const [name, after] of this.datapathCounters()) {
      const delta = after - (countersBefore.get(name) ?? 0n);
      if (delta !== 0n) counters[name] = delta;
    }
    return { events, metrics, counters };
  }

  /**
   * Reads and discards every event emitted so far, e.g. after packets run
   * straight through testRun() (a flood that filled the ring).
   */
  async flush(): Promise<void> {
    // Let the reader empty the ring first: the sentinel's event needs room.
    for (let seen = -1; seen !== this.pending.length;) {
      seen = this.pending.length;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await this.observe(SluiceDirection.INGRESS, (sentinel) => void this.testRun(this.dp.toContainer, { data: sentinel }), []);
  }

  close(): void {
    this.reader?.stop();
    this.dp.close();
    this.pins.remove(this.pinRoot);
  }

  private deliver(events: SluiceEvent[]): void {
    this.pending.push(...events);
    this.waiter?.();
  }

  private async eventsUntilSentinel(): Promise<SluiceEvent[]> {
    const deadline = Date.now() + SENTINEL_TIMEOUT_MS;
    for (;;) {
      const at = this.pending.findIndex(isSentinel);
      if (at >= 0) {
        const events = this.pending.slice(0, at);
        this.pending = this.pending.slice(at + 1);
        return events;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no sentinel event within ${SENTINEL_TIMEOUT_MS} ms; got ${this.pending.length} events`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** Every named datapath counter, summed over CPUs. */
  private datapathCounters(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const [name, index] of Object.entries(SluiceCounter)) {
      if (index < SluiceCounter.MAX) out.set(name, readDatapathCounter(this.dp.maps.counters, index));
    }
    return out;
  }

  /** Every (direction, reason) counter, summed over CPUs. */
  private counters(): Map<number, { packets: bigint; bytes: bigint }> {
    const out = new Map<number, { packets: bigint; bytes: bigint }>();
    for (const direction of [SluiceDirection.INGRESS, SluiceDirection.EGRESS]) {
      for (let reason = 0; reason < SluiceDropReason.REASON_MAX; reason++) {
        out.set(metricsIndex(direction, reason), readCounter(this.dp.maps.metrics, direction, reason));
      }
    }
    return out;
  }
}

function programOf(dp: LxcDatapath, prog: LxcProgram): ProgramInfo {
  return prog === 'from_container' ? dp.fromContainer : dp.toContainer;
}

/** deltas minus the sentinel's one UNSUPPORTED_L3 drop in direction. */
function withoutSentinel(deltas: MetricsDelta[], direction: number): MetricsDelta[] {
  const out: MetricsDelta[] = [];
  for (const d of deltas) {
    if (d.direction !== direction || d.reason !== SluiceDropReason.UNSUPPORTED_L3) {
      out.push(d);
      continue;
    }
    const rest = { ...d, packets: d.packets - 1n, bytes: d.bytes - BigInt(SENTINEL_LEN) };
    if (rest.packets !== 0n || rest.bytes !== 0n) out.push(rest);
  }
  return out;
}

function isSentinel(ev: SluiceEvent): boolean {
  return ev.pktLen === SENTINEL_LEN && ev.dropReason === SluiceDropReason.UNSUPPORTED_L3;
}

function diff(before: Map<number, { packets: bigint; bytes: bigint }>,
  after: Map<number, { packets: bigint; bytes: bigint }>): MetricsDelta[] {
  const out: MetricsDelta[] = [];
  for (const [index, a] of after) {
    const b = before.get(index) ?? { packets: 0n, bytes: 0n };
    if (a.packets === b.packets && a.bytes === b.bytes) continue;
    out.push({
      direction: Math.floor(index / SluiceDropReason.REASON_MAX),
      reason: index % SluiceDropReason.REASON_MAX,
      packets: a.packets - b.packets,
      bytes: a.bytes - b.bytes,
    });
  }
  return out;
}

/** The one counter a single packet of `bytes` moves. */
export function oneCounter(direction: number, reason: number, bytes: number): MetricsDelta[] {
  return [{ direction, reason, packets: 1n, bytes: BigInt(bytes) }];
}

export function directionOf(prog: LxcProgram): number {
  return prog === 'from_container' ? SluiceDirection.EGRESS : SluiceDirection.INGRESS;
}

/** A SluiceEvent without its timestamp, which no test can predict. */
export type EventFields = Omit<SluiceEvent, 'timestampNs'>;

/** The events' fields minus timestamps, after checking each timestamp is set. */
export function eventFields(events: readonly SluiceEvent[]): EventFields[] {
  return events.map(({ timestampNs, ...rest }) => {
    if (timestampNs <= 0n) throw new Error(`event without a timestamp: ${JSON.stringify(rest)}`);
    return rest;
  });
}

/** What every event of one packet carries regardless of what was parsed. */
export interface EventContext {
  readonly direction: number;
  readonly endpointId: number;
  readonly ifindex: number;
  readonly frame: Buffer;
}

/**
 * The event a packet should produce: nothing parsed (zero tuple, UNKNOWN
 * identities) unless `fields` says otherwise; DROP/DROPPED when fields has a
 * drop reason, TRACE/FORWARDED when not.
 */
export function expectedEvent(ctx: EventContext, fields: Partial<EventFields>): EventFields {
  const dropped = (fields.dropReason ?? SluiceDropReason.NONE) !== SluiceDropReason.NONE;
  return {
    saddr: 0, daddr: 0, sport: 0, dport: 0, protocol: 0,
    eventType: dropped ? SluiceEventType.DROP : SluiceEventType.TRACE,
    verdict: dropped ? SluiceVerdict.DROPPED : SluiceVerdict.FORWARDED,
    direction: ctx.direction,
    srcIdentity: SluiceIdentityReserved.UNKNOWN, dstIdentity: SluiceIdentityReserved.UNKNOWN,
    endpointId: ctx.endpointId, ifindex: ctx.ifindex, pktLen: ctx.frame.length,
    dropReason: SluiceDropReason.NONE, flags: 0, ruleId: 0,
    // The flag byte when the TCP header was parsed (its ports are expected), except for later fragments.
    tcpFlags: fields.protocol === 6 && fields.dport !== undefined && ((fields.flags ?? 0) & SluiceEventFlags.LATER_FRAG) === 0 ? tcpFlagsOf(ctx.frame) : 0,
    ...fields,
  };
}

/** The flag byte of an IPv4 frame's TCP header (what the datapath reports), 0 when the header is not all there. */
function tcpFlagsOf(frame: Buffer): number {
  if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800) return 0;
  const l4 = 14 + ((frame[14] ?? 0) & 0x0f) * 4;
  return frame.length >= l4 + 20 ? frame[l4 + 13] ?? 0 : 0;
}
