/**
 * The TLS options and headers of one request to the API server, from an
 * endpoint (kubeconfig.ts). Applied afresh to every request: token files
 * and CA/certificate files are read again (an in-cluster token is rotated
 * while the agent runs), and an exec plugin's credential is kept until it
 * expires (10 s ahead) or the server answers 401, then fetched again — one
 * plugin run at a time, shared by the requests waiting for it.
 */
import { readFileSync } from 'node:fs';
import { execInfo, parseExecCredential, runExecPlugin, type ExecCredential } from './exec-credential.js';
import type { ApiEndpoint, ExecPlugin, FileOrData } from './api-endpoint.js';

export interface ApiRequestOptions {
  readonly headers: Readonly<Record<string, string>>;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly rejectUnauthorized: boolean;
  readonly servername?: string;
}

/** What the transport needs of the API server's address and credentials. */
export interface ApiAccess {
  /** The server URL, without a trailing slash. */
  readonly server: string;
  /** TLS options and headers for one request, with credentials that are valid now. */
  requestOptions(): Promise<ApiRequestOptions>;
  /** The server answered 401: a plugin's credential is fetched again for the next request. */
  unauthorized(): void;
}

export interface CredentialDeps {
  readFile(path: string): Buffer;
  /** Runs an exec plugin with KUBERNETES_EXEC_INFO = `info`; resolves with its stdout. */
  runPlugin(plugin: ExecPlugin, info: string): Promise<string>;
  /** ms since the epoch. */
  now(): number;
}

const DEFAULT_DEPS: CredentialDeps = { readFile: (p) => readFileSync(p), runPlugin: runExecPlugin, now: Date.now };

/** Refresh a plugin's credential this long before it expires. */
const EXPIRY_MARGIN_MS = 10_000;

export class ApiCredentials implements ApiAccess {
  private readonly deps: CredentialDeps;
  private cached: ExecCredential | undefined;
  private pending: Promise<ExecCredential> | undefined;

  constructor(
    readonly endpoint: ApiEndpoint,
    deps: Partial<CredentialDeps> = {},
  ) {
    this.deps = { ...DEFAULT_DEPS, ...deps };
  }

  get server(): string {
    return this.endpoint.server;
  }

  async requestOptions(): Promise<ApiRequestOptions> {
    const e = this.endpoint;
    const ca = e.ca === undefined ? undefined : this.read(e.ca);
    let cert = e.user.clientCert === undefined ? undefined : { cert: this.read(e.user.clientCert.cert), key: this.read(e.user.clientCert.key) };
    const headers: Record<string, string> = {};
    const credential = e.user.credential;
    if (credential?.kind === 'token') headers['authorization'] = `Bearer ${credential.token}`;
    else if (credential?.kind === 'token-file') headers['authorization'] = `Bearer ${this.deps.readFile(credential.file).toString('utf8').trim()}`;
    else if (credential?.kind === 'basic') headers['authorization'] = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    else if (credential?.kind === 'exec') {
      const fromPlugin = await this.pluginCredential(credential.plugin, ca);
      if (fromPlugin.token !== undefined) headers['authorization'] = `Bearer ${fromPlugin.token}`;
      cert = fromPlugin.clientCert ?? cert;
    }
    return {
      headers,
      rejectUnauthorized: !e.insecureSkipTlsVerify,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : cert),
      ...(e.tlsServerName === undefined ? {} : { servername: e.tlsServerName }),
    };
  }

  unauthorized(): void {
    this.cached = undefined;
  }

  private read(source: FileOrData): Buffer {
    return 'data' in source ? source.data : this.deps.readFile(source.file);
  }

  private pluginCredential(plugin: ExecPlugin, ca: Buffer | undefined): Promise<ExecCredential> {
    const c = this.cached;
    if (c !== undefined && (c.expiresAt === undefined || this.deps.now() < c.expiresAt - EXPIRY_MARGIN_MS)) return Promise.resolve(c);
    this.pending ??= this.deps.runPlugin(plugin, execInfo(plugin, this.endpoint, ca))
      .then((stdout) => {
        const fresh = parseExecCredential(stdout, plugin.apiVersion);
        this.cached = fresh;
        return fresh;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}
