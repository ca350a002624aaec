/**
 * A minimal API server over real HTTP for transport and end-to-end tests of
 * the agent binary where the real kube-apiserver is not needed: cluster-wide
 * list (with limit/continue) and watch (chunked JSON lines, bookmarks-free)
 * for any path, bearer-token auth, a history of events per path, and
 * "compaction" that expires old resourceVersions (410) like etcd does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';

interface Stored {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Record<string, unknown>;
}

interface OpenWatch {
  readonly path: string;
  readonly res: ServerResponse;
}

export class FakeApiServer {
  readonly token = 'test-token-123';
  private server: Server | undefined;
  private port = 0;
  private rv = 100;
  private compactedBelow = 0;
  private readonly objects = new Map<string, Map<string, Record<string, unknown>>>();
  private readonly history: (Stored & { path: string })[] = [];
  private readonly watches = new Set<OpenWatch>();
  /** Requests seen, "METHOD path?query". */
  readonly requests: string[] = [];
  /** When set, every request gets this status (an API server in trouble). */
  failWith: number | undefined;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Open watch streams per path. */
  watching(path: string): number {
    return [...this.watches].filter((w) => w.path === path).length;
  }

  async start(port = this.port): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops serving (open watches are cut); start() again resumes on the same port with the same data. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const w of this.watches) w.res.destroy();
    this.watches.clear();
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  writeKubeconfig(file: string): void {
    const doc = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url } }],
      users: [{ name: 'u', user: { token: this.token } }],
      contexts: [{ name: 'c', context: { cluster: 'fake', user: 'u' } }],
      'current-context': 'c',
    };
    writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
  }

  /** Creates or replaces an object (ADDED/MODIFIED) under a list path, e.g. "/api/v1/pods". */
  put(path: string, object: Record<string, unknown>): number {
    const meta = (object['metadata'] ?? {}) as Record<string, unknown>;
    const name = meta['name'];
    if (typeof name !== 'string') throw new Error('put: metadata.name must be a string');
    const key = `${typeof meta['namespace'] === 'string' ? meta['namespace'] : ''}/${name}`;
    const store = this.objects.get(path) ?? new Map<string, Record<string, unknown>>();
    this.objects.set(path, store);
    const type = store.has(key) ? 'MODIFIED' : 'ADDED';
    return this.record(path, type, key, object);
  }

  delete(path: string, namespace: string | undefined, name: string): number {
    const key = `${namespace ?? ''}/${name}`;
    const obj = this.objects.get(path)?.get(key);
    if (obj === undefined) throw new Error(`no ${key} under ${path}`);
    return this.record(path, 'DELETED', key, obj);
  }

  /** Forgets history: watches from an older resourceVersion get 410; open ones are told so and closed. */
  compact(): void {
    this.compactedBelow = this.rv + 1;
    for (const w of [...this.watches]) {
      writeEvent(w.res, { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' } });
      w.res.end();
      this.watches.delete(w);
    }
  }

  private record(path: string, type: Stored['type'], key: string, object: Record<string, unknown>): number {
    const rv = ++this.rv;
    const meta = { ...((object['metadata'] ?? {}) as Record<string, unknown>), resourceVersion: String(rv) };
    const stored = { ...object, metadata: meta };
    const store = this.objects.get(path) ?? new Map<string, Record<string, unknown>>();
    this.objects.set(path, store);
    if (type === 'DELETED') store.delete(key);
    else store.set(key, stored);
    this.history.push({ path, rv, type, object: stored });
    for (const w of this.watches) if (w.path === path) writeEvent(w.res, { type, object: stored });
    return rv;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method ?? ''} ${url.pathname}${url.search}`);
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      sendStatus(res, 401, 'Unauthorized', 'no valid bearer token');
      return;
    }
    if (this.failWith !== undefined) {
      sendStatus(res, this.failWith, 'InternalError', 'the fake API server was told to fail');
      return;
    }
    if (url.searchParams.get('watch') === 'true') this.watch(url, res);
    else this.list(url, res);
  }

  private list(url: URL, res: ServerResponse): void {
    const all = [...(this.objects.get(url.pathname)?.values() ?? [])];
    const limit = Number(url.searchParams.get('limit') ?? '0');
    const start = Number(url.searchParams.get('continue') ?? '0');
    const items = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const more = limit > 0 && start + limit < all.length;
    const metadata: Record<string, string> = { resourceVersion: String(this.rv) };
    if (more) metadata['continue'] = String(start + limit);
    const body = JSON.stringify({ kind: 'List', apiVersion: 'v1', metadata, items });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  }

  private watch(url: URL, res: ServerResponse): void {
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    if (from < this.compactedBelow - 1) {
      // What kube-apiserver does for a version older than its window: a 200 stream with one ERROR event.
      res.writeHead(200, { 'content-type': 'application/json' });
      writeEvent(res, { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: `too old resource version: ${from} (${this.compactedBelow})` } });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    for (const e of this.history) if (e.path === url.pathname && e.rv > from) writeEvent(res, { type: e.type, object: e.object });
    const w: OpenWatch = { path: url.pathname, res };
    this.watches.add(w);
    res.on('close', () => this.watches.delete(w));
  }
}

function writeEvent(res: ServerResponse, event: unknown): void {
  res.write(`${JSON.stringify(event)}\n`);
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }));
}
