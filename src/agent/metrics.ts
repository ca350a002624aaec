/**
 * The agent's Prometheus metrics (prom-client), in a registry of its own
 * (no global default registry: two agents in one test process do not share
 * counters). Values that live elsewhere — map fill, datapath drop counters,
 * informer sizes — are read at scrape time through the sources.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InformerStatus } from './k8s/informer.js';
import type { DatapathStats } from './ports.js';

export interface MetricSources {
  /** The datapath's map usage and packet counters; undefined while the datapath is not open. */
  readonly datapath?: () => DatapathStats | undefined;
  readonly informers?: () => readonly InformerStatus[];
  readonly endpoints?: () => number;
  /** Called when a source throws during a scrape (the scrape still answers). */
  readonly onSourceError?: (source: string, error: unknown) => void;
}

const SYNC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class AgentMetrics {
  readonly registry = new Registry();

  readonly syncDuration = new Histogram({
    name: 'sluice_agent_sync_duration_seconds',
    help: 'Time spent in one sync, by phase (snapshot; compile: read-back and policy compile; apply: every owner\'s plan and writes; total).',
    labelNames: ['phase'] as const,
    buckets: SYNC_BUCKETS,
    registers: [this.registry],
  });

  readonly ownerDuration = new Histogram({
    name: 'sluice_agent_owner_duration_seconds',
    help: 'Time one map owner spent in a sync\'s apply phase, by stage (plan: desired state, diff and any read-back; write: its map writes).',
    labelNames: ['owner', 'stage'] as const,
    buckets: SYNC_BUCKETS,
    registers: [this.registry],
  });

  readonly syncLatency = new Histogram({
    name: 'sluice_agent_sync_latency_seconds',
    help: 'From the first change a sync picked up (watch event, endpoint registration) to that change being in the maps.',
    buckets: SYNC_BUCKETS,
    registers: [this.registry],
  });

  readonly syncs = new Counter({
    name: 'sluice_agent_syncs_total',
    help: 'Syncs by result: applied, noop (nothing to write), failed (a map update failed), error (compile or snapshot failed).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly mapOperations = new Counter({
    name: 'sluice_agent_map_operations_total',
    help: 'Map operations written by syncs.',
    registers: [this.registry],
  });

  readonly mapUpdateFailures = new Counter({
    name: 'sluice_agent_map_update_failures_total',
    help: 'Syncs in which writing a map failed, by map.',
    labelNames: ['map'] as const,
    registers: [this.registry],
  });

  readonly mapFailing = new Gauge({
    name: 'sluice_agent_map_failing',
    help: '1 while the last sync could not write this map.',
    labelNames: ['map'] as const,
    registers: [this.registry],
  });

  readonly ownerAppliedRevision = new Gauge({
    name: 'sluice_agent_owner_applied_revision',
    help: 'The sync revision each map owner last completed (its maps hold what that snapshot asked).',
    labelNames: ['owner'] as const,
    registers: [this.registry],
  });

  readonly ownerComplete = new Gauge({
    name: 'sluice_agent_owner_complete',
    help: '1 when the map owner completed the last round, 0 when something in its group failed.',
    labelNames: ['owner'] as const,
    registers: [this.registry],
  });

  readonly endpointsFailedClosed = new Gauge({
    name: 'sluice_agent_endpoints_failed_closed',
    help: 'Local endpoints the last sync could not write completely: they drop every connection (POLICY_INCOMPLETE) until a sync writes their policy.',
    registers: [this.registry],
  });

  readonly identities = new Gauge({
    name: 'sluice_agent_identities',
    help: 'Security identities in the compiled state.',
    registers: [this.registry],
  });

  readonly desiredEntries = new Gauge({
    name: 'sluice_agent_desired_entries',
    help: 'Entries the compiled state wants per map.',
    labelNames: ['map'] as const,
    registers: [this.registry],
  });

  readonly watchRestarts = new Counter({
    name: 'sluice_agent_watch_restarts_total',
    help: 'Watch restarts by resource and reason (closed, expired = 410 Gone, error, idle).',
    labelNames: ['resource', 'reason'] as const,
    registers: [this.registry],
  });

  readonly relists = new Counter({
    name: 'sluice_agent_relists_total',
    help: 'Full lists by resource (the first one, and after 410 Gone).',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });

  readonly listErrors = new Counter({
    name: 'sluice_agent_list_errors_total',
    help: 'Failed lists by resource.',
    labelNames: ['resource'] as const,
    registers: [this.registry],
  });

  readonly objectProblems = new Gauge({
    name: 'sluice_agent_object_problems',
    help: 'API objects the agent cannot use (severity error: left out) or uses with a caveat (warning), by object.',
    labelNames: ['kind', 'object', 'severity'] as const,
    registers: [this.registry],
  });

  readonly objectProblemsTotal = new Counter({
    name: 'sluice_agent_object_problems_total',
    help: 'Object problems that appeared, by kind and severity.',
    labelNames: ['kind', 'severity'] as const,
    registers: [this.registry],
  });

  readonly endpointRequests = new Counter({
    name: 'sluice_agent_endpoint_requests_total',
    help: 'Endpoint API requests by operation and HTTP status.',
    labelNames: ['op', 'status'] as const,
    registers: [this.registry],
  });

  readonly sweepRemoved = new Counter({
    name: 'sluice_agent_endpoint_sweep_removed_total',
    help: 'Endpoints the sweep removed because their host veth and netns were gone for the grace period without a CNI DEL.',
    registers: [this.registry],
  });

  readonly sweepErrors = new Counter({
    name: 'sluice_agent_endpoint_sweep_errors_total',
    help: 'Endpoint sweep failures by step (links, evidence, lxc, registry, ipam); the sweep goes on with the next endpoint.',
    labelNames: ['step'] as const,
    registers: [this.registry],
  });

  readonly sweepPending = new Gauge({
    name: 'sluice_agent_endpoint_sweep_pending',
    help: 'Endpoints seen without host veth and netns, waiting out the grace period.',
    registers: [this.registry],
  });

  readonly healthCheckServers = new Gauge({
    name: 'sluice_agent_health_check_servers',
    help: 'Listeners of Service health checks (spec.healthCheckNodePort on each node address) by state: listening, or failing to listen (retried with the next sync).',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  private readonly dropBaseline = new Map<string, bigint>();

  constructor(private readonly sources: MetricSources = {}) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_agent_' });
    const read = <T>(source: string, fn: (() => T) | undefined): T | undefined => {
      if (fn === undefined) return undefined;
      try {
        return fn();
      } catch (e) {
        this.sources.onSourceError?.(source, e);
        return undefined;
      }
    };
    const usage = (): ReturnType<DatapathStats['mapUsage']> => read('mapUsage', () => this.sources.datapath?.()?.mapUsage()) ?? [];

    new Gauge({
      name: 'sluice_agent_map_entries',
      help: 'Entries in each datapath map.',
      labelNames: ['map'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const u of usage()) this.set({ map: u.map }, u.entries);
      },
    });
    new Gauge({
      name: 'sluice_agent_map_max_entries',
      help: 'Capacity of each datapath map.',
      labelNames: ['map'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const u of usage()) this.set({ map: u.map }, u.maxEntries);
      },
    });
    new Gauge({
      name: 'sluice_agent_map_pressure_percent',
      help: 'How full each datapath map is, 0..100.',
      labelNames: ['map'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const u of usage()) this.set({ map: u.map }, u.maxEntries > 0 ? (100 * u.entries) / u.maxEntries : 0);
      },
    });

    const baseline = this.dropBaseline;
    const counters = (): ReturnType<DatapathStats['packetCounters']> =>
      read('packetCounters', () => this.sources.datapath?.()?.packetCounters()) ?? [];
    new Counter({
      name: 'sluice_agent_datapath_drops_total',
      help: 'Packets the datapath dropped, by direction and reason (from the per-CPU metrics map).',
      labelNames: ['direction', 'reason'] as const,
      registers: [this.registry],
      collect() {
        for (const c of counters()) {
          if (c.reason === 'NONE') continue;
          addDelta(this, baseline, `drops/${c.direction}/${c.reason}`, { direction: c.direction, reason: c.reason }, c.packets);
        }
      },
    });
    new Counter({
      name: 'sluice_agent_datapath_forwarded_packets_total',
      help: 'Packets the datapath let through, by direction.',
      labelNames: ['direction'] as const,
      registers: [this.registry],
      collect() {
        for (const c of counters()) {
          if (c.reason !== 'NONE') continue;
          addDelta(this, baseline, `fwd/${c.direction}`, { direction: c.direction }, c.packets);
        }
      },
    });

    const informers = (): readonly InformerStatus[] => read('informers', this.sources.informers) ?? [];
    new Gauge({
      name: 'sluice_agent_informer_objects',
      help: 'Objects in each informer cache.',
      labelNames: ['resource'] as const,
      registers: [this.registry],
      collect() {
        for (const s of informers()) this.set({ resource: s.resource }, s.objects);
      },
    });
    new Gauge({
      name: 'sluice_agent_informer_synced',
      help: '1 once the informer completed its first list.',
      labelNames: ['resource'] as const,
      registers: [this.registry],
      collect() {
        for (const s of informers()) this.set({ resource: s.resource }, s.synced ? 1 : 0);
      },
    });
    const endpoints = (): number | undefined => read('endpoints', this.sources.endpoints);
    new Gauge({
      name: 'sluice_agent_endpoints',
      help: 'Endpoints registered on this node.',
      registers: [this.registry],
      collect() {
        const n = endpoints();
        if (n !== undefined) this.set(n);
      },
    });
  }

  /** The exposition text and its content type, for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * The metrics map holds cumulative counts; a Prometheus counter must only go
 * up. Each scrape adds the growth since the last one; a count that went down
 * (the map was recreated) starts a new baseline.
 */
function addDelta<L extends string>(
  counter: Counter<L>,
  baseline: Map<string, bigint>,
  key: string,
  labels: Partial<Record<L, string>>,
  value: bigint,
): void {
  const last = baseline.get(key) ?? 0n;
  const delta = value >= last ? value - last : value;
  baseline.set(key, value);
  // inc(0) still creates the series, so a reason shows up as 0 before its first drop.
  counter.inc(labels, Number(delta));
}
