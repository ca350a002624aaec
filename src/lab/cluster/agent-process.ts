/**
 * The real sluice-agent (bin entry "sluice-agent", --datapath bpf) for a
 * cluster lab: started as a ManagedProcess (so it dies with whoever owns the
 * lab, even on SIGKILL), ready when its /readyz answers 200. The lab can
 * stop it, kill it with SIGKILL and start it again with the same flags: the
 * agent's restart path (pinned maps, persisted endpoints) under test.
 */
import { writeFile } from 'node:fs/promises';
import { ManagedProcess } from '../controlplane/process.js';
import { freePorts } from '../controlplane/ports.js';
import { httpOk, waitReady } from '../controlplane/readiness.js';
import { LabError } from '../errors.js';
import { binEntry } from './bin-entries.js';

export interface AgentConfig {
  readonly kubeconfig: string;
  readonly nodeName: string;
  readonly pinDir: string;
  readonly stateDir: string;
  readonly endpointSocket: string;
  readonly logFile: string;
  readonly logLevel?: string;
  /** `--map-size NAME=N` each (absent: the agent's defaults). */
  readonly mapSizes?: Readonly<Record<string, number>>;
  readonly readyTimeoutMs?: number;
  /**
   * Where the lab's pods live for the agent's endpoint sweep: the node netns
   * holding the host veths (the agent itself runs in the root netns) and the
   * CNI's IPAM dir. Written to a config file, since the agent has no flags
   * for them.
   */
  readonly sweep?: { readonly hostNetns: string; readonly ipamDataDir: string; readonly configFile: string };
}

export class AgentProcess {
  private proc: ManagedProcess | undefined;
  private port: number | undefined;

  constructor(readonly config: AgentConfig) {}

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** http://127.0.0.1:<port> of /healthz, /readyz, /metrics (fixed across restarts). */
  get httpBase(): string {
    if (this.port === undefined) throw new LabError('setup-failed', 'the agent was never started', 'agent');
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Starts the agent and (unless wait is false: e.g. while the API server is
   * down) waits for /readyz; returns the milliseconds that took.
   */
  async start(opts: { readonly wait?: boolean } = {}): Promise<number> {
    if (this.proc?.running) throw new LabError('setup-failed', 'the agent is running already', 'agent');
    this.port ??= (await freePorts(1))[0];
    const c = this.config;
    if (c.sweep !== undefined) {
      const { configFile, ...sweep } = c.sweep;
      await writeFile(configFile, `${JSON.stringify({ sweep }, null, 2)}\n`, { mode: 0o600 });
    }
    this.proc = ManagedProcess.start({
      name: 'sluice-agent',
      file: process.execPath,
      args: [
        binEntry('sluice-agent'), '--datapath', 'bpf', '--kubeconfig', c.kubeconfig, '--node-name', c.nodeName,
        '--pin-dir', c.pinDir, '--state-dir', c.stateDir, '--endpoint-socket', c.endpointSocket,
        '--http-listen', `127.0.0.1:${String(this.port)}`, '--log-level', c.logLevel ?? 'info',
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
      check: httpOk({ url: `${this.httpBase}/readyz` }),
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
