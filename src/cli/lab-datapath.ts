/**
 * `sluice lab observe|metrics`: look at a lab's datapath through its pinned
 * maps, from a process that did not load the programs. Pod names come from
 * the lab's state file. (Policy is applied with real NetworkPolicies, by
 * `sluice lab policy apply`.)
 */
import type { Command } from 'commander';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../datapath/pinned-maps.js';
import { parseIpv4 } from '../datapath/maps/ipv4.js';
import { dumpMetrics } from '../datapath/maps/metrics.js';
import { readEvents } from '../datapath/maps/events.js';
import type { SluiceEvent } from '../datapath/generated/abi.js';
import { dumpCounters } from '../datapath/maps/counters.js';
import { formatEvent } from '../flow/format.js';
import { LabError } from '../lab/errors.js';
import { defaultLabPaths, statePathFor } from '../lab/names.js';
import { readState, type LabState } from '../lab/state.js';

interface LabOpt {
  readonly name: string;
}

/** The lab's state, or a not-found error naming the lab. */
async function labState(name: string): Promise<LabState> {
  const state = await readState(statePathFor(defaultLabPaths, name));
  if (!state) throw new LabError('not-found', `lab "${name}" does not exist (no state file)`, 'name');
  if (!state.plan.datapath) throw new LabError('invalid-spec', `lab "${name}" runs without datapath`, 'name');
  return state;
}

/** The pin root of a node of the lab: `node` by Node name (several-node cluster labs), else node 1's. */
function pinRootOf(state: LabState, node: string | undefined): string {
  if (node === undefined) return state.plan.pinRoot;
  const found = state.cluster?.nodes?.find((n) => n.name === node);
  if (found === undefined) {
    const known = state.cluster?.nodes?.map((n) => n.name).join(', ') ?? 'one node: leave --node out';
    throw new LabError('invalid-spec', `--node ${node}: not a node of lab "${state.plan.name}" (${known})`, 'node');
  }
  return found.pinRoot;
}

async function withMaps<T>(state: LabState, node: string | undefined, fn: (maps: PinnedDatapathMaps) => T | Promise<T>): Promise<T> {
  const maps = openPinnedDatapathMaps(pinRootOf(state, node));
  try {
    return await fn(maps);
  } finally {
    maps.close();
  }
}

export function registerLabDatapathCommands(lab: Command, run: <A extends unknown[]>(fn: (...a: A) => Promise<void>) => (...a: A) => Promise<void>): void {
  lab
    .command('observe')
    .description('print datapath events (drops; forwarded packets too with --trace) as they happen')
    .option('--name <name>', 'lab name', 'dev')
    .option('--count <n>', 'stop after n events')
    .option('--timeout <seconds>', 'stop after this long')
    .option('-o, --output <format>', 'text or json', 'text')
    .option('--node <node>', 'a several-node cluster lab: this node\'s events (default: the first node\'s)')
    .action(
      run(async (opts: LabOpt & { count?: string; timeout?: string; output: string; node?: string }) => {
        if (opts.output !== 'text' && opts.output !== 'json') {
          throw new LabError('invalid-spec', `output "${opts.output}": want text or json`, 'output');
        }
        const state = await labState(opts.name);
        const names = new Map(state.plan.pods.map((p) => [parseIpv4(p.ipv4), p.name]));
        const limit = opts.count === undefined ? Infinity : positive(opts.count, 'count');
        const seconds = opts.timeout === undefined ? Infinity : positive(opts.timeout, 'timeout');
        await withMaps(state, opts.node, (maps) => observe(maps, limit, seconds, (ev) => {
          process.stdout.write(
            opts.output === 'json'
              ? `${JSON.stringify(ev, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`
              : `${formatEvent(ev, (a) => names.get(a))}\n`,
          );
        }));
      }),
    );

  lab
    .command('metrics')
    .description('packet and byte counters by direction and verdict/drop reason, then the datapath counters')
    .option('--name <name>', 'lab name', 'dev')
    .option('--node <node>', 'a several-node cluster lab: this node\'s counters (default: the first node\'s)')
    .action(
      run(async (opts: LabOpt & { node?: string }) => {
        const state = await labState(opts.name);
        const [rows, counters] = await withMaps(state, opts.node, (maps) => [dumpMetrics(maps.metrics), dumpCounters(maps.counters)] as const);
        process.stdout.write(`${'DIRECTION'.padEnd(10)} ${'VERDICT/REASON'.padEnd(24)} ${'PACKETS'.padStart(8)} ${'BYTES'.padStart(10)}\n`);
        for (const r of rows) {
          const what = r.reason === 'NONE' ? 'FORWARDED' : `DROP ${r.reason}`;
          process.stdout.write(`${r.direction.padEnd(10)} ${what.padEnd(24)} ${String(r.packets).padStart(8)} ${String(r.bytes).padStart(10)}\n`);
        }
        if (counters.length > 0) {
          process.stdout.write(`\n${'COUNTER'.padEnd(24)} ${'VALUE'.padStart(10)}\n`);
          for (const c of counters) process.stdout.write(`${c.counter.padEnd(24)} ${String(c.value).padStart(10)}\n`);
        }
      }),
    );
}

function positive(text: string, field: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new LabError('invalid-spec', `${field}: want a positive number, got "${text}"`, field);
  return n;
}

/** Streams events until `limit` were printed, `seconds` passed or SIGINT/SIGTERM. */
function observe(maps: PinnedDatapathMaps, limit: number, seconds: number, print: (ev: SluiceEvent) => void): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const timers: NodeJS.Timeout[] = [];
    const finish = (): void => {
      reader.stop();
      timers.forEach(clearTimeout);
      process.off('SIGINT', finish).off('SIGTERM', finish);
      resolve();
    };
    const reader = readEvents(maps.events, (events) => {
      for (const ev of events) {
        if (seen >= limit) break;
        print(ev);
        seen++;
      }
      if (seen >= limit) finish();
    });
    if (Number.isFinite(seconds)) timers.push(setTimeout(finish, seconds * 1000));
    process.on('SIGINT', finish).on('SIGTERM', finish);
  });
}
