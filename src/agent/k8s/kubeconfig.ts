/**
 * The API server's address and credentials for the agent: from a
 * kubeconfig file, or the in-cluster service account, as
 * @kubernetes/client-node's KubeConfig reads them — in a helper process
 * (kubeconfig-helper.ts), so that the agent never loads client-node, whose
 * generated API costs about 27 MiB of RSS for the agent's whole life.
 *
 * Resolved once at start (synchronously: a config that cannot be used is a
 * config error, exit 2) and again, asynchronously, after the server answers
 * 401: an in-cluster token was rotated, an exec plugin's credential expired.
 * One resolution at a time; requests meanwhile wait for it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError, asError } from '../errors.js';
import type { ApiAccess, ApiRequestOptions } from './access.js';

export interface KubeConfigSource {
  readonly kubeconfig?: string;
  readonly inCluster?: boolean;
}

/** What the helper prints: binary fields in base64. */
export interface ResolvedAccess {
  readonly server: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly rejectUnauthorized: boolean;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly servername?: string;
}

const HELPER = fileURLToPath(new URL('./kubeconfig-helper.js', import.meta.url));
/** A resolution that takes longer (an exec plugin that hangs) fails. */
const HELPER_TIMEOUT_MS = 30_000;

/** The API access of the agent's config. Throws AgentError 'invalid-config' naming `kubeconfig` or `inCluster`. */
export function loadKubeConfig(source: KubeConfigSource): ApiAccess {
  const field = source.kubeconfig !== undefined ? 'kubeconfig' : 'inCluster';
  const what = source.kubeconfig ?? 'the in-cluster config';
  const args = helperArgs(source);
  if (args === undefined) throw new AgentError('invalid-config', 'neither a kubeconfig nor in-cluster config was given', field);
  const r = spawnSync(process.execPath, [HELPER, ...args], { encoding: 'utf8', timeout: HELPER_TIMEOUT_MS });
  try {
    return new HelperAccess(args, parseResolved(r.status, r.stdout, r.stderr, r.error));
  } catch (e) {
    throw new AgentError('invalid-config', `${field}: cannot load ${what}: ${asError(e).message}`, field, { cause: e });
  }
}

function helperArgs(source: KubeConfigSource): string[] | undefined {
  if (source.kubeconfig !== undefined) return ['--kubeconfig', resolve(source.kubeconfig)];
  if (source.inCluster === true) return ['--in-cluster'];
  return undefined;
}

function parseResolved(status: number | null, stdout: string, stderr: string, error: Error | undefined): ResolvedAccess {
  if (error !== undefined) throw error;
  if (status !== 0) throw new Error(stderr.trim() || `the kubeconfig helper exited ${String(status)}`);
  const doc = JSON.parse(stdout) as Partial<ResolvedAccess>;
  if (typeof doc.server !== 'string' || typeof doc.headers !== 'object' || typeof doc.rejectUnauthorized !== 'boolean') {
    throw new Error(`the kubeconfig helper printed no server and credentials: ${stdout.slice(0, 200)}`);
  }
  return doc as ResolvedAccess;
}

function requestOptionsOf(r: ResolvedAccess): ApiRequestOptions {
  const b = (v: string | undefined): Buffer | undefined => (v === undefined ? undefined : Buffer.from(v, 'base64'));
  const ca = b(r.ca);
  const cert = b(r.cert);
  const key = b(r.key);
  return {
    headers: r.headers,
    rejectUnauthorized: r.rejectUnauthorized,
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(r.servername !== undefined ? { servername: r.servername } : {}),
  };
}

class HelperAccess implements ApiAccess {
  readonly server: string;
  private current: ApiRequestOptions;
  private stale = false;
  private pending: Promise<ApiRequestOptions> | undefined;

  constructor(private readonly args: readonly string[], first: ResolvedAccess) {
    this.server = first.server;
    this.current = requestOptionsOf(first);
  }

  requestOptions(): Promise<ApiRequestOptions> {
    if (!this.stale) return Promise.resolve(this.current);
    this.pending ??= this.resolveAgain().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  unauthorized(): void {
    this.stale = true;
  }

  private resolveAgain(): Promise<ApiRequestOptions> {
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [HELPER, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: HELPER_TIMEOUT_MS });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', fail);
      child.on('close', (code) => {
        try {
          const r = parseResolved(code, out, err, undefined);
          this.current = requestOptionsOf(r);
          this.stale = false;
          done(this.current);
        } catch (e) {
          fail(new Error(`credentials for ${this.server}: ${asError(e).message}`, { cause: e }));
        }
      });
    });
  }
}
