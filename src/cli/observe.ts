/**
 * `sluice observe` (like `hubble observe`) and `sluice status`, clients of
 * the agent's flow API (Hubble's Observer over gRPC). Output: compact (colour
 * on a terminal), json (Hubble's JSON: proto names, enum names, RFC 3339
 * times) or table. Ctrl-C and a closed pipe end the stream cleanly (exit 0).
 */
import { dirname, join } from 'node:path';
import { Command, Option } from 'commander';
import { readState } from '../lab/state.js';
import { defaultLabPaths, statePathFor } from '../lab/names.js';
import type { Flow, LostEvent } from '../flow/model.js';
import { observeRequest, ObserveOptionError, type ObserveOptions } from '../flow/observe-request.js';
import { compactLine, lostLine, TABLE_HEADER, tableRow } from '../flow/print.js';
import { ObserverClient, type FlowCall, type GetFlowsRequestInput, type GetFlowsResponseObject } from '../flow/server/client.js';
import { toProtoJson } from '../flow/wire/json.js';
import { observerSchema } from '../flow/wire/schema.js';

export const DEFAULT_FLOW_SERVER = 'unix:///var/run/sluice/hubble.sock';
export type OutputFormat = 'compact' | 'json' | 'table';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** The flow API of a lab's agent (cluster labs), or the default socket. */
export async function resolveServer(server: string | undefined, lab: string | undefined): Promise<string> {
  if (server !== undefined) return server;
  if (lab !== undefined) {
    const state = await readState(statePathFor(defaultLabPaths, lab));
    const socket = state?.cluster?.flowsSocket;
    if (socket === undefined) throw new ObserveOptionError('--lab', `lab "${lab}" has no agent flow socket (a cluster lab has one)`);
    return `unix://${socket}`;
  }
  return process.env['HUBBLE_SERVER'] ?? DEFAULT_FLOW_SERVER;
}

export interface StreamOutput {
  readonly format: OutputFormat;
  readonly color: boolean;
  readonly write: (text: string) => boolean;
}

/** Prints GetFlows responses in a format; table rows are padded to fixed widths as they come. */
export function responsePrinter(out: StreamOutput): (r: GetFlowsResponseObject) => void {
  const schema = observerSchema();
  let headerDone = false;
  const widths = [30, 34, 34, 22, 28];
  return (r) => {
    if (out.format === 'json') {
      out.write(`${JSON.stringify(toProtoJson(schema.GetFlowsResponse, r))}\n`);
      return;
    }
    if (r['lost_events'] !== undefined) {
      out.write(`${lostLine(r['lost_events'] as LostEvent)}\n`);
      return;
    }
    const flow = r['flow'] as Flow | undefined;
    if (flow === undefined) return;
    if (out.format === 'compact') {
      out.write(`${compactLine(flow, { color: out.color })}\n`);
      return;
    }
    const row = (cells: readonly string[]): string => cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i] ?? 0) : c)).join(' ');
    if (!headerDone) {
      out.write(`${row(TABLE_HEADER)}\n`);
      headerDone = true;
    }
    out.write(`${row(tableRow(flow))}\n`);
  };
}

/**
 * Runs one GetFlows call to its end, Ctrl-C, SIGTERM or a closed stdout
 * (EPIPE); resolves with the exit code.
 */
