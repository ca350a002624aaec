/**
 * The endpoint API the CNI calls: JSON over HTTP/1.1 on a unix socket
 * (mode 0600). Documented in docs/agent.md.
 *
 *   GET    /v1/status                              → {ready, checks}
 *   GET    /v1/endpoints                           → {endpoints: [...]}
 *   POST   /v1/endpoints            {EndpointSpec} → 201 created | 200 unchanged/updated, {endpoint}
 *   GET    /v1/endpoints/{containerId}/{ifname}    → {endpoint} | 404
 *   DELETE /v1/endpoints/{containerId}/{ifname}    → {deleted, endpoint?} (200 even when absent)
 *   GET    /v1/node                                → {name, known, podCIDRs} (the CNI's IPAM range)
 *   POST   /v1/cni/exec     {env, stdin, namespaces} → 200 the plugin's stdout+stderr (x-sluice-cni-exit,
 *                                                   x-sluice-cni-stdout: its length) | 421 {fallback}
 *   GET    /v1/cni/exec                            → {done, fallback: {reason: count}}
 *
 * POST answers only once the endpoint's policy is in the maps (the pod's
 * interface must not come up before), or 503 "unavailable" after the
 * apply timeout; the endpoint then stays registered, and the CNI's DEL
 * after a failed ADD removes it. Errors: {error: {code, message, field?,
 * problems?}}, with the HTTP status from the code.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AgentError, asError, type AgentErrorCode } from '../errors.js';
import { closeServer } from '../http-server.js';
import type { InProcessAnswer, InProcessStats } from '../../cni/in-process.js';
import type { Logger } from '../logger.js';
import type { AgentMetrics } from '../metrics.js';
import type { ReadinessReport } from '../readiness.js';
import type { EndpointRegistry } from './registry.js';
import { checkContainerId, checkIfname, validateEndpointSpec, type FieldProblem } from './types.js';
import { listenUnix } from './unix-socket.js';

export interface EndpointApiDeps {
  readonly registry: EndpointRegistry;
  /** Requests a sync for a registry change; with wait, resolves when it is in the maps (rejects: unavailable). */
  readonly syncEndpoints: (reason: string, wait: boolean) => Promise<void>;
  readonly status: () => ReadinessReport;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  /** This node as the informer sees it (the CNI allocates pod IPs from its podCIDRs). */
  readonly node?: () => NodeInfo;
  /** Runs a CNI invocation the sluice-cni front end forwarded (src/cni/in-process.ts). */
  readonly cni?: CniExecPort;
}

export interface CniExecPort {
  exec(body: unknown): Promise<InProcessAnswer>;
  stats(): InProcessStats;
}

export interface NodeInfo {
  readonly name: string;
  /** The Node object is in the informer's cache (false: not listed yet, or no such node). */
  readonly known: boolean;
  /** spec.podCIDRs (or [spec.podCIDR]); empty when the node has none (yet). */
  readonly podCIDRs: readonly string[];
}

const MAX_BODY = 64 * 1024;
/** A forwarded CNI config can carry a large prevResult; the shim reads at most 4 MiB of stdin. */
const MAX_CNI_BODY = 4 * 1024 * 1024 + 64 * 1024;

const STATUS_OF: Record<AgentErrorCode, number> = {
  'invalid-argument': 400,
  'invalid-config': 400,
  'not-found': 404,
  conflict: 409,
  exhausted: 503,
  unavailable: 503,
  'state-corrupt': 500,
  'kube-api': 502,
  io: 500,
};

interface Reply {
  readonly status: number;
  readonly body: unknown;
  /** Sent as is instead of JSON (the CNI front end writes these bytes back verbatim). */
  readonly raw?: { readonly headers: Record<string, string>; readonly bytes: Buffer };
}

