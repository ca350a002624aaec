/**
 * HelperRunner: a CommandRunner that sends each command to one long-lived
 * helper process (exec-helper.ts, forked on first use) over its IPC channel
 * — used by the agent's in-process plugin, see command.ts for why. A helper
 * that dies fails its pending commands (the invocations report code 100) and
 * is replaced on the next command. The helper never keeps the agent alive.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CommandOutput, CommandRunner } from './command.js';

const HELPER = fileURLToPath(new URL('./exec-helper.js', import.meta.url));

interface Pending {
  readonly resolve: (o: CommandOutput) => void;
  readonly reject: (e: Error) => void;
}

interface Answer {
  readonly id: number;
  readonly out?: CommandOutput;
  readonly error?: string;
}

export class HelperRunner {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  readonly run: CommandRunner = (file, args, input) => new Promise((resolve, reject) => {
    const child = this.helper();
    const id = this.nextId++;
    this.pending.set(id, { resolve, reject });
    if (this.pending.size === 1) {
      child.ref();
      child.channel?.ref();
    }
    child.send({ id, file, args, input }, (e) => {
      if (e !== null && e !== undefined) this.settle(id, undefined, e);
    });
  });

  /** Stops the helper (pending commands fail). */
  close(): void {
    this.child?.kill();
    this.child = undefined;
  }

  private helper(): ChildProcess {
    if (this.child !== undefined) return this.child;
    // execArgv [] : not the agent's flags (inspector, profiler); stdio: the agent's stderr for a crash message.
    const child = fork(HELPER, [], { execArgv: [], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.on('message', (a: Answer) => this.settle(a.id, a.out, a.error !== undefined ? new Error(a.error) : undefined));
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      const e = new Error(`the command helper exited (${signal ?? `code ${code}`})`);
      for (const id of [...this.pending.keys()]) this.settle(id, undefined, e);
    });
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  private settle(id: number, out: CommandOutput | undefined, error: Error | undefined): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.pending.delete(id);
    if (this.pending.size === 0) {
      this.child?.unref();
      this.child?.channel?.unref();
    }
    if (error !== undefined || out === undefined) p.reject(error ?? new Error('no answer'));
    else p.resolve(out);
  }
}
