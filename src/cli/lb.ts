/**
 * `sluice lb list`: the Services this node load-balances, read from the
 * pinned load-balancer maps of a node's pin dir (the agent's --pin-dir):
 * frontends with their backends and each backend's state, as text or JSON.
 *
 * Exit codes: 0 listed; 2 bad flags (named in the message); 1 the maps
 * could not be opened or read.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { openPinnedMap, type PinnedMap } from '../datapath/bpf-map.js';
import { LB_MAP_LAYOUTS, openLbMaps } from '../datapath/maps/lb-maps.js';
import { lbList, lbListText } from './lb-list.js';

/** The agent's default pin dir (src/agent/config.ts). */
const DEFAULT_PIN_DIR = '/sys/fs/bpf/sluice';
const OUTPUTS = ['text', 'json'] as const;

class LbFlagError extends Error {}

interface ListOptions {
  readonly pinDir: string;
  readonly output: string;
}

export function registerLbCommands(program: Command): void {
  const lb = program.command('lb').description('load balancing: Services without kube-proxy');
  lb.command('list')
    .description('frontends and their backends with state, read from the pinned load-balancer maps')
    .option('--pin-dir <dir>', 'the node\'s pin dir (the agent\'s --pin-dir)', DEFAULT_PIN_DIR)
    .option('-o, --output <format>', OUTPUTS.join(' or '), 'text')
    .action((opts: ListOptions) => {
      try {
        process.stdout.write(listOutput(opts));
      } catch (e) {
        process.stderr.write(`sluice lb list: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exitCode = e instanceof LbFlagError ? 2 : 1;
      }
    });
}

function listOutput(opts: ListOptions): string {
  if (!(OUTPUTS as readonly string[]).includes(opts.output)) throw new LbFlagError(`-o/--output: "${opts.output}" is not one of ${OUTPUTS.join(', ')}`);
  const missing = LB_MAP_LAYOUTS.map((l) => l.name).filter((n) => !existsSync(join(opts.pinDir, n)));
  if (missing.length > 0) throw new LbFlagError(`--pin-dir ${opts.pinDir}: no load-balancer maps pinned there (missing ${missing.join(', ')})`);
  const opened: PinnedMap[] = [];
  try {
    const maps = openLbMaps((name) => {
      const m = openPinnedMap(join(opts.pinDir, name));
      opened.push(m);
      return m;
    });
    const rows = lbList(maps);
    return opts.output === 'json' ? `${JSON.stringify(rows, null, 2)}\n` : lbListText(rows);
  } finally {
    for (const m of opened) m.close();
  }
}
