/**
 * Runs external tools (ip, sysctl) for the lab. Every call goes through a
 * Runner so that failures carry the exact command line and the tool's own
 * message, and so that callers can be given a different runner (a recording
 * or fault-injecting one) through their constructor.
 */
import { execFile } from 'node:child_process';

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
