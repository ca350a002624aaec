/**
 * The endpoint API's HTTP client (the server: src/agent/endpoints/api.ts):
 * the EndpointPort of the Node plugin (sluice-cni-node), which runs outside
 * the agent, and of tools and tests. One HTTP request per call over the
 * agent's unix socket, no keep-alive (the Node plugin is a short-lived
 * process). Failures are EndpointError with the server's code, or
 * "unreachable" when no agent answers (the CNI's "try again later") and
 * "protocol" for an answer that is not the API's.
 */
import { request } from 'node:http';
import {
  EndpointError, isEndpointErrorCode, type CniExecStats, type EndpointPort, type EndpointRecord, type EndpointSpec, type FieldProblem,
  type NodeInfo, type ReadinessReport, type RegisterResult,
} from './contract.js';

export interface EndpointClientOptions {
  /** Per request, ms. Default 30 s (a registration waits for the datapath). */
  readonly timeoutMs?: number;
}

export class EndpointClient implements EndpointPort {
  private readonly timeoutMs: number;

  constructor(
    readonly socketPath: string,
    options: EndpointClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async register(spec: EndpointSpec): Promise<RegisterResult> {
    const r = await this.call('POST', '/v1/endpoints', spec);
    return { endpoint: (r.body as { endpoint: EndpointRecord }).endpoint, created: r.status === 201 };
  }

  async get(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    try {
      const r = await this.call('GET', endpointPath(containerId, ifname));
      return (r.body as { endpoint: EndpointRecord }).endpoint;
    } catch (e) {
      if (e instanceof EndpointError && e.code === 'not-found') return undefined;
      throw e;
    }
  }

  async unregister(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    const r = await this.call('DELETE', endpointPath(containerId, ifname));
    return (r.body as { endpoint?: EndpointRecord }).endpoint;
  }

  async list(): Promise<EndpointRecord[]> {
    const r = await this.call('GET', '/v1/endpoints');
    return (r.body as { endpoints: EndpointRecord[] }).endpoints;
  }

  /** Throws "unreachable" when no agent answers; never throws for "not ready". */
  async status(): Promise<ReadinessReport> {
    const r = await this.call('GET', '/v1/status');
    return r.body as ReadinessReport;
  }

  async node(): Promise<NodeInfo> {
    const r = await this.call('GET', '/v1/node');
    return r.body as NodeInfo;
  }

  /** The agent's counters of forwarded CNI invocations (GET /v1/cni/exec): run in-process, fallbacks by reason. */
  async inProcessStats(): Promise<CniExecStats> {
    const r = await this.call('GET', '/v1/cni/exec');
    return r.body as CniExecStats;
  }

  /** One request; resolves on 2xx, throws EndpointError otherwise. Exposed for raw protocol checks. */
  call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          path,
          method,
          timeout: this.timeoutMs,
          headers: {
            ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
            ...headers,
          },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => reject(new EndpointError('unreachable', `${method} ${path}: ${e.message}`, { status: 0, cause: e })));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              reject(new EndpointError('protocol', `${method} ${path}: the agent answered ${status} with a body that is not JSON`, { status }));
              return;
            }
            if (status >= 200 && status < 300) {
              resolve({ status, body: parsed });
              return;
            }
            reject(toError(parsed, status, `${method} ${path}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (e) => {
        const notSent = /^(ENOENT|ECONNREFUSED)$/.test((e as NodeJS.ErrnoException).code ?? '');
        reject(new EndpointError('unreachable', `agent at ${this.socketPath}: ${e.message}`, { status: 0, notSent, cause: e }));
      });
      req.end(payload);
    });
  }
}

function endpointPath(containerId: string, ifname: string): string {
  return `/v1/endpoints/${encodeURIComponent(containerId)}/${encodeURIComponent(ifname)}`;
}

/** The server's {error: {code, message, field?, problems?}}; a code this client does not know reads as internal, named in the message. */
function toError(body: unknown, status: number, what: string): EndpointError {
  const err = (typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined) as
    | { code?: unknown; message?: unknown; field?: unknown; problems?: unknown }
    | undefined;
  const message = typeof err?.message === 'string' ? err.message : `${what}: HTTP ${status}`;
  const field = typeof err?.field === 'string' ? err.field : undefined;
  const problems = Array.isArray(err?.problems) ? (err.problems as FieldProblem[]) : undefined;
  const details = { status, ...(field !== undefined ? { field } : {}), ...(problems !== undefined ? { problems } : {}) };
  if (err === undefined) return new EndpointError('protocol', message, details);
  if (isEndpointErrorCode(err.code)) return new EndpointError(err.code, message, details);
  return new EndpointError('internal', `${message} (code ${JSON.stringify(err.code)})`, details);
}
