/**
 * `sluice lab deny|allow|observe|metrics`: look at and steer a lab's datapath
 * through its pinned maps, from a process that did not load the programs.
 * Pods are named as in `lab up`; their endpoint ids, identities and addresses
 * come from the lab's state file.
 */
import type { Command } from 'commander';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../datapath/pinned-maps.js';
import { parseIpv4 } from '../datapath/maps/ipv4.js';
import { dumpMetrics } from '../datapath/maps/metrics.js';
import { readEvents } from '../datapath/maps/events.js';
import { SluiceDirection, SluicePolicyAction, type SluiceEvent } from '../datapath/generated/abi.js';
import { formatEvent } from '../flow/format.js';
import { LabError } from '../lab/errors.js';
import { defaultLabPaths, statePathFor } from '../lab/names.js';
import type { PodPlan } from '../lab/spec.js';
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

function pod(state: LabState, name: string, field: string): PodPlan {
  const p = state.plan.pods.find((x) => x.name === name);
  if (!p) {
    const known = state.plan.pods.map((x) => x.name).join(', ');
    throw new LabError('unknown-pod', `${field}: unknown pod "${name}" (lab has ${known})`, field);
  }
  return p;
}

async function withMaps<T>(state: LabState, fn: (maps: PinnedDatapathMaps) => T | Promise<T>): Promise<T> {
  const maps = openPinnedDatapathMaps(state.plan.pinRoot);
  try {
    return await fn(maps);
  } finally {
    maps.close();
  }
}

export function registerLabDatapathCommands(lab: Command, run: <A extends unknown[]>(fn: (...a: A) => Promise<void>) => (...a: A) => Promise<void>): void {
  lab
    .command('deny')
    .description("drop traffic from one pod's identity to another pod (ingress of --to)")
    .option('--name <name>', 'lab name', 'dev')
    .requiredOption('--from <pod>', 'the pod whose identity is denied')
    .requiredOption('--to <pod>', 'the pod that stops accepting it')
    .option('--rule-id <n>', 'a number reported in drop events', '1')
    .action(
      run(async (opts: LabOpt & { from: string; to: string; ruleId: string }) => {
        const state = await labState(opts.name);
        const from = pod(state, opts.from, 'from');
        const to = pod(state, opts.to, 'to');
        const ruleId = Number(opts.ruleId);
        if (!Number.isInteger(ruleId) || ruleId < 0 || ruleId > 0xffffffff) {
          throw new LabError('invalid-spec', `rule-id: want an integer 0..4294967295, got "${opts.ruleId}"`, 'rule-id');
        }
        await withMaps(state, (maps) => {
          maps.policy.update(
            { endpointId: to.endpointId, remoteIdentity: from.identity, direction: SluiceDirection.INGRESS },
            { action: SluicePolicyAction.DENY, ruleId },
          );
        });
        process.stdout.write(`denied ${from.name} (id ${from.identity}) -> ${to.name} (endpoint ${to.endpointId})\n`);
      }),
    );

  lab
    .command('allow')
    .description('remove a deny added with `lab deny`')
    .option('--name <name>', 'lab name', 'dev')
    .requiredOption('--from <pod>', 'the pod whose identity was denied')
    .requiredOption('--to <pod>', 'the pod that denied it')
    .action(
      run(async (opts: LabOpt & { from: string; to: string }) => {
        const state = await labState(opts.name);
        const from = pod(state, opts.from, 'from');
        const to = pod(state, opts.to, 'to');
        const removed = await withMaps(state, (maps) =>
          maps.policy.delete({ endpointId: to.endpointId, remoteIdentity: from.identity, direction: SluiceDirection.INGRESS }),
        );
        process.stdout.write(removed ? `allowed ${from.name} -> ${to.name}\n` : `no deny ${from.name} -> ${to.name} was set\n`);
      }),
    );

  lab
    .command('observe')
    .description('print datapath events (drops; forwarded packets too with --trace) as they happen')
    .option('--name <name>', 'lab name', 'dev')
    .option('--count <n>', 'stop after n events')
    .option('--timeout <seconds>', 'stop after this long')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      run(async (opts: LabOpt & { count?: string; timeout?: string; output: string }) => {
        if (opts.output !== 'text' && opts.output !== 'json') {
          throw new LabError('invalid-spec', `output "${opts.output}": want text or json`, 'output');
        }
        const state = await labState(opts.name);
        const names = new Map(state.plan.pods.map((p) => [parseIpv4(p.ipv4), p.name]));
        const limit = opts.count === undefined ? Infinity : positive(opts.count, 'count');
        const seconds = opts.timeout === undefined ? Infinity : positive(opts.timeout, 'timeout');
        await withMaps(state, (maps) => observe(maps, limit, seconds, (ev) => {
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
    .description('packet and byte counters by direction and verdict/drop reason')
    .option('--name <name>', 'lab name', 'dev')
    .action(
      run(async (opts: LabOpt) => {
        const state = await labState(opts.name);
        const rows = await withMaps(state, (maps) => dumpMetrics(maps.metrics));
        process.stdout.write(`${'DIRECTION'.padEnd(10)} ${'VERDICT/REASON'.padEnd(20)} ${'PACKETS'.padStart(8)} ${'BYTES'.padStart(10)}\n`);
        for (const r of rows) {
          const what = r.reason === 'NONE' ? 'FORWARDED' : `DROP ${r.reason}`;
          process.stdout.write(`${r.direction.padEnd(10)} ${what.padEnd(20)} ${String(r.packets).padStart(8)} ${String(r.bytes).padStart(10)}\n`);
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
