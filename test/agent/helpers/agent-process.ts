/**
 * The sluice-agent binary (dist/src/agent/main.js) as a child process, with
 * its JSON log lines collected: for tests and bench/agent that run the real
 * binary against a real API server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { httpGet } from '../../../src/lab/controlplane/readiness.js';

export const AGENT_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'agent', 'main.js');

/** The agent binary as a child, with its JSON log lines. */
export class AgentProcess {
  readonly lines: Record<string, unknown>[] = [];
  readonly startedAt = performance.now();
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private stderr = '';

  constructor(argv: readonly string[]) {
    const child = spawn(process.execPath, [AGENT_MAIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      const parts = (buf + d.toString('utf8')).split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) this.lines.push(JSON.parse(l) as Record<string, unknown>);
    });
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString('utf8')));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** What the agent wrote to stderr (usage errors, crashes). */
  get stderrText(): string {
    return this.stderr;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  async line(msg: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const l = this.lines.find((x) => x['msg'] === msg);
      if (l !== undefined) return l;
      if (this.child.exitCode !== null) throw new Error(`the agent exited (${this.child.exitCode}) before "${msg}": ${this.stderr}`);
      if (performance.now() > end) throw new Error(`no "${msg}" log line within ${timeoutMs} ms: ${this.stderr}`);
      await sleep(10);
    }
  }

  /** ms from spawn to the first /readyz 200 (polled every 10 ms). */
  async ready(timeoutMs = 120_000): Promise<{ ms: number; port: number }> {
    const started = await this.line('agent started', timeoutMs);
    const port = Number(String(started['http']).split(':').pop());
    const end = performance.now() + timeoutMs;
    for (;;) {
      const r = await httpGet({ url: `http://127.0.0.1:${port}/readyz` }).catch(() => undefined);
      if (r?.status === 200) return { ms: performance.now() - this.startedAt, port };
      if (performance.now() > end) throw new Error(`not ready within ${timeoutMs} ms: ${r?.body ?? ''}`);
      await sleep(10);
    }
  }

  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

