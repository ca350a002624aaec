/**
 * kube-proxy's two node ports, served by the agent when it is the node's
 * Service proxy (config lb.healthzListen, lb.statusListen), so that what
 * probes kube-proxy keeps working without it:
 *
 *   healthz (kube-proxy's --healthz-bind-address, 0.0.0.0:10256): /healthz
 *   and /livez. Cloud load balancers probe /healthz of every node for
 *   Services with externalTrafficPolicy Cluster. 200 while the load
 *   balancer holds every change it was given, or has had one pending for
 *   less than lb.healthzTimeoutMs (kube-proxy: twice its sync period);
 *   503 once a change has waited longer (the maps fail or the agent cannot
 *   sync). /healthz is also 503 while the node is going away (its Node
 *   deleted or tainted ToBeDeletedByClusterAutoscaler), so that load
 *   balancers drain it first; /livez leaves that out. The JSON body has
 *   kube-proxy's fields: lastUpdated (now when healthy, as kube-proxy
 *   does, else the load balancer's last completed round), currentTime,
 *   nodeEligible (on /healthz), healthy, status.IPv4.
 *
 *   status (kube-proxy's --metrics-bind-address, 127.0.0.1:10249):
 *   /proxyMode ("sluice"), /healthz ("ok"), /metrics (the agent's).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { asError } from './errors.js';
import { closeServer, formatListenAddress, listenHttp, send, type ListenAddress } from './http-server.js';
import type { SlimNode } from './k8s/resources.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import type { OwnerStatus } from './sync-loop.js';

/** The taint the cluster autoscaler puts on a node it is about to remove. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';
/** What /proxyMode answers (kube-proxy: iptables, ipvs, nftables). */
export const PROXY_MODE = 'sluice';

/** The fields kube-proxy's healthz server writes (pkg/proxy/healthcheck ProxyHealth). */
export interface ProxyHealthBody {
  readonly lastUpdated: string;
  readonly currentTime: string;
  readonly nodeEligible?: boolean;
  readonly healthy: boolean;
  readonly status: { readonly IPv4: { readonly lastUpdated: string; readonly healthy: boolean } };
}

export interface ProxyHealthAnswer {
  readonly status: 200 | 503;
  readonly body: ProxyHealthBody;
}

/** Go's zero time, as kube-proxy reports a proxier that has not synced yet. */
const NEVER = '0001-01-01T00:00:00Z';

