/**
 * The endpoint API, the HTTP transport of the endpoint contract
 * (src/endpoint/contract.ts) for the Node plugin: JSON over HTTP/1.1 on a
 * unix socket (mode 0600), each call served by the endpoint service
 * (service.ts). Documented in docs/agent.md.
 *
 *   GET    /v1/status                              → {ready, checks}
 *   GET    /v1/endpoints                           → {endpoints: [...]}
 *   POST   /v1/endpoints            {EndpointSpec} → 201 created | 200 unchanged/updated, {endpoint}
 *   GET    /v1/endpoints/{containerId}/{ifname}    → {endpoint} | 404
 *   DELETE /v1/endpoints/{containerId}/{ifname}    → {deleted, endpoint?} (200 even when absent)
 *   GET    /v1/node                                → {name, known, podCIDRs} (the CNI's IPAM range)
 *   POST   /v1/cni/exec     {env, stdin, namespaces, paths} → 200 the plugin's stdout+stderr (x-sluice-cni-exit,
 *                                                   x-sluice-cni-stdout: its length) | 421 {fallback}
 *   GET    /v1/cni/exec                            → {done, fallback: {reason: count}}
 *
 * POST /v1/endpoints answers once the endpoint's policy is in the maps, or
 * 503 "unavailable" after the apply timeout (service.ts). Errors:
 * {error: {code, message, field?, problems?}}, with the HTTP status from the
 * code.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  checkContainerId, checkIfname, EndpointError, invalidRequest, type CniExecAnswer, type CniExecStats, type EndpointErrorCode, type FieldProblem,
} from '../../endpoint/contract.js';
import { asError } from '../errors.js';
import { closeServer } from '../http-server.js';
import type { Logger } from '../logger.js';
import type { AgentMetrics } from '../metrics.js';
import { toEndpointError, type EndpointService } from './service.js';
import { listenUnix } from './unix-socket.js';

export interface EndpointApiDeps {
  readonly endpoints: EndpointService;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  /** Runs a CNI invocation the sluice-cni front end forwarded (src/cni/in-process.ts). */
  readonly cni?: CniExecPort;
}

export interface CniExecPort {
  exec(body: unknown): Promise<CniExecAnswer>;
  stats(): CniExecStats;
}

const MAX_BODY = 64 * 1024;
/** A forwarded CNI config can carry a large prevResult; the shim reads at most 4 MiB of stdin. */
const MAX_CNI_BODY = 4 * 1024 * 1024 + 64 * 1024;

/** unreachable and protocol are the client's own: the server never answers with them. */
const STATUS_OF: Record<EndpointErrorCode, number> = {
  'invalid-argument': 400,
  'not-found': 404,
  conflict: 409,
  exhausted: 503,
  unavailable: 503,
  'state-corrupt': 500,
  io: 500,
  internal: 500,
  unreachable: 502,
  protocol: 502,
};

interface Reply {
  readonly status: number;
  readonly body: unknown;
  /** Sent as is instead of JSON (the CNI front end writes these bytes back verbatim). */
  readonly raw?: { readonly headers: Record<string, string>; readonly bytes: Buffer };
}

export class EndpointApiServer {
  private server: Server | undefined;

  constructor(private readonly deps: EndpointApiDeps) {}

