/**
 * The agent's HTTP endpoint for probes and scrapes (TCP, loopback by
 * default, or a unix socket: `unix:/abs/path`, reachable across network
 * namespaces): /healthz (liveness), /readyz (readiness with a JSON detail
 * of every check; ?verbose is implied), /metrics (Prometheus text).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenUnix } from './endpoints/unix-socket.js';
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

export interface TcpListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface UnixListenAddress {
  /** Absolute path of the socket (root only: 0600 in a 0700 dir, as the endpoint socket). */
  readonly path: string;
}

export type ListenAddress = TcpListenAddress | UnixListenAddress;

const UNIX_PREFIX = 'unix:';
/** sockaddr_un.sun_path holds 108 bytes with the terminating NUL. */
export const MAX_UNIX_PATH = 107;

/**
 * "127.0.0.1:9890", "[::1]:9890", ":9890" (all addresses) → host and port;
 * "unix:/abs/path" → a unix socket. A string is the reason it is neither.
 */
export function parseListenAddress(text: string): ListenAddress | string {
  if (text.startsWith(UNIX_PREFIX)) {
    const path = text.slice(UNIX_PREFIX.length);
    if (!path.startsWith('/')) return `"${text}": a unix socket path must be absolute (unix:/path)`;
    const bytes = Buffer.byteLength(path);
    return bytes <= MAX_UNIX_PATH ? { path } : `a unix socket path must be at most ${MAX_UNIX_PATH} bytes, got ${bytes}`;
  }
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (m === null) return `"${text}" is not host:port or unix:/path`;
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range 0..65535`;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** The address as --http-listen spells it. */
export function formatListenAddress(a: ListenAddress): string {
  if ('path' in a) return `${UNIX_PREFIX}${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export class ProbeServer {
  private server: Server | undefined;

  constructor(private readonly sources: ProbeSources) {}

  /** Listens; a TCP address comes back with the port picked for :0. */
  listen(address: TcpListenAddress): Promise<TcpListenAddress>;
  listen(address: UnixListenAddress): Promise<UnixListenAddress>;
  listen(address: ListenAddress): Promise<ListenAddress>;
  async listen(address: ListenAddress): Promise<ListenAddress> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        this.sources.log.error({ err: asError(e), url: req.url }, 'probe request failed');
        if (!res.headersSent) send(res, 500, 'text/plain', `internal error: ${asError(e).message}\n`);
      });
    });
    const bound = await listenHttp(server, address, 'httpListen');
    this.server = server;
    return bound;
  }

  /** Stops listening (a unix socket file is removed by the close). */
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

/**
 * `server` listening on `address` (`field`: the config key an error names);
 * a TCP address comes back with the port picked for :0.
 */
export async function listenHttp(server: Server, address: ListenAddress, field: string): Promise<ListenAddress> {
  if ('path' in address) {
    await listenUnix(server, address.path, field);
    return address;
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new AgentError('io', `${field}: cannot listen on ${formatListenAddress(address)}: ${e.message}`, field, { cause: e })));
    server.listen(address.port, address.host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port };
}

/** Closes an HTTP server now: open keep-alive connections are cut rather than waited for. */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
