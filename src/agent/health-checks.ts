/**
 * The owner of the Service health-check servers (kube-proxy's
 * ServiceHealthServer): for each Service src/lb/health.ts names, an HTTP
 * server on its spec.healthCheckNodePort on every IPv4 address of this
 * node (its Node's InternalIP and ExternalIP, where its NodePorts answer),
 * in the agent's network namespace. Every path answers as kube-proxy does:
 *
 *   200 (the node has Ready endpoints of the Service and the proxy is
 *   healthy) or 503, Content-Type application/json, X-Content-Type-Options
 *   nosniff, X-Load-Balancing-Endpoint-Weight: <count>, and the body
 *   {"service":{"namespace","name"},"localEndpoints","serviceProxyHealthy"}.
 *
 * `update` diffs the listeners wanted against those open: a new one is
 * opened, one no longer wanted closed; a count changes in place (the
 * handler reads it per request). Updates run one at a time, in order. A
 * listener that cannot be opened (the port is taken) is logged, counted in
 * sluice_agent_health_check_servers{state="failing"} and tried again at the
 * next update. The proxy's health (serviceProxyHealthy) comes from the
 * agent: whether its load balancer's maps hold the last round.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import type { HealthCheck } from '../lb/health.js';
import { asError } from './errors.js';
import { closeServer } from './http-server.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';

export interface HealthCheckServersOptions {
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  /** serviceProxyHealthy: the proxy's own state (kube-proxy: its rules are in sync). */
  readonly proxyHealthy: () => boolean;
}

/** "address:port" of one listener. */
const listenerKey = (address: string, port: number): string => `${address}:${port}`;

export class HealthCheckServers {
  private readonly open = new Map<string, Server>();
  private readonly failing = new Map<string, string>();
  private checks = new Map<number, HealthCheck>();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: HealthCheckServersOptions) {}

  /** Serves `checks` on every IPv4 address of `addresses` from now on; resolves once the listeners are opened and closed. */
  update(addresses: readonly string[], checks: readonly HealthCheck[]): Promise<void> {
    const next = this.queue.then(() => this.apply(addresses, checks));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Listeners that could not be opened ("address:port" → why). */
  failures(): ReadonlyMap<string, string> {
    return this.failing;
  }

  /** Listening "address:port"s, sorted. */
  listening(): string[] {
    return [...this.open.keys()].sort();
  }

  /** Closes every listener. */
  close(): Promise<void> {
    return this.update([], []);
  }

  private async apply(addresses: readonly string[], checks: readonly HealthCheck[]): Promise<void> {
    this.checks = new Map(checks.map((c) => [c.port, c]));
    const wanted = new Map<string, { address: string; port: number }>();
    for (const c of checks) for (const address of addresses.filter((a) => isIPv4(a))) wanted.set(listenerKey(address, c.port), { address, port: c.port });
    for (const [key, server] of [...this.open]) {
      if (wanted.has(key)) continue;
      this.open.delete(key);
      await closeServer(server);
    }
    for (const key of [...this.failing.keys()]) if (!wanted.has(key)) this.failing.delete(key);
    for (const [key, { address, port }] of wanted) {
      if (this.open.has(key)) continue;
      try {
        this.open.set(key, await this.listen(address, port));
        this.failing.delete(key);
      } catch (e) {
        const why = asError(e).message;
        if (this.failing.get(key) !== why) this.options.log.warn({ address, port, err: asError(e) }, `health check ${key}: cannot listen: ${why}`);
        this.failing.set(key, why);
      }
    }
    this.options.metrics.healthCheckServers.set({ state: 'listening' }, this.open.size);
    this.options.metrics.healthCheckServers.set({ state: 'failing' }, this.failing.size);
  }

  private listen(address: string, port: number): Promise<Server> {
    const server = createServer((req, res) => this.answer(port, req, res));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => {
        server.off('error', reject);
        server.on('error', (e) => this.options.log.warn({ address, port, err: e }, `health check ${listenerKey(address, port)}: ${e.message}`));
        resolve(server);
      });
    });
  }

  private answer(port: number, _req: IncomingMessage, res: ServerResponse): void {
    const check = this.checks.get(port);
    const count = check?.localEndpoints ?? 0;
    const healthy = this.options.proxyHealthy();
    const body = JSON.stringify({
      service: { namespace: check?.namespace ?? '', name: check?.name ?? '' },
      localEndpoints: count,
      serviceProxyHealthy: healthy,
    }, null, '\t');
    res.writeHead(count !== 0 && healthy ? 200 : 503, {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Load-Balancing-Endpoint-Weight': String(count),
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  }
}
