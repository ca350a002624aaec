/**
 * The agent's flow part: datapath events → the observer (src/flow) → the
 * Observer gRPC API on a unix socket (and TCP with TLS when configured), the
 * exporter file and Hubble's metrics. The datapath's lost events (a full ring
 * buffer) are read per CPU once a second and enter the flow stream as
 * LostEvents. Started after the endpoint API, stopped before it.
 */
import { compileFilters } from '../flow/filter.js';
import { LostEventSource, type FlowFilter } from '../flow/model.js';
import { FlowObserver } from '../flow/observer.js';
import { FlowExporter } from '../flow/server/exporter.js';
import { ObserverGrpcServer, type ListenTarget } from '../flow/server/grpc-server.js';
import { fromProtoJson } from '../flow/wire/json.js';
import { observerSchema } from '../flow/wire/schema.js';
import type { Clock, TimerHandle } from './clock.js';
import type { FlowsConfig } from './config.js';
import { AgentError, asError } from './errors.js';
import type { FlowMetrics } from './flow-metrics.js';
import type { Logger } from './logger.js';
import type { FlowSource } from './ports.js';

export interface FlowPartDeps {
  readonly config: FlowsConfig;
  readonly nodeName: string;
  readonly version: string;
  readonly source: FlowSource;
  readonly metrics: FlowMetrics;
  readonly clock: Clock;
  readonly log: Logger;
  /** Between reads of the datapath's lost-event counters. Default 1 s. */
  readonly lostPollMs?: number;
}

/** Wall-clock minus monotonic ns (bpf_ktime_get_ns and process.hrtime are both CLOCK_MONOTONIC). */
function wallOffsetNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
}

export class FlowPart {
  readonly observer: FlowObserver;
  private server: ObserverGrpcServer | undefined;
  private exporter: FlowExporter | undefined;
  private reader: { stop(): void } | undefined;
  private lostTimer: TimerHandle | undefined;
  private stopped = false;
  private lastLost: readonly bigint[] = [];
  /** Where the API listens ("unix:/path", "host:port"). */
  addresses: readonly string[] = [];

  constructor(private readonly deps: FlowPartDeps) {
    this.observer = new FlowObserver({
      nodeName: deps.nodeName,
      view: () => deps.source.applied(),
      now: () => deps.clock.now(),
      wallOffsetNs,
      capacity: deps.config.capacity,
      onFlow: (f) => {
        deps.metrics.flow(f);
        this.exporter?.export(f);
      },
      onLost: (source, n) => deps.metrics.lostEvents(source, n),
    });
  }

  async start(): Promise<void> {
    const { config, log } = this.deps;
    if (config.exporter !== undefined) {
      const schema = observerSchema();
      const filters = (list: readonly unknown[], key: string): FlowFilter[] => list.map((f, i) => {
        try {
          return fromProtoJson(schema.FlowFilter, f) as FlowFilter;
        } catch (e) {
          throw new AgentError('invalid-config', `flows.exporter.${key}[${i}]: ${asError(e).message}`, `flows.exporter.${key}`);
        }
      });
      const allow = filters(config.exporter.allow, 'allow');
      const deny = filters(config.exporter.deny, 'deny');
      let predicate;
      try {
        predicate = compileFilters(allow, deny);
      } catch (e) {
        throw new AgentError('invalid-config', `flows.exporter: ${asError(e).message}`, 'flows.exporter');
      }
      this.exporter = new FlowExporter({
        file: config.exporter.file, maxSizeBytes: config.exporter.maxSizeBytes, maxBackups: config.exporter.maxBackups,
        predicate, nodeName: this.deps.nodeName, schema,
        onError: (e) => log.warn({ err: e, file: config.exporter?.file }, `flow exporter: write failed: ${e.message}`),
      });
    }
    this.deps.source.setTraceMode(config.trace);
    this.lastLost = this.deps.source.lostEventsPerCpu();
    this.reader = this.deps.source.readEvents((events) => this.observer.ingest(events));
    this.armLostPoll();
    const targets: ListenTarget[] = [];
    if (config.socket !== '') targets.push({ address: config.socket });
    if (config.tcp !== undefined) {
      const { listen, certFile, keyFile, clientCaFile } = config.tcp;
      targets.push({ address: listen, tls: { certFile, keyFile, ...(clientCaFile !== undefined ? { clientCaFile } : {}) } });
    }
    if (targets.length > 0) {
      this.server = new ObserverGrpcServer({ observer: this.observer, version: this.deps.version });
      this.addresses = await this.server.listen(targets);
    }
    log.info({ addresses: this.addresses, capacity: config.capacity, exporter: config.exporter?.file }, `flow API on ${this.addresses.join(', ') || '(off)'}`);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.lostTimer?.cancel();
    this.reader?.stop();
    this.pollLost();
    await this.server?.close();
    this.exporter?.close();
  }

  private armLostPoll(): void {
    if (this.stopped) return;
    this.lostTimer = this.deps.clock.setTimer(this.deps.lostPollMs ?? 1000, () => {
      this.pollLost();
      this.armLostPoll();
    });
  }

  private pollLost(): void {
    let now: readonly bigint[];
    try {
      now = this.deps.source.lostEventsPerCpu();
    } catch (e) {
      this.deps.log.warn({ err: asError(e) }, 'cannot read the lost-event counters');
      return;
    }
    now.forEach((v, cpu) => {
      const delta = v - (this.lastLost[cpu] ?? 0n);
      if (delta > 0n) this.observer.reportLost(LostEventSource.PERF_EVENT_RING_BUFFER, Number(delta), cpu);
    });
    this.lastLost = now;
  }
}
