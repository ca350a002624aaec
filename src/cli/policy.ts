/**
 * `sluice policy reachability|explain`: NetworkPolicy questions over
 * ordinary manifests, answered by the model or by the BPF datapath.
 *
 * Exit codes: 0 answered; 2 bad input (unreadable or invalid manifests,
 * flags, unknown pods), with a message naming the file and field; 1 the
 * engine failed (e.g. the datapath could not be loaded, or dropped the reply
 * of an allowed connection).
 */
import type { Command } from 'commander';
import type { Cluster } from '../policy/cluster.js';
import { PolicyError } from '../policy/errors.js';
import type { TrafficProtocol } from '../policy/match.js';
import { TRAFFIC_PROTOCOLS } from '../policy/model.js';
import { modelEngine, type EngineName, type PolicyEngine } from '../policy-engine/engine.js';
import { CliInputError, loadCluster } from './policy-input.js';
import { explanationText, reachabilityJson, reachabilityTable } from './policy-format.js';

interface CommonOptions {
  readonly file: string[];
  readonly port?: string;
  readonly protocol: string;
  readonly engine: string;
  readonly output: string;
}

export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('NetworkPolicy: who can reach whom, and why');

  common(policy.command('reachability'))
    .description('the allowed/denied matrix of every ordered pod pair for one port and protocol')
    .action(
      run(async (opts: CommonOptions) => {
        const { cluster, port, protocol, engine, output } = await prepare(opts, ['table', 'json']);
        const matrix = await engine.reachability(cluster, port, protocol);
        process.stdout.write(output === 'json' ? reachabilityJson(matrix) : reachabilityTable(matrix, engine.name));
      }),
    );

  common(policy.command('explain'))
    .description('the verdict for one connection and the policy/rule that allowed it, or what isolates and that nothing matched')
    .requiredOption('--from <ns/pod>', 'the connecting pod')
    .requiredOption('--to <ns/pod>', 'the pod connected to')
    .action(
      run(async (opts: CommonOptions & { from: string; to: string }) => {
        const { cluster, port, protocol, engine, output } = await prepare(opts, ['text', 'json']);
        for (const [field, ref] of [['--from', opts.from], ['--to', opts.to]] as const) {
          if (!cluster.podsById.has(ref)) throw new CliInputError(`${field}: no pod "${ref}" in the manifests (want namespace/name)`);
        }
        const e = await engine.explain(cluster, opts.from, opts.to, port, protocol);
        process.stdout.write(output === 'json' ? `${JSON.stringify(e)}\n` : explanationText(e));
      }),
    );
}

function common(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'manifest file or directory (YAML or JSON; "-" = stdin); repeatable', (v: string, acc: string[]) => [...acc, v], [])
    .option('--port <n>', 'destination port (1..65535; not for ICMP)')
    .option('--protocol <name>', `${TRAFFIC_PROTOCOLS.join(', ')}`, 'TCP')
    .option('--engine <name>', 'model (the reference evaluator) or bpf (the datapath, via BPF_PROG_TEST_RUN)', 'model')
    .option('-o, --output <format>', 'table or json (explain: text or json)');
}

async function prepare(
  opts: CommonOptions,
  outputs: readonly string[],
): Promise<{ cluster: Cluster; port: number; protocol: TrafficProtocol; engine: PolicyEngine; output: string }> {
  const protocol = opts.protocol.toUpperCase();
  if (!(TRAFFIC_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new CliInputError(`--protocol: "${opts.protocol}" is not one of ${TRAFFIC_PROTOCOLS.join(', ')}`);
  }
  let port = 0;
  if (protocol !== 'ICMP') {
    if (opts.port === undefined) throw new CliInputError('--port: required (1..65535)');
    port = Number(opts.port);
    if (!/^\d+$/.test(opts.port) || port < 1 || port > 65535) throw new CliInputError(`--port: want 1..65535, got "${opts.port}"`);
  }
  const output = opts.output ?? outputs[0] ?? 'table';
  if (!outputs.includes(output)) throw new CliInputError(`-o: "${output}" is not one of ${outputs.join(', ')}`);
  const engine = await engineNamed(opts.engine);
  const cluster = loadCluster(opts.file, (line) => process.stderr.write(`${line}\n`));
  return { cluster, port, protocol: protocol as TrafficProtocol, engine, output };
}

/** The BPF engine (and the native addon) is loaded only when asked for. */
async function engineNamed(name: string): Promise<PolicyEngine> {
  const engines: readonly EngineName[] = ['model', 'bpf'];
  if (!(engines as readonly string[]).includes(name)) throw new CliInputError(`--engine: "${name}" is not one of ${engines.join(', ')}`);
  if (name === 'model') return modelEngine;
  const { BpfPolicyEngine } = await import('../policy-engine/bpf-engine.js');
  return new BpfPolicyEngine();
}

/** Errors become one message on stderr and the exit code: 2 for input, 1 otherwise. */
function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      // A pod without an address is the manifest's fault, even when only the bpf engine minds.
      const noAddress = e instanceof Error && e.name === 'BpfEngineError' && (e as Error & { code?: string }).code === 'no-address';
      const input = e instanceof CliInputError || e instanceof PolicyError || noAddress;
      const field = e instanceof PolicyError && e.field !== undefined ? `${e.field}: ` : '';
      process.stderr.write(`sluice policy: ${field}${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = input ? 2 : 1;
    }
  };
}
