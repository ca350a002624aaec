/**
 * The agent's HTTP endpoint for probes and scrapes (TCP, loopback by
 * default): /healthz (liveness), /readyz (readiness with a JSON detail of
 * every check; ?verbose is implied), /metrics (Prometheus text).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AgentError, asError } from './errors.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import type { Check, ReadinessReport } from './readiness.js';

export interface ProbeSources {
  readonly readiness: () => ReadinessReport;
  readonly liveness: () => Check;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** "127.0.0.1:9890", "[::1]:9890", ":9890" (all addresses) → host and port. */
export function parseListenAddress(text: string): ListenAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (m === null) return `"${text}" is not host:port`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range 0..65535`;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

export class ProbeServer {
  private server: Server | undefined;

  constructor(private readonly sources: ProbeSources) {}

  async listen(address: ListenAddress): Promise<ListenAddress> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        this.sources.log.error({ err: asError(e), url: req.url }, 'probe request failed');
        if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${asError(e).message}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new AgentError('io', `cannot listen on ${address.host}:${address.port}: ${e.message}`, 'httpListen')));
      server.listen(address.port, address.host, () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'only GET\n');
      return;
    }
    switch (path) {
      case '/healthz': {
        const c = this.sources.liveness();
        send(res, c.ok ? 200 : 503, 'text/plain', c.ok ? 'ok\n' : `unhealthy: ${c.detail}\n`);
        return;
      }
      case '/readyz': {
        const r = this.sources.readiness();
        send(res, r.ready ? 200 : 503, 'application/json', `${JSON.stringify(r, null, 1)}\n`);
        return;
      }
      case '/metrics': {
        const m = await this.sources.metrics.render();
        send(res, 200, m.contentType, m.body);
        return;
      }
      default:
        send(res, 404, 'text/plain', 'not found: try /healthz, /readyz, /metrics\n');
    }
  }
}

/** Closes an HTTP server now: open keep-alive connections are cut rather than waited for. */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
