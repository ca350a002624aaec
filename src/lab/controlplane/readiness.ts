/**
 * Waiting for a component to become ready: poll a health endpoint until it
 * answers 200, give up at a deadline, and fail at once if the process exits.
 * Failures name the component, the last reason it was not ready and the last
 * lines it printed, which is usually the actual cause (a bad flag, a port in
 * use, etcd unreachable).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlPlaneError, asError } from './errors.js';
import { describeExit, type ManagedProcess } from './process.js';

export interface HttpProbe {
  readonly url: string;
  /** PEM bundle to verify an https server with. */
  readonly ca?: string;
  /** Skip certificate verification (only for a loopback health port whose cert nobody else uses). */
  readonly insecure?: boolean;
  readonly token?: string;
  readonly timeoutMs?: number;
  /** Connect to this unix socket instead of the url's host (the url still gives the path). */
  readonly socketPath?: string;
  /** The body is cut after this many characters (default 64 KiB). */
  readonly maxBody?: number;
}

export interface HttpResult {
  readonly status: number;
  readonly body: string;
}

/** One GET; resolves with status and body (capped at maxBody), rejects on network errors. */
export function httpGet(probe: HttpProbe): Promise<HttpResult> {
  const url = new URL(probe.url);
  const headers: Record<string, string> = {};
  if (probe.token !== undefined) headers.authorization = `Bearer ${probe.token}`;
  const timeout = probe.timeoutMs ?? 2000;
  const maxBody = probe.maxBody ?? 65536;
  const via = probe.socketPath !== undefined ? { socketPath: probe.socketPath } : {};
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < maxBody) body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, {
            headers,
            timeout,
            ...via,
            ...(probe.ca !== undefined ? { ca: probe.ca } : {}),
            rejectUnauthorized: probe.insecure !== true,
          }, onResponse)
        : httpRequest(url, { headers, timeout, ...via }, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer from ${probe.url} within ${timeout} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A check that is ready when `probe` answers 200; otherwise returns why not. */
export function httpOk(probe: HttpProbe): () => Promise<string | undefined> {
  return async () => {
    try {
      const r = await httpGet(probe);
      return r.status === 200 ? undefined : `GET ${probe.url}: HTTP ${r.status} ${r.body.trim().slice(0, 500)}`;
    } catch (e) {
      return `GET ${probe.url}: ${asError(e).message}`;
    }
  };
}

export interface WaitOptions {
  readonly component: string;
  /** Resolves undefined when ready, or a reason why not yet. */
  readonly check: () => Promise<string | undefined>;
  readonly deadlineMs: number;
  readonly intervalMs?: number;
  /** Fail fast (and show its output) if this process exits while waiting. */
  readonly process?: ManagedProcess;
}

/** Polls until ready; returns the milliseconds it took. */
export async function waitReady(opts: WaitOptions): Promise<number> {
  const start = performance.now();
  const interval = opts.intervalMs ?? 100;
  let reason = 'not checked yet';
  const output = (): string => (opts.process ? `\n--- last lines of ${opts.component} ---\n${opts.process.tail(25)}` : '');
  for (;;) {
    const exited = opts.process?.exitStatus;
    if (exited) {
      throw new ControlPlaneError('exited', `${opts.component} ${describeExit(exited)} before it was ready${output()}`, opts.component);
    }
    const r = await opts.check();
    if (r === undefined) return performance.now() - start;
    reason = r;
    if (performance.now() - start > opts.deadlineMs) {
      throw new ControlPlaneError(
        'not-ready',
        `${opts.component} not ready after ${opts.deadlineMs} ms: ${reason}${output()}`,
        opts.component,
      );
    }
    await sleep(interval);
  }
}
