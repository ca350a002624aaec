/**
 * KubeTransport over node:http(s): lists are paginated GETs, watches are
 * GETs with ?watch=true whose body is a stream of JSON lines (one watch
 * event each). Objects stay raw JSON: the informers strip them down to the
 * fields Sluice reads (resources.ts). The address and credentials come from
 * an ApiAccess (credentials.ts), asked afresh for every request, so a
 * rotated token is picked up; a 401 tells it to fetch a plugin's credential
 * again.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import { asError } from '../errors.js';
import type { ApiAccess } from './access.js';
import {
  KubeApiError, statusToError, type KubeTransport, type ListPage, type Query, type WatchCallbacks, type WatchEventType, type WatchHandle,
} from './transport.js';

const WATCH_TYPES = new Set<string>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

export interface ApiTransportOptions {
  /** Per list request (one page), ms. Default 60 s. */
  readonly listTimeoutMs?: number;
  /** Largest list response body accepted, bytes. Default 256 MiB. */
  readonly maxListBytes?: number;
}

export class ApiServerTransport implements KubeTransport {
  private readonly listTimeoutMs: number;
  private readonly maxListBytes: number;

  constructor(
    private readonly access: ApiAccess,
    options: ApiTransportOptions = {},
  ) {
    this.listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.maxListBytes = options.maxListBytes ?? 256 * 1024 * 1024;
  }

  /** The API server URL. */
  server(): string {
    return this.access.server;
  }

  async list(path: string, query: Query): Promise<ListPage> {
    const url = this.url(path, query);
    const opts = await this.options(`GET ${path}`);
    const body = await this.get(url, opts);
    return parseListBody(body, path);
  }

  watch(path: string, query: Query, callbacks: WatchCallbacks): WatchHandle {
    const what = `watch ${path}`;
    let stopped = false;
    let req: ClientRequest | undefined;
    const close = (err: Error | null): void => {
      if (stopped) return;
      stopped = true;
      req?.destroy();
      callbacks.onClose(err);
    };
    const onResponse = (res: IncomingMessage): void => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        if (status === 401) this.access.unauthorized();
        readBody(res, 64 * 1024).then(
          (text) => close(statusToError(tryJson(text), status, what)),
          (e: unknown) => close(new KubeApiError(status, `${what}: HTTP ${status}: ${asError(e).message}`)),
        );
        return;
      }
      const decoder = new StringDecoder('utf8');
      let pending = '';
      res.on('data', (chunk: Buffer) => {
        const text = pending + decoder.write(chunk);
        let from = 0;
        for (let nl = text.indexOf('\n'); nl >= 0 && !stopped; nl = text.indexOf('\n', from)) {
          const line = text.slice(from, nl);
          from = nl + 1;
          if (line.trim() !== '') this.deliver(line, what, callbacks, close);
        }
        pending = text.slice(from);
      });
      res.on('end', () => close(null));
      // A connection cut mid-stream: 'close' without 'end' (and sometimes an 'error' first).
      res.on('error', (e) => close(new KubeApiError(0, `${what}: ${e.message}`)));
      res.on('close', () => {
        if (!res.complete) close(new KubeApiError(0, `${what}: the connection closed mid-stream`));
      });
    };
    this.options(what).then(
      (opts) => {
        if (stopped) return;
        const url = this.url(path, { ...query, watch: 'true' });
        const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
        req = send(url, { ...opts, method: 'GET' }, onResponse);
        req.on('error', (e) => close(new KubeApiError(0, `${what}: ${e.message}`)));
        req.end();
      },
      (e: unknown) => close(asError(e)),
    );
    return {
      stop: () => {
        stopped = true;
        req?.destroy();
      },
    };
  }

  /** One watch line: an event goes to the callbacks; a line that is not one ends the watch. */
  private deliver(line: string, what: string, callbacks: WatchCallbacks, close: (err: Error | null) => void): void {
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      close(new KubeApiError(0, `${what}: a watch line is not JSON: ${line.slice(0, 100)}`));
      return;
    }
    const type = (event as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !WATCH_TYPES.has(type)) return; // a future event type: nothing we can act on
    callbacks.onEvent({ type: type as WatchEventType, object: (event as { object?: unknown }).object });
  }

  private url(path: string, query: Query): URL {
    const url = new URL(this.access.server + path);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }

  /** The request options with credentials; a credential that cannot be had is a KubeApiError with status 0. */
  private async options(what: string): Promise<RequestOptions> {
    try {
      const o = await this.access.requestOptions();
      return { ...o, headers: { ...o.headers, accept: 'application/json' } };
    } catch (e) {
      throw new KubeApiError(0, `${what}: credentials: ${asError(e).message}`);
    }
  }

  private get(url: URL, opts: RequestOptions): Promise<string> {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { ...opts, method: 'GET', timeout: this.listTimeoutMs }, (res: IncomingMessage) => {
        readBody(res, this.maxListBytes).then(
          (text) => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve(text);
              return;
            }
            if (status === 401) this.access.unauthorized();
            reject(statusToError(tryJson(text), status, `GET ${url.pathname}`));
          },
          (e: unknown) => {
            req.destroy();
            reject(e instanceof KubeApiError ? e : new KubeApiError(0, `GET ${url.pathname}: ${asError(e).message}`));
          },
        );
      });
      req.on('timeout', () => req.destroy(new KubeApiError(0, `GET ${url.pathname}: no answer within ${this.listTimeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof KubeApiError ? e : new KubeApiError(0, `GET ${url.pathname}: ${e.message}`)));
      req.end();
    });
  }
}

/** The whole body as text; rejects once it passes `maxBytes`. */
function readBody(res: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy();
        reject(new KubeApiError(0, `response larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('error', reject);
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { message: text.slice(0, 200) };
  }
}

function parseListBody(text: string, path: string): ListPage {
  const body = tryJson(text);
  if (typeof body !== 'object' || body === null) throw new KubeApiError(0, `GET ${path}: the list response is not a JSON object`);
  const b = body as Record<string, unknown>;
  const items = b['items'];
  const meta = (typeof b['metadata'] === 'object' && b['metadata'] !== null ? b['metadata'] : {}) as Record<string, unknown>;
  const rv = meta['resourceVersion'];
  if (items !== null && items !== undefined && !Array.isArray(items)) {
    throw new KubeApiError(0, `GET ${path}: "items" is not a list`);
  }
  if (typeof rv !== 'string' || rv === '') throw new KubeApiError(0, `GET ${path}: the list has no metadata.resourceVersion`);
  const cont = meta['continue'];
  const page: ListPage = { items: (items ?? []) as unknown[], resourceVersion: rv };
  return typeof cont === 'string' && cont !== '' ? { ...page, continueToken: cont } : page;
}
