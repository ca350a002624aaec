/**
 * One long-running child process of the control plane (etcd, apiserver,
 * controller manager): started with its output going to a log file and to a
 * small in-memory tail (for error messages), stopped with SIGTERM and then
 * SIGKILL after a grace period.
 *
 * Children are started through `setpriv --pdeathsig KILL` when it exists, so
 * the kernel kills them even if this Node process dies by SIGKILL and no exit
 * hook runs. setpriv execs the binary, so the pid is the component's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, createWriteStream, type WriteStream } from 'node:fs';
import { ControlPlaneError } from './errors.js';

export interface ProcessSpec {
  /** Component name for messages, e.g. "kube-apiserver". */
  readonly name: string;
  readonly file: string;
  readonly args: readonly string[];
  /** Receives everything the process writes to stdout and stderr. */
  readonly logFile: string;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all. */
  readonly error?: Error;
}

const SETPRIV = '/usr/bin/setpriv';
const TAIL_LINES = 200;
const MAX_LINE = 2000;

function hasSetpriv(): boolean {
  try {
    accessSync(SETPRIV, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeExit(s: ExitStatus): string {
  if (s.error) return `could not start: ${s.error.message}`;
  return s.signal !== null ? `killed by ${s.signal}` : `exited with code ${String(s.code)}`;
}

export class ManagedProcess {
  private readonly lines: string[] = [];
  private partial = '';
  private status: ExitStatus | undefined;
  private readonly done: Promise<ExitStatus>;

  private constructor(
    readonly spec: ProcessSpec,
    private readonly child: ChildProcess,
    private readonly log: WriteStream,
  ) {
    this.done = new Promise((resolve) => {
      const settle = (s: ExitStatus): void => {
        if (this.status) return;
        this.status = s;
        if (this.partial !== '') this.pushLine(this.partial);
        this.partial = '';
        this.log.end();
        resolve(s);
      };
      // 'close' comes after 'exit' and after stdout/stderr are drained, so the
      // tail is complete when a waiter reads it.
      child.once('close', (code, signal) => settle({ code, signal }));
      child.once('error', (error) => settle({ code: null, signal: null, error }));
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        this.log.write(chunk);
        this.collect(chunk.toString('utf8'));
      });
    }
  }

  /** Spawns the process; it runs until stop() (or until it exits by itself). */
  static start(spec: ProcessSpec): ManagedProcess {
    const [file, args] = hasSetpriv()
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', spec.file, ...spec.args]]
      : [spec.file, [...spec.args]];
    let child: ChildProcess;
    try {
      child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      throw new ControlPlaneError('spawn-failed', `${spec.name}: cannot spawn ${spec.file}`, spec.name, { cause: e });
    }
    const log = createWriteStream(spec.logFile, { flags: 'a', mode: 0o600 });
    return new ManagedProcess(spec, child, log);
  }

  get name(): string {
    return this.spec.name;
  }

  /** The OS pid (undefined only if spawning failed). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Exit status once the process has exited, else undefined. */
  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /** Resolves when the process has exited and its output is drained. */
  waitExit(): Promise<ExitStatus> {
    return this.done;
  }

  /** The last `n` lines the process printed (stdout and stderr interleaved). */
  tail(n = 20): string {
    const last = this.lines.slice(-n);
    if (this.partial !== '') last.push(this.partial);
    return last.join('\n');
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Idempotent. */
  async stop(graceMs = 5000): Promise<ExitStatus> {
    if (this.status) return this.status;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const first = await Promise.race([this.done, timedOut]);
    clearTimeout(timer);
    if (first === 'timeout') this.child.kill('SIGKILL');
    return this.done;
  }

  /** Synchronous SIGKILL, for process-exit hooks where nothing can be awaited. */
  killNow(): void {
    if (this.status === undefined && this.child.pid !== undefined) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // Already gone: nothing to do.
      }
    }
  }

  private collect(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.pushLine(line);
  }

  private pushLine(line: string): void {
    this.lines.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line);
    if (this.lines.length > TAIL_LINES) this.lines.splice(0, this.lines.length - TAIL_LINES);
  }
}