  async listen(socketPath: string): Promise<void> {
    const server = createServer((req, res) => {
      void this.serve(req, res);
    });
    await listenUnix(server, socketPath);
    this.server = server;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    await closeServer(s);
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let op = 'unknown';
    let reply: Reply;
    try {
      const route = this.route(req);
      op = route.op;
      reply = await route.run();
    } catch (e) {
      const err = toEndpointError(e);
      reply = { status: STATUS_OF[err.code], body: { error: err.toJSON() } };
      if (reply.status >= 500) this.deps.log.error({ err: asError(e), method: req.method, url: req.url }, `endpoint API ${op} failed`);
      else this.deps.log.info({ method: req.method, url: req.url, error: err.message }, `endpoint API ${op} rejected`);
    }
    this.deps.metrics.endpointRequests.inc({ op, status: String(reply.status) });
    if (reply.raw !== undefined) {
      res.writeHead(reply.status, { ...reply.raw.headers, 'content-type': 'application/octet-stream', 'content-length': reply.raw.bytes.length });
      res.end(reply.raw.bytes);
      return;
    }
    const text = `${JSON.stringify(reply.body)}\n`;
    res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private route(req: IncomingMessage): { op: string; run: () => Promise<Reply> } {
    const url = new URL(req.url ?? '/', 'http://agent');
    const parts = url.pathname.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
    const method = req.method ?? 'GET';
    const endpoints = this.deps.endpoints;
    const notAllowed = (allowed: string): never => {
      throw new EndpointError('invalid-argument', `${method} is not allowed on ${url.pathname} (allowed: ${allowed})`);
    };
    const ok = async (body: Promise<unknown>): Promise<Reply> => ({ status: 200, body: await body });
    if (parts[0] !== 'v1') throw new EndpointError('not-found', `no such path ${url.pathname}: the API is under /v1`);
    if (parts.length === 2 && parts[1] === 'status') {
      if (method !== 'GET') notAllowed('GET');
      return { op: 'status', run: () => ok(endpoints.status()) };
    }
    if (parts.length === 2 && parts[1] === 'node') {
      if (method !== 'GET') notAllowed('GET');
      return { op: 'node', run: () => ok(endpoints.node()) };
    }
    if (parts.length === 3 && parts[1] === 'cni' && parts[2] === 'exec') {
      const cni = this.deps.cni;
      if (cni === undefined) throw new EndpointError('not-found', 'this agent does not run CNI invocations'); // the shim falls back on 404
      if (method === 'GET') return { op: 'cni-stats', run: () => Promise.resolve({ status: 200, body: cni.stats() }) };
      if (method === 'POST') return { op: 'cni-exec', run: () => this.cniExec(cni, req) };
      notAllowed('GET, POST');
    }
    if (parts[1] === 'endpoints' && parts.length === 2) {
      if (method === 'GET') return { op: 'list', run: () => ok(endpoints.list().then((list) => ({ endpoints: list }))) };
      if (method === 'POST') return { op: 'add', run: () => this.add(req) };
      notAllowed('GET, POST');
    }
    if (parts[1] === 'endpoints' && parts.length === 4) {
      const containerId = parts[2] ?? '';
      const ifname = parts[3] ?? '';
      checkPathParams(containerId, ifname);
      if (method === 'GET') return { op: 'get', run: () => this.get(containerId, ifname) };
      if (method === 'DELETE') return { op: 'delete', run: () => this.delete(containerId, ifname) };
      notAllowed('GET, DELETE');
    }
    throw new EndpointError('not-found', `no such path ${url.pathname}`);
  }

  private async add(req: IncomingMessage): Promise<Reply> {
    const result = await this.deps.endpoints.registerBody(await readJson(req));
    return { status: result.created ? 201 : 200, body: { endpoint: result.endpoint } };
  }

  /** 421 (Misdirected Request) for a fallback: nothing was done, the shim runs the Node plugin instead. */
  private async cniExec(cni: CniExecPort, req: IncomingMessage): Promise<Reply> {
    const answer = await cni.exec(await readJson(req, MAX_CNI_BODY));
    if (answer.kind === 'fallback') return { status: 421, body: { fallback: answer.reason, detail: answer.detail } };
    const { stdout, stderr, exitCode } = answer.outcome;
    const out = Buffer.from(stdout, 'utf8');
    return {
      status: 200,
      body: undefined,
      raw: { headers: { 'x-sluice-cni-exit': String(exitCode), 'x-sluice-cni-stdout': String(out.length) }, bytes: Buffer.concat([out, Buffer.from(stderr, 'utf8')]) },
    };
  }

  private async get(containerId: string, ifname: string): Promise<Reply> {
    const e = await this.deps.endpoints.get(containerId, ifname);
    if (e === undefined) throw new EndpointError('not-found', `no endpoint ${containerId}/${ifname}`);
    return { status: 200, body: { endpoint: e } };
  }

  private async delete(containerId: string, ifname: string): Promise<Reply> {
    const removed = await this.deps.endpoints.unregister(containerId, ifname);
    return { status: 200, body: removed === undefined ? { deleted: false } : { deleted: true, endpoint: removed } };
  }
}

function checkPathParams(containerId: string, ifname: string): void {
  const problems: FieldProblem[] = [];
  const c = checkContainerId(containerId);
  if (c !== undefined) problems.push({ field: 'containerId', message: c });
  const i = checkIfname(ifname);
  if (i !== undefined) problems.push({ field: 'ifname', message: i });
  if (problems.length > 0) throw invalidRequest(problems);
}

function readJson(req: IncomingMessage, maxBody = MAX_BODY): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    return Promise.reject(new EndpointError('invalid-argument', `content-type must be application/json, got "${type}"`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= maxBody) chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > maxBody) {
        reject(new EndpointError('invalid-argument', `body larger than ${maxBody} bytes`));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(new EndpointError('invalid-argument', `body is not valid JSON: ${asError(e).message}`));
      }
    });
  });
}
