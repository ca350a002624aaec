/**
 * The lab process's control socket (<lab>.d/control.sock): how a later
 * `sluice lab node add` or `sluice lab pod …` reaches the process that owns
 * the control plane, the agents and the pods (only it can start an agent that
 * dies with the lab, and only it keeps a terminating pod's grace timer). One
 * JSON request per connection, one JSON answer, then the connection closes.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { listenUnix } from '../../agent/endpoints/unix-socket.js';
import { LabError, asError } from '../errors.js';
import type { ServiceProxy } from './kube-proxy.js';

export interface NodeAddRequest {
  readonly op: 'node-add';
  readonly zone?: string;
  readonly pods?: readonly string[];
}

/** Ready or not ready, as a kubelet's readiness probe would report. */
export interface PodReadyRequest {
  readonly op: 'pod-ready';
  readonly pod: string;
  readonly ready: boolean;
}

/** A graceful delete: terminating for the grace period, then torn down. */
export interface PodDeleteRequest {
  readonly op: 'pod-delete';
  readonly pod: string;
  readonly gracePeriodSeconds: number;
}

/** Ends a terminating pod now. */
export interface PodFinishRequest {
  readonly op: 'pod-finish';
  readonly pod: string;
}

/** Hands Services over to another proxy on every node. */
export interface ProxyRequest {
  readonly op: 'proxy';
  readonly proxy: ServiceProxy;
}

export type ControlRequest = NodeAddRequest | PodReadyRequest | PodDeleteRequest | PodFinishRequest | ProxyRequest;

const OPS: ReadonlySet<string> = new Set<ControlRequest['op']>(['node-add', 'pod-ready', 'pod-delete', 'pod-finish', 'proxy']);

export interface ControlAnswer {
  readonly ok: boolean;
  readonly text: string;
}

export type ControlHandler = (req: ControlRequest) => Promise<string>;

/** Serves the socket until close(); requests run one at a time. */
export async function serveControl(path: string, handle: ControlHandler): Promise<Server> {
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((c) => {
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      const run = async (): Promise<ControlAnswer> => {
        try {
          const req = JSON.parse(line) as ControlRequest;
          if (!OPS.has(req.op)) return { ok: false, text: `unknown op ${JSON.stringify(req.op)}` };
          return { ok: true, text: await handle(req) };
        } catch (e) {
          return { ok: false, text: asError(e).message };
        }
      };
      const answer = queue.then(run);
      queue = answer;
      void answer.then((a) => c.end(`${JSON.stringify(a)}\n`));
    });
    c.on('error', () => undefined);
  });
  await listenUnix(server, path, 'controlSocket');
  return server;
}

/** Sends one request to a lab process and returns its answer's text; throws its error. */
export function controlRequest(path: string, req: ControlRequest, timeoutMs = 180_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ path });
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new LabError('setup-failed', `no answer from the lab process on ${path} within ${timeoutMs} ms`, 'control'));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify(req)}\n`));
    c.on('data', (d: string) => (buf += d));
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(new LabError('not-found', `cannot reach the lab process on ${path}: ${e.message}`, 'control'));
    });
    c.on('close', () => {
      clearTimeout(timer);
      try {
        const a = JSON.parse(buf) as ControlAnswer;
        if (a.ok) resolve(a.text);
        else reject(new LabError('setup-failed', a.text, 'control'));
      } catch {
        reject(new LabError('setup-failed', `the lab process answered nothing readable on ${path}`, 'control'));
      }
    });
  });
}
