/**
 * iproute2 as child processes: one `ip -batch -` per namespace per step, so an
 * ADD costs three `ip` processes, not a dozen. The pod's namespace is entered
 * by the child (`nsenter --net=PATH ip …`): setns() would move only the
 * calling thread, and this process never leaves its own namespace.
 *
 * A failed batch stops at its first failing line; the error names the line
 * and carries iproute2's message, which callers inspect for errno text
 * ("File exists", "Cannot find device").
 */
import type { CommandRunner } from './command.js';
import { CniCode, CniError } from './errors.js';
import type { NetlinkOps } from './rtnl.js';

export class IpCommandError extends CniError {
  constructor(
    readonly argv: readonly string[],
    readonly batch: readonly string[],
    readonly stderr: string,
  ) {
    const failed = /Command failed -:(\d+)/.exec(stderr);
    const line = failed?.[1] !== undefined ? batch[Number(failed[1]) - 1] : undefined;
    const msg = stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('Command failed')).join('; ');
    super(CniCode.INTERNAL, `${argv.join(' ')}${line !== undefined ? ` [${line}]` : ''}: ${msg || 'failed'}`);
  }

  /** iproute2's message contains this errno text. */
  says(text: string): boolean {
    return this.stderr.includes(text);
  }
}

export interface IpOptions {
  /** Run inside this netns (a path); default: our own. */
  readonly netns?: string;
  /** -j: JSON output. */
  readonly json?: boolean;
  /** -d: details (link kind, alias). */
  readonly details?: boolean;
}

/**
 * Runs `ip [-j] [-d] -batch -` with these lines; resolves to stdout. With
 * netlink set, wiring.ts does the hot-path steps (veth, pod, DEL) through
 * rtnetlink instead (rtnl.ts); everything else still runs `ip`.
 */
export type IpBatch = ((lines: readonly string[], opts?: IpOptions) => Promise<string>) & { readonly netlink?: NetlinkOps };

/**
 * ipBatch running its `ip` (or `nsenter … ip`) through run: the Node
 * plugin's own spawn, or the agent's command helper (command.ts).
 */
export function ipBatchWith(run: CommandRunner): IpBatch {
  return async (lines, opts = {}) => {
    const flags = [...(opts.json === true ? ['-j'] : []), ...(opts.details === true ? ['-d'] : []), '-batch', '-'];
    const argv = opts.netns !== undefined ? ['nsenter', `--net=${opts.netns}`, 'ip', ...flags] : ['ip', ...flags];
    const [file, ...args] = argv as [string, ...string[]];
    let r;
    try {
      r = await run(file, args, `${lines.join('\n')}\n`);
    } catch (e) {
      throw new CniError(CniCode.INTERNAL, `cannot run ${file}: ${(e as Error).message} (is iproute2/util-linux installed?)`);
    }
    if (r.status !== 0) throw new IpCommandError(argv, lines, r.stderr);
    return r.stdout;
  };
}

/** The JSON arrays `ip -j -batch` printed, one per show command, in order. */
export function parseJsonOutputs(stdout: string): unknown[][] {
  const out: unknown[][] = [];
  // Each command prints one top-level array on its own line(s).
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < stdout.length; i++) {
    const c = stdout[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '[') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === ']') {
      depth--;
      if (depth === 0 && start >= 0) {
        out.push(JSON.parse(stdout.slice(start, i + 1)) as unknown[]);
        start = -1;
      }
    }
  }
  return out;
}
