/**
 * The agent's composition root: builds every part from the config and the
 * injected ports, connects them, starts and stops them in order. Nothing
 * here decides policy; it wires
 *
 *   informers ─┐
 *              ├─ change → sync loop: snapshot → one round over the map owners
 *   endpoints ─┘                         (port: SyncDatapath, src/reconcile)
 *
 * plus the endpoint API (unix socket), the probe/metrics server, the
 * problem reporter and, while the agent implements Services (lb.enabled),
 * the Services' health-check servers (health-checks.ts), updated from each
 * sync's snapshot.
 */
import { join } from 'node:path';
import type { RandomSource } from './backoff.js';
import { systemClock, type Clock } from './clock.js';
import { InProcessCni } from '../cni/in-process.js';
import type { AgentConfig } from './config.js';
import { EndpointApiServer } from './endpoints/api.js';
import { EndpointRegistry } from './endpoints/registry.js';
import { EndpointService } from './endpoints/service.js';
import { EndpointStateFile, type EndpointStateStore } from './endpoints/state-file.js';
import { EndpointSweeper, type SweepHost } from './endpoints/sweep.js';
import { nodeSweepHost } from './endpoints/sweep-host.js';
import { asError } from './errors.js';
import { healthChecks } from '../lb/health.js';
import { HealthCheckServers } from './health-checks.js';
import { ProxyPorts, type ProxyPortsAddresses } from './proxy-health.js';
import { formatListenAddress, parseListenAddress, ProbeServer, type ListenAddress } from './http-server.js';
import { allSynced, createInformers, informerList, informerStatuses, type ClusterInformers } from './k8s/informers.js';
import type { KubeTransport } from './k8s/transport.js';
import type { Logger } from './logger.js';
import { AgentMetrics } from './metrics.js';
import type { DatapathStats, FlowSource, SyncDatapath } from './ports.js';
import { FlowMetrics } from './flow-metrics.js';
import { FlowPart } from './flows.js';
import { SnapshotCache } from './snapshot-cache.js';
import { ProblemReporter } from './problems.js';
import { liveness, readiness, type ReadinessReport } from './readiness.js';
import { buildSnapshot, type AgentSnapshot } from './snapshot.js';
import { SyncLoop } from './sync-loop.js';

export interface AgentDeps {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly transport: KubeTransport;
  /** The map owners, run as one round per sync (datapath/reconcilers.ts; dry-run.ts for none). */
  readonly datapath: SyncDatapath;
  readonly stats?: DatapathStats;
  readonly clock?: Clock;
  readonly random?: RandomSource;
  /** Default: endpoints.json in config.stateDir. */
  readonly endpointStore?: EndpointStateStore;
  /** What the endpoint sweep reads and frees; default: this node (links, netns paths, sl_lxc_v1, IPAM). */
  readonly sweepHost?: SweepHost;
  /** The datapath's events and lost counters: with it the agent serves flows (config.flows). */
  readonly flows?: FlowSource;
  /** A sync running longer than this fails /healthz. Default 5 min. */
  readonly stuckAfterMs?: number;
}

export interface StartedAgent {
  /** Where /healthz, /readyz and /metrics are served (the real port when the config asked for :0). */
  readonly http: ListenAddress;
  /** Where the flow API listens ("unix:/path", "host:port"); empty without flows. */
  readonly flows: readonly string[];
  /** kube-proxy's healthz and status ports, where served. */
  readonly proxyPorts?: ProxyPortsAddresses;
}

/** Reported by the flow API (ServerStatus, GetNodes). */
export const AGENT_VERSION = 'sluice-agent 0.1.0';

export const ENDPOINT_STATE_FILE = 'endpoints.json';

