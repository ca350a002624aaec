/**
 * bench/lb's writes to the API server: the lab's Services and EndpointSlices
 * straight over HTTPS (keep-alive, several requests in flight), because
 * 10,000 Services and their slices through kubectl, one request after the
 * other, take minutes. Errors are typed values with the HTTP status.
 */
import { Agent, request } from 'node:https';

export interface ApiTarget {
  /** https://host:port */
  readonly server: string;
  readonly caPem: string;
  readonly token: string;
}

export class ApiRequestError extends Error {
  constructor(readonly code: 'http-status' | 'transport', readonly status: number, message: string) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

export type JsonObject = Record<string, unknown>;

export class BenchApi {
  private readonly agent: Agent;

  constructor(private readonly target: ApiTarget, maxSockets = 16) {
    this.agent = new Agent({ keepAlive: true, maxSockets, ca: target.caPem });
  }

  /** One request; resolves with the parsed JSON answer of a 2xx, rejects with ApiRequestError otherwise. */
  send(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<JsonObject> {
    const url = new URL(path, this.target.server);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method,
        agent: this.agent,
        headers: {
          authorization: `Bearer ${this.target.token}`,
          accept: 'application/json',
          ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': String(data.length) } : {}),
        },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new ApiRequestError('http-status', status, `${method} ${url.pathname}: HTTP ${status}: ${text.slice(0, 300)}`));
            return;
          }
          resolve(text === '' ? {} : (JSON.parse(text) as JsonObject));
        });
        res.on('error', (e) => reject(new ApiRequestError('transport', 0, `${method} ${url.pathname}: ${e.message}`)));
      });
      req.on('error', (e) => reject(new ApiRequestError('transport', 0, `${method} ${url.pathname}: ${e.message}`)));
      req.end(data);
    });
  }

  /** Runs `jobs` with at most `inFlight` at a time; resolves with their results in order. */
  async all<T>(jobs: readonly (() => Promise<T>)[], inFlight = 16): Promise<T[]> {
    const out: T[] = new Array<T>(jobs.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < jobs.length; i = next++) {
        const job = jobs[i];
        if (job !== undefined) out[i] = await job();
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, jobs.length) }, worker));
    return out;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The Service bench/lb makes: selector-less ClusterIP, port 80 → 8080. */
export function benchService(name: string, namespace: string): JsonObject {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels: { 'sluice.io/bench': 'lb' } },
    spec: { type: 'ClusterIP', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] },
  };
}

/** Its hand-made EndpointSlice: the given backends on 8080, ready. */
export function benchSlice(service: string, namespace: string, backends: readonly { readonly ip: string; readonly node: string }[], name = `${service}-1`): JsonObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'bench.sluice.io' } },
    addressType: 'IPv4',
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: backends.map((b) => ({ addresses: [b.ip], conditions: { ready: true, serving: true, terminating: false }, nodeName: b.node })),
  };
}
