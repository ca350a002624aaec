/**
 * A client for the endpoint API (endpoints/api.ts), for the CNI plugin and
 * for tests: one HTTP request per call over the unix socket, no keep-alive
 * (the CNI is a short-lived process). Failures are EndpointApiError with
 * the server's code, or "unreachable" when no agent answers (the CNI's
 * "try again later").
 */
import { request } from 'node:http';
import type { InProcessStats } from '../../cni/in-process.js';
import type { ReadinessReport } from '../readiness.js';
import type { NodeInfo } from './api.js';
import type { EndpointRecord, EndpointSpec, FieldProblem } from './types.js';

/**
 * The server's error code (invalid-argument, not-found, conflict, exhausted,
 * unavailable, internal), or, from the client itself, unreachable (no agent
 * answered: the CNI's "try again later") or protocol (an answer that is not
 * the API's). A string, so that a newer agent's code still comes through.
 */
export type EndpointApiErrorCode = string;

export class EndpointApiError extends Error {
  override readonly name = 'EndpointApiError';
  constructor(
    readonly code: EndpointApiErrorCode,
    message: string,
    /** HTTP status; 0 when there was no answer. */
    readonly status: number,
    readonly field?: string,
    readonly problems?: readonly FieldProblem[],
  ) {
    super(message);
  }
}

export interface EndpointClientOptions {
  /** Per request, ms. Default 30 s (an ADD waits for the datapath). */
  readonly timeoutMs?: number;
}

export class EndpointClient {
  private readonly timeoutMs: number;

  constructor(
    readonly socketPath: string,
    options: EndpointClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  async add(spec: EndpointSpec): Promise<{ endpoint: EndpointRecord; created: boolean }> {
    const r = await this.call('POST', '/v1/endpoints', spec);
    return { endpoint: (r.body as { endpoint: EndpointRecord }).endpoint, created: r.status === 201 };
  }

  async get(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    try {
      const r = await this.call('GET', endpointPath(containerId, ifname));
      return (r.body as { endpoint: EndpointRecord }).endpoint;
    } catch (e) {
      if (e instanceof EndpointApiError && e.code === 'not-found') return undefined;
      throw e;
    }
  }

  async delete(containerId: string, ifname: string): Promise<EndpointRecord | undefined> {
    const r = await this.call('DELETE', endpointPath(containerId, ifname));
    return (r.body as { endpoint?: EndpointRecord }).endpoint;
  }

  async list(): Promise<EndpointRecord[]> {
    const r = await this.call('GET', '/v1/endpoints');
    return (r.body as { endpoints: EndpointRecord[] }).endpoints;
  }

  /** Readiness as the agent sees it; throws "unreachable" when no agent answers. Never throws for "not ready". */
  async status(): Promise<ReadinessReport> {
    const r = await this.call('GET', '/v1/status');
    return r.body as ReadinessReport;
  }

  /** This node's name and pod CIDRs, as the agent's informer has them. */
  async node(): Promise<NodeInfo> {
    const r = await this.call('GET', '/v1/node');
    return r.body as NodeInfo;
  }

  /** The in-process CNI's counters (GET /v1/cni/exec): invocations the agent ran, fallbacks to the Node plugin by reason. */
  async inProcessStats(): Promise<InProcessStats> {
    const r = await this.call('GET', '/v1/cni/exec');
    return r.body as InProcessStats;
  }

  /** One request; resolves on 2xx, throws EndpointApiError otherwise. Exposed for raw protocol checks. */
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
          res.on('error', (e) => reject(new EndpointApiError('unreachable', `${method} ${path}: ${e.message}`, 0)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              reject(new EndpointApiError('protocol', `${method} ${path}: the agent answered ${status} with a body that is not JSON`, status));
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
      req.on('error', (e) => reject(new EndpointApiError('unreachable', `agent at ${this.socketPath}: ${e.message}`, 0)));
      req.end(payload);
    });
  }
}

function endpointPath(containerId: string, ifname: string): string {
  return `/v1/endpoints/${encodeURIComponent(containerId)}/${encodeURIComponent(ifname)}`;
}

function toError(body: unknown, status: number, what: string): EndpointApiError {
  const err = (typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined) as
    | { code?: unknown; message?: unknown; field?: unknown; problems?: unknown }
    | undefined;
  const code = typeof err?.code === 'string' ? err.code : 'protocol';
  const message = typeof err?.message === 'string' ? err.message : `${what}: HTTP ${status}`;
  const field = typeof err?.field === 'string' ? err.field : undefined;
  const problems = Array.isArray(err?.problems) ? (err.problems as FieldProblem[]) : undefined;
  return new EndpointApiError(code, message, status, field, problems);
}
