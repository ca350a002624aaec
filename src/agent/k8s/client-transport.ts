/**
 * KubeTransport over @kubernetes/client-node: the KubeConfig supplies the
 * server URL and credentials (kubeconfig file or in-cluster service account;
 * tokens, client certs and exec plugins are re-applied per request so a
 * rotated token is picked up), Watch streams watch events. Lists are plain
 * GETs that keep the JSON raw: the informers strip objects down to the fields
 * Sluice reads, and the generated API classes would first build the whole
 * typed object only to throw most of it away.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { asError } from '../errors.js';
import {
  KubeApiError, statusToError, type KubeTransport, type ListPage, type Query, type WatchCallbacks, type WatchEvent,
  type WatchEventType, type WatchHandle,
} from './transport.js';

const WATCH_TYPES = new Set<string>(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

export interface ClientTransportOptions {
  /** Per list request (one page), ms. Default 60 s. */
  readonly listTimeoutMs?: number;
  /** Largest list response body accepted, bytes. Default 256 MiB. */
  readonly maxListBytes?: number;
}

export class ClientNodeTransport implements KubeTransport {
  private readonly watcher: Watch;
  private readonly listTimeoutMs: number;
  private readonly maxListBytes: number;

  constructor(
    private readonly kubeConfig: KubeConfig,
    options: ClientTransportOptions = {},
  ) {
    this.watcher = new Watch(kubeConfig);
    this.listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.maxListBytes = options.maxListBytes ?? 256 * 1024 * 1024;
  }

  /** The API server URL from the kubeconfig's current context. */
  server(): string {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (cluster === null) throw new KubeApiError(0, 'the kubeconfig has no current cluster');
    return cluster.server;
  }

  async list(path: string, query: Query): Promise<ListPage> {
    const url = new URL(this.server().replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const opts: RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const body = await this.get(url, opts);
    return parseListBody(body, path);
  }

  watch(path: string, query: Query, callbacks: WatchCallbacks): WatchHandle {
    let stopped = false;
    let controller: AbortController | undefined;
    const closeOnce = (err: Error | null): void => {
      if (stopped) return;
      stopped = true;
      controller?.abort();
      callbacks.onClose(err);
    };
    const onEvent = (type: string, object: unknown): void => {
      if (stopped) return;
      if (!WATCH_TYPES.has(type)) return; // a future event type: nothing we can act on
      const event: WatchEvent = { type: type as WatchEventType, object };
      callbacks.onEvent(event);
    };
    const onDone = (err: unknown): void => {
      closeOnce(err === null || err === undefined ? null : toTransportError(err, path));
    };
    this.watcher.watch(path, { ...query }, onEvent, onDone).then(
      (c) => {
        controller = c;
        if (stopped) c.abort();
      },
      (err: unknown) => closeOnce(toTransportError(err, path)),
    );
    return {
      stop: () => {
        stopped = true;
        controller?.abort();
      },
    };
  }

  private get(url: URL, opts: RequestOptions): Promise<string> {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers = { ...(opts.headers as Record<string, string> | undefined), accept: 'application/json' };
    return new Promise((resolve, reject) => {
      const req = send(url, { ...opts, method: 'GET', headers, timeout: this.listTimeoutMs }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxListBytes) {
            req.destroy(new KubeApiError(0, `GET ${url.pathname}: response larger than ${this.maxListBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            resolve(text);
            return;
          }
          reject(statusToError(tryJson(text), status, `GET ${url.pathname}`));
        });
      });
      req.on('timeout', () => req.destroy(new KubeApiError(0, `GET ${url.pathname}: no answer within ${this.listTimeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof KubeApiError ? e : new KubeApiError(0, `GET ${url.pathname}: ${e.message}`)));
      req.end();
    });
  }
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

/** client-node's Watch reports HTTP failures as Error with statusCode; keep the status. */
function toTransportError(err: unknown, path: string): Error {
  if (err instanceof KubeApiError) return err;
  const e = asError(err);
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number') return new KubeApiError(status, `watch ${path}: ${e.message}`);
  return new KubeApiError(0, `watch ${path}: ${e.message}`);
}
