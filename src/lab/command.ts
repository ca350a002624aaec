/**
 * Runs external tools (ip, sysctl) for the lab. Every call goes through a
 * Runner so that failures carry the exact command line and the tool's own
 * message, and so that callers can be given a different runner (a recording
 * or fault-injecting one) through their constructor.
 */
import { execFile, spawn } from 'node:child_process';

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

export type Runner = (file: string, args: readonly string[]) => Promise<CommandResult>;

/** A tool exited non-zero (or could not be started). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly argv: readonly string[],
    /** Exit code, or undefined when the process could not be spawned / was killed. */
    readonly exitCode: number | undefined,
    readonly stderr: string,
  ) {
    const detail = stderr.trim() || (exitCode === undefined ? 'could not run' : `exit ${exitCode}`);
    super(`${argv.join(' ')}: ${detail}`);
  }
}

/** Runs a tool with execFile (no shell: arguments are never re-parsed). */
export const execRunner: Runner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof err.code === 'number' ? err.code : undefined;
        reject(new CommandError([file, ...args], code, stderr || err.message));
        return;
      }
      resolve({ stdout, stderr });
    });
  });

/** What a process fed on stdin printed, and how it ended. */
export interface InputRunResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a tool with `input` on its stdin and a chosen environment, as a
 * container runtime runs a CNI plugin. Resolves whatever the exit status
 * (the caller decides what a failure means); rejects only when it cannot be
 * started.
 */
export function runWithInput(file: string, args: readonly string[], env: Record<string, string>, input: string): Promise<InputRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // a tool that exits before reading stdin
    child.on('close', (exitCode, signal) => resolve({ exitCode, signal, stdout, stderr }));
    child.stdin.end(input);
  });
}
