/**
 * Running a child command (file, args, stdin) to completion. The Node
 * plugin spawns its children itself. The agent, which runs the plugin
 * in-process, hands them to a small helper process instead
 * (exec-helper.ts): spawn() forks the calling process synchronously, and a
 * fork of the ~100 MB agent costs its event loop ~5 ms per `ip`, serialising
 * a burst of ADDs.
 */
import { spawn } from 'node:child_process';

export interface CommandOutput {
  /** Exit status; null when killed by a signal. */
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Rejects only when the command could not be started (ENOENT…); a non-zero exit resolves. */
export type CommandRunner = (file: string, args: readonly string[], input: string) => Promise<CommandOutput>;

export const spawnCommand: CommandRunner = (file, args, input) => new Promise((resolve, reject) => {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.on('error', () => undefined); // a child that exits early: its status tells
  child.once('error', reject);
  child.once('close', (status) => resolve({ status, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  child.stdin.end(input);
});
