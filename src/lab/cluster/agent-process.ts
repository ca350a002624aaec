/**
 * The real sluice-agent (bin entry "sluice-agent", --datapath bpf) for a
 * cluster lab: started as a ManagedProcess (so it dies with whoever owns the
 * lab, even on SIGKILL), inside the lab's node netns when told (`nsenter
 * --net`, which execs: the pid is the agent's), ready when its /readyz
 * answers 200. Its HTTP endpoint is a unix socket (`--http-listen unix:…`):
 * a path reaches into the node netns, a loopback port would not. The lab can
 * stop it, kill it with SIGKILL and start it again with the same flags: the
 * agent's restart path (pinned maps, persisted endpoints) under test.
 */
import { writeFile } from 'node:fs/promises';
import { ManagedProcess } from '../controlplane/process.js';
import { httpGet, httpOk, waitReady, type HttpResult } from '../controlplane/readiness.js';
import { LabError } from '../errors.js';
import { binEntry } from './bin-entries.js';

export interface AgentConfig {
  readonly kubeconfig: string;
  readonly nodeName: string;
  readonly pinDir: string;
  readonly stateDir: string;
  readonly endpointSocket: string;
  /** The unix socket of the flow API (Hubble's Observer). */
  readonly flowsSocket?: string;
  /** The unix socket of /healthz, /readyz, /metrics. */
  readonly httpSocket: string;
  /** Path of the netns the agent runs in (undefined: this process's own). */
  readonly netns?: string;
  readonly logFile: string;
  readonly logLevel?: string;
  /** `--map-size NAME=N` each (absent: the agent's defaults). */
  readonly mapSizes?: Readonly<Record<string, number>>;
  readonly readyTimeoutMs?: number;
  /**
   * The CNI's IPAM dir, where the agent's endpoint sweep releases addresses
   * (the host veths are in the agent's own netns). Written to a config file,
   * since the agent has no flag for it.
   */
  readonly sweep?: { readonly ipamDataDir: string; readonly configFile: string };
  /** The agent's `routing` (written to the same config file): how it reaches the other nodes' pods. */
  readonly routing?: { readonly mode: RoutingMode; readonly device: string };
  /** The agent's `hostRouting` (same config file); absent: the agent's default (bpf). */
  readonly hostRouting?: HostRouting;
  /** The agent's `lb.enabled` (same config file): false when another proxy implements Services; absent: the agent's default (true). */
  readonly lbEnabled?: boolean;
}

/** What the agent's config file says about the node's Service proxy (the lab derives it from the proxy it runs). */
export interface ProxySettings {
  readonly hostRouting: HostRouting;
  readonly lbEnabled: boolean;
}

/** Who forwards pod traffic on the node (the agent's config `hostRouting`, src/agent/config.ts). */
export type HostRouting = 'bpf' | 'kernel';

/** The agent's routing modes (src/agent/config.ts). */
export type RoutingMode = 'native' | 'vxlan';

export class AgentProcess {
  private proc: ManagedProcess | undefined;
  private hostRouting: HostRouting | undefined;
  private lbEnabled: boolean | undefined;

  constructor(readonly config: AgentConfig) {
    this.hostRouting = config.hostRouting;
    this.lbEnabled = config.lbEnabled;
  }

  /** The hostRouting and lb.enabled the next start writes (a running agent keeps its own until restarted). */
  setProxySettings(settings: ProxySettings): void {
    this.hostRouting = settings.hostRouting;
    this.lbEnabled = settings.lbEnabled;
  }

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** A command a user can run for one of the agent's HTTP paths ("/readyz"). */
  curl(path: string): string {
    return `curl --unix-socket ${this.config.httpSocket} http://agent${path}`;
  }

  /** GET of /healthz, /readyz, /metrics… over the agent's HTTP socket (body up to 16 MiB); rejects when nobody answers. */
  get(path: string, timeoutMs = 5000): Promise<HttpResult> {
    return httpGet({ url: `http://agent${path}`, socketPath: this.config.httpSocket, timeoutMs, maxBody: 16 << 20 });
  }

  /**
   * Starts the agent and (unless wait is false: e.g. while the API server is
   * down) waits for /readyz; returns the milliseconds that took.
   */
  async start(opts: { readonly wait?: boolean } = {}): Promise<number> {
    if (this.proc?.running) throw new LabError('setup-failed', 'the agent is running already', 'agent');
    const c = this.config;
    if (c.sweep !== undefined) {
      const { configFile, ...sweep } = c.sweep;
      const routing = c.routing !== undefined ? { routing: c.routing } : {};
      const hostRouting = this.hostRouting !== undefined ? { hostRouting: this.hostRouting } : {};
      // In the node's own namespace, as the chart on a real node: kube-proxy's two ports where it runs none.
      const ports = c.netns !== undefined && this.lbEnabled !== false ? { healthzListen: '0.0.0.0:10256', statusListen: '127.0.0.1:10249' } : {};
      const lb = this.lbEnabled !== undefined ? { lb: { enabled: this.lbEnabled, ...ports } } : { lb: ports };
      await writeFile(configFile, `${JSON.stringify({ sweep, ...routing, ...hostRouting, ...lb }, null, 2)}\n`, { mode: 0o600 });
    }
    this.proc = ManagedProcess.start({
      name: 'sluice-agent',
      file: c.netns !== undefined ? 'nsenter' : process.execPath,
      args: [
        ...(c.netns !== undefined ? [`--net=${c.netns}`, process.execPath] : []),
        binEntry('sluice-agent'), '--datapath', 'bpf', '--kubeconfig', c.kubeconfig, '--node-name', c.nodeName,
        '--pin-dir', c.pinDir, '--state-dir', c.stateDir, '--endpoint-socket', c.endpointSocket,
        ...(c.flowsSocket !== undefined ? ['--flows-socket', c.flowsSocket] : []),
        '--http-listen', `unix:${c.httpSocket}`, '--log-level', c.logLevel ?? 'info',
        ...Object.entries(c.mapSizes ?? {}).flatMap(([name, n]) => ['--map-size', `${name}=${String(n)}`]),
        ...(c.sweep !== undefined ? ['--config', c.sweep.configFile] : []),
      ],
      logFile: c.logFile,
    });
    return opts.wait === false ? 0 : this.waitReady();
  }

  /** Polls /readyz until 200; fails at once if the agent exits. */
  waitReady(): Promise<number> {
    if (this.proc === undefined) throw new LabError('setup-failed', 'the agent was never started', 'agent');
    return waitReady({
      component: 'sluice-agent',
      process: this.proc,
      deadlineMs: this.config.readyTimeoutMs ?? 60_000,
      check: httpOk({ url: 'http://agent/readyz', socketPath: this.config.httpSocket }),
    });
  }

  /** SIGTERM, SIGKILL after the grace period. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    await this.proc?.stop(graceMs);
  }

  /** kill -9, and wait until it is gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p?.running) return;
    p.killNow();
    await p.waitExit();
  }

  tail(lines = 30): string {
    return this.proc?.tail(lines) ?? '';
  }
}