/** Whether load balancers may send to this node: its Node exists, is not being deleted, and is not tainted for removal. */
export function nodeEligible(node: SlimNode | undefined): boolean {
  if (node === undefined) return false;
  if (node.metadata?.deletionTimestamp !== undefined) return false;
  return !(node.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
}

/**
 * The answer to /healthz (`node` given: eligibility counts) or /livez
 * (`node` undefined) from the load balancer owner's status at `now`.
 */
export function proxyHealth(lb: OwnerStatus | undefined, now: number, timeoutMs: number, node?: { readonly eligible: boolean }): ProxyHealthAnswer {
  const late = lb?.pendingSince !== undefined && now - lb.pendingSince >= timeoutMs;
  const last = lb?.appliedAt !== undefined ? new Date(lb.appliedAt).toISOString() : NEVER;
  const healthy = !late && (node?.eligible ?? true);
  const body: ProxyHealthBody = {
    lastUpdated: healthy ? new Date(now).toISOString() : last,
    currentTime: new Date(now).toISOString(),
    ...(node !== undefined ? { nodeEligible: node.eligible } : {}),
    healthy: !late,
    status: { IPv4: { lastUpdated: last, healthy: !late } },
  };
  return { status: healthy ? 200 : 503, body };
}

export interface ProxyPortsOptions {
  /** The load balancer owner's sync status (undefined: not started). */
  readonly lb: () => OwnerStatus | undefined;
  /** This node's Node object as the informer holds it. */
  readonly node: () => SlimNode | undefined;
  readonly now: () => number;
  readonly timeoutMs: number;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
}

export interface ProxyPortsAddresses {
  readonly healthz?: ListenAddress;
  readonly status?: ListenAddress;
}

/** kube-proxy's retry of a port it could not bind (its healthz server: every 5 s). */
export const PROXY_PORT_RETRY_MS = 5000;

/**
 * The healthz and status listeners (either may be off). A port that is
 * taken (kube-proxy still running on the node, while Services are handed
 * over) is logged and tried again every retryMs, as kube-proxy does with
 * its own: the agent's datapath does not wait on a compatibility port.
 */
export class ProxyPorts {
  private readonly servers = new Map<string, Server>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly options: ProxyPortsOptions & { readonly retryMs?: number }) {}

  /** Opens each port given; resolves with those bound at the first try (the real port for :0). The others keep trying. */
  async listen(addresses: ProxyPortsAddresses): Promise<ProxyPortsAddresses> {
    this.closed = false;
    const bound: { healthz?: ListenAddress; status?: ListenAddress } = {};
    if (addresses.healthz !== undefined) {
      const a = await this.open('healthz', addresses.healthz, 'lb.healthzListen', (p) => this.healthz(p));
      if (a !== undefined) bound.healthz = a;
    }
    if (addresses.status !== undefined) {
      const a = await this.open('status', addresses.status, 'lb.statusListen', (p) => this.status(p));
      if (a !== undefined) bound.status = a;
    }
    return bound;
  }

  /** The ports open now ("healthz", "status"). */
  listening(): string[] {
    return [...this.servers.keys()].sort();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    const open = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(open.map((s) => closeServer(s)));
  }

  /** One try; on failure a warning and the next try after retryMs. */
  private async open(what: string, address: ListenAddress, field: string, route: (path: string) => Promise<Reply>): Promise<ListenAddress | undefined> {
    const server = createServer((req, res) => this.answer(req, res, route));
    try {
      const bound = await listenHttp(server, address, field);
      if (this.closed) {
        await closeServer(server);
        return undefined;
      }
      this.servers.set(what, server);
      this.options.log.info({ [what]: formatListenAddress(bound) }, `kube-proxy's ${what} port served on ${formatListenAddress(bound)}`);
      return bound;
    } catch (e) {
      const retryMs = this.options.retryMs ?? PROXY_PORT_RETRY_MS;
      this.options.log.warn({ err: asError(e), field, retryInMs: retryMs }, `kube-proxy's ${what} port: ${asError(e).message}; trying again in ${retryMs} ms`);
      if (!this.closed) {
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          void this.open(what, address, field, route);
        }, retryMs);
        timer.unref();
        this.retries.add(timer);
      }
      return undefined;
    }
  }

  private answer(req: IncomingMessage, res: ServerResponse, route: (path: string) => Promise<Reply>): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'only GET\n');
      return;
    }
    route(new URL(req.url ?? '/', 'http://x').pathname).then((r) => {
      res.writeHead(r.status, { 'content-type': r.type, 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(r.body) });
      res.end(r.body);
    }).catch((e: unknown) => {
      this.options.log.error({ err: asError(e), url: req.url }, 'kube-proxy port request failed');
      if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${asError(e).message}\n`);
    });
  }

  private healthz(path: string): Promise<Reply> {
    const { lb, node, now, timeoutMs } = this.options;
    if (path !== '/healthz' && path !== '/livez') return Promise.resolve(notFound('/healthz, /livez'));
    const a = proxyHealth(lb(), now(), timeoutMs, path === '/healthz' ? { eligible: nodeEligible(node()) } : undefined);
    return Promise.resolve({ status: a.status, type: 'application/json', body: JSON.stringify(a.body) });
  }

  private async status(path: string): Promise<Reply> {
    switch (path) {
      case '/proxyMode':
        return { status: 200, type: 'text/plain; charset=utf-8', body: PROXY_MODE };
      case '/healthz':
        return { status: 200, type: 'text/plain; charset=utf-8', body: 'ok' };
      case '/metrics': {
        const m = await this.options.metrics.render();
        return { status: 200, type: m.contentType, body: m.body };
      }
      default:
        return notFound('/proxyMode, /healthz, /metrics');
    }
  }
}

interface Reply {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

const notFound = (paths: string): Reply => ({ status: 404, type: 'text/plain', body: `not found: try ${paths}\n` });
