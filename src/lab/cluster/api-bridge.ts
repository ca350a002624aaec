/**
 * The API server for processes in the lab's node netns (the agent), which
 * cannot reach the root netns' loopback where kube-apiserver listens, and
 * must not get a route to it (nothing of the lab is routed in the root
 * netns). Two byte pipes, joined by a unix socket (a path crosses network
 * namespaces, an address does not):
 *
 *   node netns  127.0.0.1:<port>  forwarder process (api-forwarder.ts)
 *                    │ every connection, byte for byte
 *   root netns  <lab dir>/api.sock  this process  →  127.0.0.1:<port>  kube-apiserver
 *
 * The forwarder listens on the address the kubeconfig names, so the same
 * kubeconfig works on both sides and TLS passes through untouched. Each
 * connection dials the API server anew: a restarted apiserver on the same
 * port is reached without restarting the bridge. The forwarder is a
 * ManagedProcess (dies with this process, even on SIGKILL), started through
 * `nsenter --net` (which execs: the pid is node's).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { listenUnix } from '../../agent/endpoints/unix-socket.js';
import { ManagedProcess } from '../controlplane/process.js';
import { waitReady } from '../controlplane/readiness.js';
import { LabError } from '../errors.js';

/** What the forwarder prints once it listens (its readiness signal). */
export const FORWARDER_READY = 'api-forwarder listening';

/** A server that pipes every connection it accepts to a fresh `upstream()` connection, both ways. */
export function pipeServer(upstream: () => Socket): Server {
  return createServer((down) => {
    const up = upstream();
    down.pipe(up).pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
}

export interface ApiBridgeConfig {
  /** The API server's https://host:port, as the kubeconfig names it. */
  readonly server: string;
  /** Path of the node netns (/var/run/netns/<name>). */
  readonly netns: string;
  /** The unix socket joining both sides. */
  readonly socket: string;
  /** The forwarder's output. */
  readonly logFile: string;
  readonly readyTimeoutMs?: number;
}

export class ApiBridge {
  private constructor(
    private readonly socketServer: Server,
    private readonly open: Set<Socket>,
    private readonly forwarder: ManagedProcess,
  ) {}

  /** Listens on the socket, starts the forwarder in the netns, and resolves once it listens; undoes both on failure. */
  static async start(config: ApiBridgeConfig): Promise<ApiBridge> {
    const { hostname, port } = new URL(config.server);
    const host = hostname.replace(/^\[|\]$/g, '');
    if (port === '') throw new LabError('setup-failed', `API server ${config.server} names no port`, 'api bridge');
    const server = pipeServer(() => connect(Number(port), host));
    const open = new Set<Socket>();
    server.on('connection', (c: Socket) => {
      open.add(c);
      c.once('close', () => open.delete(c));
    });
    await listenUnix(server, config.socket, 'apiBridge');
    let forwarder: ManagedProcess;
    try {
      forwarder = ManagedProcess.start({
        name: 'api-forwarder',
        file: 'nsenter',
        args: [`--net=${config.netns}`, process.execPath, forwarderScript(), '--listen', `${host}:${port}`, '--to', config.socket],
        logFile: config.logFile,
      });
    } catch (e) {
      server.close();
      throw e;
    }
    const bridge = new ApiBridge(server, open, forwarder);
    try {
      await waitReady({
        component: 'api-forwarder',
        process: forwarder,
        deadlineMs: config.readyTimeoutMs ?? 10_000,
        intervalMs: 20,
        check: () => Promise.resolve(forwarder.tail(5).includes(FORWARDER_READY) ? undefined : 'not listening yet'),
      });
    } catch (e) {
      await bridge.stop();
      throw e;
    }
    return bridge;
  }

  /** The forwarder's pid (in the node netns). */
  get pid(): number | undefined {
    return this.forwarder.running ? this.forwarder.pid : undefined;
  }

  /** Stops the forwarder, cuts open connections and removes the socket. Idempotent. */
  async stop(): Promise<void> {
    await this.forwarder.stop(2000);
    const s = this.socketServer;
    if (!s.listening) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const c of this.open) c.destroy();
    await closed;
  }
}

/** The forwarder's script, beside this module (src/ or dist/ alike). */
function forwarderScript(): string {
  return fileURLToPath(new URL('./api-forwarder.js', import.meta.url));
}