export async function streamFlows(client: ObserverClient, req: GetFlowsRequestInput, out: StreamOutput): Promise<number> {
  const print = responsePrinter(out);
  let call: FlowCall | undefined;
  const stop = (): void => call?.cancel();
  const onPipe = (e: NodeJS.ErrnoException): void => {
    if (e.code === 'EPIPE') stop();
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  process.stdout.on('error', onPipe);
  try {
    call = client.getFlows(req, print);
    await call.done;
    return 0;
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
    process.stdout.off('error', onPipe);
    client.close();
  }
}

function formatOption(): Option {
  return new Option('-o, --output <format>', 'compact, json or table').choices(['compact', 'json', 'table']).default('compact');
}

interface ObserveCli extends ObserveOptions {
  readonly server?: string;
  readonly lab?: string;
  readonly output: OutputFormat;
  readonly tls?: boolean;
  readonly tlsCaCert?: string;
  readonly tlsServerName?: string;
}

function clientOf(server: string, o: { tls?: boolean; tlsCaCert?: string; tlsServerName?: string }): ObserverClient {
  const tls = o.tls === true || o.tlsCaCert !== undefined || server.startsWith('tls://');
  return new ObserverClient({
    server: server.replace(/^tls:\/\//, ''),
    ...(tls ? { tls: { ...(o.tlsCaCert !== undefined ? { caFile: o.tlsCaCert } : {}), ...(o.tlsServerName !== undefined ? { serverName: o.tlsServerName } : {}) } } : {}),
  });
}

/** Adds the flow filter and output options `observe` shares with `lab observe`. */
export function addObserveOptions(cmd: Command): Command {
  return cmd
    .option('-f, --follow', 'keep printing new flows')
    .option('--last <n>', 'the last n flows (default 20; 0 with --follow: new flows only)', (v) => positiveInt(v, '--last'))
    .option('--first <n>', 'the oldest n flows held', (v) => positiveInt(v, '--first'))
    .option('--since <time>', 'flows since an RFC 3339 time or a duration ago (5m)')
    .option('--until <time>', 'flows until an RFC 3339 time or a duration ago')
    .option('-n, --namespace <ns>', 'either side in this namespace (repeatable)', collect)
    .option('--pod <[ns/]pod>', 'either side is this pod, a name prefix (repeatable)', collect)
    .option('--from-pod <[ns/]pod>', 'the source is this pod (repeatable)', collect)
    .option('--to-pod <[ns/]pod>', 'the destination is this pod (repeatable)', collect)
    .option('-l, --label <selector>', 'either side matches this label selector (repeatable)', collect)
    .option('--from-label <selector>', 'the source matches (repeatable)', collect)
    .option('--to-label <selector>', 'the destination matches (repeatable)', collect)
    .option('--verdict <verdict>', 'FORWARDED, DROPPED, … (repeatable)', collect)
    .option('--protocol <proto>', 'tcp, udp, sctp, icmp (repeatable)', collect)
    .option('--port <port>', 'either side uses this port (repeatable)', collect)
    .option('-t, --type <type>', 'drop, trace or policy-verdict (repeatable)', collect)
    .option('--drop-reason <name>', 'a drop reason name, e.g. POLICY_DENIED (repeatable)', collect)
    .option('--traffic-direction <dir>', 'ingress or egress (repeatable)', collect, undefined)
    .addOption(formatOption());
}

function positiveInt(v: string, option: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ObserveOptionError(option, `"${v}" is not a count`);
  return n;
}

function fail(e: unknown): number {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`sluice: ${msg}\n`);
  return e instanceof ObserveOptionError ? 2 : 1;
}

export function registerObserveCommands(program: Command): void {
  addObserveOptions(
    program
      .command('observe')
      .description('print flows from the agent (Hubble\'s Observer API): every verdict with pods, namespaces and the deciding policy')
      .option('--server <address>', `flow API: unix:///path or host:port (default $HUBBLE_SERVER or ${DEFAULT_FLOW_SERVER})`)
      .option('--lab <name>', 'the flow API of this cluster lab\'s agent')
      .option('--tls', 'TLS to a TCP server')
      .option('--tls-ca-cert <file>', 'CA of the server certificate')
      .option('--tls-server-name <name>', 'name to check in the server certificate'),
  ).action(async (o: ObserveCli & { trafficDirection?: string[] }) => {
    try {
      const req = observeRequest({ ...o, ...(o.trafficDirection !== undefined ? { direction: o.trafficDirection } : {}) }, Date.now());
      const server = await resolveServer(o.server, o.lab);
      process.exitCode = await streamFlows(clientOf(server, o), req, {
        format: o.output, color: process.stdout.isTTY === true, write: (t) => process.stdout.write(t),
      });
    } catch (e) {
      process.exitCode = fail(e);
    }
  });

  program
    .command('status')
    .description('the agent: health, flows held and seen, flow rate, lost events, map pressure')
    .option('--server <address>', `flow API (default $HUBBLE_SERVER or ${DEFAULT_FLOW_SERVER})`)
    .option('--agent-http <address>', 'the agent\'s /readyz and /metrics: unix:/path or http://host:port (default with --lab: the lab agent\'s)')
    .option('--lab <name>', 'a cluster lab\'s agent')
    .option('-o, --output <format>', 'text or json', 'text')
    .action(async (o: { server?: string; lab?: string; agentHttp?: string; output: string }) => {
      try {
        const { agentStatus, formatAgentStatus } = await import('./status.js');
        const server = await resolveServer(o.server, o.lab);
        const agentHttp = o.agentHttp ?? (o.lab !== undefined ? `unix:${join(dirname(server.slice('unix://'.length)), 'agent-http.sock')}` : undefined);
        const report = await agentStatus({ server, ...(agentHttp !== undefined ? { agentHttp } : {}) });
        process.stdout.write(o.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatAgentStatus(report));
        if (!report.healthy) process.exitCode = 1;
      } catch (e) {
        process.exitCode = fail(e);
      }
    });
}
