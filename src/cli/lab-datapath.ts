/**
 * `sluice lab observe|metrics`: look at a lab's datapath through its pinned
 * maps, from a process that did not load the programs. Pod names come from
 * the lab's state file. (Policy is applied with real NetworkPolicies, by
 * `sluice lab policy apply`.)
 */
import type { Command } from 'commander';
import { openPinnedDatapathMaps, type PinnedDatapathMaps } from '../datapath/pinned-maps.js';
import { dumpMetrics } from '../datapath/maps/metrics.js';
import { readEvents } from '../datapath/maps/events.js';
import { dumpCounters } from '../datapath/maps/counters.js';
import { FlowObserver } from '../flow/observer.js';
import { observeRequest, type ObserveOptions, type ObserveRequest } from '../flow/observe-request.js';
import { ObserverClient, type GetFlowsResponseObject } from '../flow/server/client.js';
import { readRequestOf, responseOf } from '../flow/wire/messages.js';
import { EMPTY_APPLIED_VIEW, type AppliedView } from '../reconcile/applied-view.js';
import { addObserveOptions, responsePrinter, streamFlows, type OutputFormat } from './observe.js';
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

/** A cluster lab's flow API: the named node's agent's, or the first node's. */
function flowsSocketOf(state: LabState, node: string | undefined): string | undefined {
  if (state.cluster === undefined) return undefined;
  if (node === undefined) return state.cluster.flowsSocket;
  const n = state.cluster.nodes?.find((x) => x.name === node);
  if (n === undefined) throw new LabError('not-found', `lab "${state.plan.name}" has no node "${node}" (nodes: ${(state.cluster.nodes ?? []).map((x) => x.name).join(', ') || state.cluster.node})`, 'node');
  return n.flowsSocket;
}

export function registerLabDatapathCommands(lab: Command, run: <A extends unknown[]>(fn: (...a: A) => Promise<void>) => (...a: A) => Promise<void>): void {
  addObserveOptions(
    lab
      .command('observe')
      .description('print the lab\'s flows like `sluice observe`: from its agent\'s flow API (cluster labs), or from the pinned event ring (datapath labs: new flows only)')
      .option('--name <name>', 'lab name', 'dev')
      .option('--node <node>', 'a several-node cluster lab: this node\'s flows (default: the first node\'s)'),
  ).action(
    run(async (opts: ObserveOptions & LabOpt & { output: OutputFormat; trafficDirection?: string[]; node?: string }) => {
      const state = await readState(statePathFor(defaultLabPaths, opts.name));
      if (!state) throw new LabError('not-found', `lab "${opts.name}" does not exist (no state file)`, 'name');
      const req = observeRequest({ ...opts, ...(opts.trafficDirection !== undefined ? { direction: opts.trafficDirection } : {}) }, Date.now());
      const out = { format: opts.output, color: process.stdout.isTTY === true, write: (t: string) => process.stdout.write(t) };
      const socket = flowsSocketOf(state, opts.node);
      if (socket !== undefined) {
        process.exitCode = await streamFlows(new ObserverClient({ server: `unix://${socket}` }), req, out);
        return;
      }
      const datapathLab = await labState(opts.name);
      await withMaps(datapathLab, opts.node, (maps) => observeRing(maps, datapathLab, req, responsePrinter(out)));
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


/**
 * The lab's own flow pipeline for a lab without an agent: the pinned event
 * ring read in this process, named from the lab's plan (endpoint ids and
 * addresses of its pods), filtered and printed as the agent's API would.
 * Runs until Ctrl-C, SIGTERM or a closed stdout.
 */
function observeRing(maps: PinnedDatapathMaps, state: LabState, req: ObserveRequest, print: (r: GetFlowsResponseObject) => void): Promise<void> {
  const view = labView(state);
  const observer = new FlowObserver({
    nodeName: state.plan.nodeNetns,
    view: () => view,
    now: () => Date.now(),
    wallOffsetNs: () => BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint(),
  });
  const reader = observer.reader({ ...readRequestOf(req), follow: true, number: 0 });
  return new Promise((resolve) => {
    let cancelWait: (() => void) | undefined;
    const finish = (): void => {
      events.stop();
      cancelWait?.();
      process.off('SIGINT', finish).off('SIGTERM', finish);
      process.stdout.off('error', finish);
      resolve();
    };
    const pump = (): void => {
      for (;;) {
        const r = reader.next();
        if (r === 'end') return finish();
        if (r === 'wait') {
          cancelWait = reader.onData(pump);
          return;
        }
        print(responseOf(r, observer.nodeName));
      }
    };
    const events = readEvents(maps.events, (evs) => observer.ingest(evs));
    process.on('SIGINT', finish).on('SIGTERM', finish);
    process.stdout.on('error', finish);
    pump();
  });
}

/** What a datapath lab's numbers mean: its pods by endpoint id and address (no policies: rule ids stay numbers). */
function labView(state: LabState): AppliedView {
  const byId = new Map(state.plan.pods.map((p) => [p.endpointId, p]));
  const byIp = new Map(state.plan.pods.map((p) => [p.ipv4, p]));
  const ns = state.plan.name;
  return {
    ...EMPTY_APPLIED_VIEW,
    endpoint: (id) => {
      const p = byId.get(id);
      return p === undefined ? undefined : { endpointId: id, namespace: ns, pod: p.name, identity: p.identity };
    },
    podAt: (ip) => {
      const p = byIp.get(ip);
      return p === undefined ? undefined : { namespace: ns, pod: p.name, identity: p.identity };
    },
    endpoints: () => state.plan.pods.map((p) => ({ endpointId: p.endpointId, namespace: ns, pod: p.name, identity: p.identity })),
  };
}