export class Agent {
  readonly metrics: AgentMetrics;
  readonly informers: ClusterInformers;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly problems: ProblemReporter;
  private readonly syncLoop: SyncLoop;
  private readonly probe: ProbeServer;
  private readonly healthChecks: HealthCheckServers | undefined;
  /** kube-proxy's healthz and status ports, when the load balancer is on and the config names them. */
  private readonly proxyPorts: ProxyPorts | undefined;
  /** The lb input the health checks were last updated from (the snapshot keeps the object while it is unchanged). */
  private healthInput: AgentSnapshot['lb'] | undefined;
  private registry: EndpointRegistry | undefined;
  private endpointApi: EndpointApiServer | undefined;
  private sweeper: EndpointSweeper | undefined;
  /** The flow pipeline and its API; undefined without a FlowSource. */
  readonly flows: FlowPart | undefined;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly deps: AgentDeps) {
    const { config } = deps;
    this.log = deps.log;
    this.clock = deps.clock ?? systemClock;
    this.metrics = new AgentMetrics({
      datapath: () => deps.stats,
      informers: () => informerStatuses(this.informers),
      endpoints: () => this.registry?.size ?? 0,
      onSourceError: (source, e) => this.log.warn({ source, err: asError(e) }, `metrics source ${source} failed`),
    });
    this.informers = createInformers({
      transport: deps.transport,
      clock: this.clock,
      ...(deps.random !== undefined ? { random: deps.random } : {}),
      backoff: config.watch.backoff,
      pageSize: config.watch.pageSize,
      watchTimeoutSeconds: config.watch.timeoutSeconds,
      hooks: {
        onSynced: (resource) => {
          this.log.info({ resource }, `${resource}: first list done`);
          this.syncLoop.trigger(`${resource} synced`);
        },
        onRelist: (resource, objects) => {
          this.metrics.relists.inc({ resource });
          this.log.debug({ resource, objects }, `${resource}: listed`);
        },
        onListError: (resource, error, delayMs) => {
          this.metrics.listErrors.inc({ resource });
          this.log.warn({ resource, err: error, retryInMs: delayMs }, `${resource}: list failed, retrying in ${delayMs} ms: ${error.message}`);
        },
        onWatchRestart: (resource, reason, delayMs, error) => {
          this.metrics.watchRestarts.inc({ resource, reason });
          const fields = { resource, reason, retryInMs: delayMs, ...(error !== undefined ? { err: error } : {}) };
          const msg = `${resource}: watch ended (${reason}${error !== undefined ? `: ${error.message}` : ''}), ${reason === 'expired' ? 'relisting' : 'restarting'}${delayMs > 0 ? ` in ${delayMs} ms` : ''}`;
          if (reason === 'closed') this.log.debug(fields, msg);
          else this.log.warn(fields, msg);
        },
        onInvalidObject: (resource) => this.log.warn({ resource }, `${resource}: ignored an object without metadata.name`),
      },
    });
    this.problems = new ProblemReporter(this.log, this.metrics);
    const parsed = new SnapshotCache();
    this.syncLoop = new SyncLoop({
      datapath: deps.datapath,
      canSync: () => allSynced(this.informers) && this.registry !== undefined,
      snapshot: () => {
        const r = buildSnapshot({
          nodeName: config.nodeName,
          namespaces: this.informers.namespaces.store,
          pods: this.informers.pods.store,
          networkPolicies: this.informers.networkPolicies.store,
          nodes: this.informers.nodes.store,
          services: this.informers.services.store,
          endpointSlices: this.informers.endpointSlices.store,
          endpoints: this.registry?.list() ?? [],
          parsed,
        });
        this.problems.report(r.problems);
        if (r.ok) this.updateHealthChecks(r.snapshot.lb);
        return r;
      },
      metrics: this.metrics,
      log: this.log.child({ part: 'sync' }),
      clock: this.clock,
      ...(deps.random !== undefined ? { random: deps.random } : {}),
      debounceMs: config.sync.debounceMs,
      maxDelayMs: config.sync.maxDelayMs,
      retry: config.sync.retry,
    });
    this.flows = deps.flows === undefined ? undefined : new FlowPart({
      config: config.flows,
      nodeName: config.nodeName,
      version: AGENT_VERSION,
      source: deps.flows,
      metrics: new FlowMetrics(this.metrics.registry),
      clock: this.clock,
      log: this.log.child({ part: 'flows' }),
    });
    this.healthChecks = config.lb.enabled ? new HealthCheckServers({
      log: this.log.child({ part: 'health-checks' }),
      metrics: this.metrics,
      proxyHealthy: () => {
        const lb = this.syncLoop.status().owners.find((o) => o.name === 'lb');
        return lb !== undefined && lb.appliedRevision > 0 && lb.failing.length === 0;
      },
    }) : undefined;
    const { healthzListen, statusListen } = config.lb;
    this.proxyPorts = config.lb.enabled && (healthzListen !== '' || statusListen !== '') ? new ProxyPorts({
      lb: () => this.syncLoop.status().owners.find((o) => o.name === 'lb'),
      node: () => this.informers.nodes.store.get(config.nodeName),
      now: () => this.clock.now(),
      timeoutMs: config.lb.healthzTimeoutMs,
      metrics: this.metrics,
      log: this.log.child({ part: 'proxy-ports' }),
    }) : undefined;
    this.probe = new ProbeServer({
      readiness: () => this.readiness(),
      liveness: () => liveness(this.syncLoop.status(), this.clock.now(), deps.stuckAfterMs ?? 300_000),
      metrics: this.metrics,
      log: this.log,
    });
  }

  /** Hands a changed lb input's health checks to their servers (asynchronously: a listener failure is theirs to report). */
  private updateHealthChecks(lb: AgentSnapshot['lb']): void {
    if (this.healthChecks === undefined || lb === this.healthInput) return;
    this.healthInput = lb;
    this.healthChecks.update(lb.nodeAddresses, healthChecks(lb.services, lb.slices, lb.node))
      .catch((e: unknown) => this.log.error({ err: asError(e) }, `health checks: update failed: ${asError(e).message}`));
  }

  readiness(): ReadinessReport {
    return readiness(informerStatuses(this.informers), this.syncLoop.status());
  }

  /** Opens the endpoint registry, starts serving, then starts the informers (the first sync follows their lists). */
  async start(): Promise<StartedAgent> {
    const { config } = this.deps;
    const store = this.deps.endpointStore ?? new EndpointStateFile(join(config.stateDir, ENDPOINT_STATE_FILE));
    const registry = await EndpointRegistry.open({ store, maxEndpointId: config.maxEndpointId });
    this.registry = registry;
    this.log.info({ endpoints: registry.size }, `endpoint registry loaded: ${registry.size} endpoints`);

    // One endpoint service for both transports: the in-process plugin calls it directly, the Node plugin over HTTP.
    const endpoints = new EndpointService({
      registry,
      syncEndpoints: async (reason, wait) => {
        // An ADD waits for its sync: no debounce for it (informer bursts still coalesce).
        const revision = this.syncLoop.trigger(reason, { immediate: wait });
        if (wait) await this.syncLoop.waitApplied(revision, config.sync.endpointTimeoutMs, this.deps.datapath.endpointOwners);
      },
      status: () => this.readiness(),
      node: () => {
        const node = this.informers.nodes.store.get(config.nodeName);
        const spec = node?.spec;
        const podCIDRs = spec?.podCIDRs ?? (spec?.podCIDR !== undefined ? [spec.podCIDR] : []);
        return { name: config.nodeName, known: node !== undefined, podCIDRs };
      },
      log: this.log.child({ part: 'endpoints' }),
    });
    const api = new EndpointApiServer({
      endpoints,
      cni: new InProcessCni({ socketPath: config.endpointSocket, endpoints }),
      metrics: this.metrics,
      log: this.log.child({ part: 'endpoint-api' }),
    });
    await api.listen(config.endpointSocket);
    this.endpointApi = api;
    await this.flows?.start();

    const http = await this.probe.listen(listenAddress(config.httpListen));
    const proxyPorts = await this.proxyPorts?.listen({
      ...(config.lb.healthzListen !== '' ? { healthz: listenAddress(config.lb.healthzListen) } : {}),
      ...(config.lb.statusListen !== '' ? { status: listenAddress(config.lb.statusListen) } : {}),
    });

    if (config.sweep.intervalMs > 0) {
      const { hostNetns, ipamDataDir } = config.sweep;
      this.sweeper = new EndpointSweeper({
        registry,
        host: this.deps.sweepHost ?? nodeSweepHost({ pinDir: config.pinDir, ipamDataDir, ...(hostNetns !== undefined ? { hostNetns } : {}) }),
        clock: this.clock,
        log: this.log.child({ part: 'endpoint-sweep' }),
        metrics: {
          removed: () => this.metrics.sweepRemoved.inc(),
          error: (step) => this.metrics.sweepErrors.inc({ step }),
          pending: (n) => this.metrics.sweepPending.set(n),
        },
        intervalMs: config.sweep.intervalMs,
        graceMs: config.sweep.graceMs,
        onRemoved: () => this.syncLoop.trigger('endpoint swept'),
      });
      this.sweeper.start();
    }

    for (const informer of informerList(this.informers)) {
      this.unsubscribe.push(informer.onChange(() => this.syncLoop.trigger(`${informer.resource.name} changed`)));
      informer.start();
    }
    this.log.info({ node: config.nodeName, socket: config.endpointSocket, http: formatListenAddress(http) }, 'agent started');
    return { http, flows: this.flows?.addresses ?? [], ...(proxyPorts !== undefined ? { proxyPorts } : {}) };
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    await Promise.all(informerList(this.informers).map((i) => i.stop()));
    await this.sweeper?.stop();
    await this.flows?.stop();
    await this.endpointApi?.close();
    await this.syncLoop.stop();
    await this.healthChecks?.close();
    await this.proxyPorts?.close();
    await this.probe.close();
    this.log.info('agent stopped');
  }
}

/** A listen address loadConfig has validated. */
function listenAddress(text: string): ListenAddress {
  const a = parseListenAddress(text);
  if (typeof a === 'string') throw new Error(`listen address ${text}: ${a}`);
  return a;
}