class InvalidRequest extends AgentError {
  constructor(
    readonly problems: readonly FieldProblem[],
  ) {
    const first = problems[0];
    super('invalid-argument', first === undefined ? 'invalid request' : `${first.field === '' ? '' : `${first.field}: `}${first.message}`, first?.field);
  }
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
      reply = errorReply(e);
      if (reply.status >= 500) this.deps.log.error({ err: asError(e), method: req.method, url: req.url }, `endpoint API ${op} failed`);
      else this.deps.log.info({ method: req.method, url: req.url, error: asError(e).message }, `endpoint API ${op} rejected`);
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
    const notAllowed = (allowed: string): never => {
      throw new AgentError('invalid-argument', `${method} is not allowed on ${url.pathname} (allowed: ${allowed})`);
    };
    if (parts[0] !== 'v1') throw new AgentError('not-found', `no such path ${url.pathname}: the API is under /v1`);
    if (parts.length === 2 && parts[1] === 'status') {
      if (method !== 'GET') notAllowed('GET');
      return { op: 'status', run: () => Promise.resolve({ status: 200, body: this.deps.status() }) };
    }
    if (parts.length === 2 && parts[1] === 'node') {
      if (method !== 'GET') notAllowed('GET');
      const node = this.deps.node;
      if (node === undefined) throw new AgentError('not-found', 'this agent does not serve /v1/node');
      return { op: 'node', run: () => Promise.resolve({ status: 200, body: node() }) };
    }
    if (parts.length === 3 && parts[1] === 'cni' && parts[2] === 'exec') {
      const cni = this.deps.cni;
      if (cni === undefined) throw new AgentError('not-found', 'this agent does not run CNI invocations'); // the shim falls back on 404
      if (method === 'GET') return { op: 'cni-stats', run: () => Promise.resolve({ status: 200, body: cni.stats() }) };
      if (method === 'POST') return { op: 'cni-exec', run: () => this.cniExec(cni, req) };
      notAllowed('GET, POST');
    }
    if (parts[1] === 'endpoints' && parts.length === 2) {
      if (method === 'GET') return { op: 'list', run: () => Promise.resolve({ status: 200, body: { endpoints: this.deps.registry.list() } }) };
      if (method === 'POST') return { op: 'add', run: () => this.add(req) };
      notAllowed('GET, POST');
    }
    if (parts[1] === 'endpoints' && parts.length === 4) {
      const containerId = parts[2] ?? '';
      const ifname = parts[3] ?? '';
      checkPathParams(containerId, ifname);
      if (method === 'GET') return { op: 'get', run: () => Promise.resolve(this.get(containerId, ifname)) };
      if (method === 'DELETE') return { op: 'delete', run: () => this.delete(containerId, ifname) };
      notAllowed('GET, DELETE');
    }
    throw new AgentError('not-found', `no such path ${url.pathname}`);
  }

  private async add(req: IncomingMessage): Promise<Reply> {
    const body = await readJson(req);
    const v = validateEndpointSpec(body);
    if (!v.ok) throw new InvalidRequest(v.problems);
    const result = await this.deps.registry.add(v.value);
    if (result.changed) {
      this.deps.log.info(
        { endpointId: result.endpoint.endpointId, containerId: result.endpoint.containerId, pod: `${result.endpoint.podNamespace}/${result.endpoint.podName}`, ip: result.endpoint.ip },
        result.created ? 'endpoint registered' : 'endpoint updated',
      );
    }
    // Even an unchanged repeat waits: the first ADD may have timed out before its policy landed.
    await this.deps.syncEndpoints(result.created ? 'endpoint added' : 'endpoint re-added', true);
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

  private get(containerId: string, ifname: string): Reply {
    const e = this.deps.registry.get(containerId, ifname);
    if (e === undefined) throw new AgentError('not-found', `no endpoint ${containerId}/${ifname}`);
    return { status: 200, body: { endpoint: e } };
  }

  private async delete(containerId: string, ifname: string): Promise<Reply> {
    const removed = await this.deps.registry.delete(containerId, ifname);
    if (removed === undefined) return { status: 200, body: { deleted: false } };
    this.deps.log.info({ endpointId: removed.endpointId, containerId, pod: `${removed.podNamespace}/${removed.podName}` }, 'endpoint deleted');
    await this.deps.syncEndpoints('endpoint deleted', false);
    return { status: 200, body: { deleted: true, endpoint: removed } };
  }
}

function checkPathParams(containerId: string, ifname: string): void {
  const problems: FieldProblem[] = [];
  const c = checkContainerId(containerId);
  if (c !== undefined) problems.push({ field: 'containerId', message: c });
  const i = checkIfname(ifname);
  if (i !== undefined) problems.push({ field: 'ifname', message: i });
  if (problems.length > 0) throw new InvalidRequest(problems);
}

function readJson(req: IncomingMessage, maxBody = MAX_BODY): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    return Promise.reject(new AgentError('invalid-argument', `content-type must be application/json, got "${type}"`));
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
        reject(new AgentError('invalid-argument', `body larger than ${maxBody} bytes`));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(new AgentError('invalid-argument', `body is not valid JSON: ${asError(e).message}`));
      }
    });
  });
}

function errorReply(e: unknown): Reply {
  if (e instanceof AgentError) {
    const error: Record<string, unknown> = { code: e.code, message: e.message };
    if (e.field !== undefined) error['field'] = e.field;
    if (e instanceof InvalidRequest) error['problems'] = e.problems;
    return { status: STATUS_OF[e.code], body: { error } };
  }
  return { status: 500, body: { error: { code: 'internal', message: asError(e).message } } };
}
