/**
 * `sluice lab up|down|status|exec|reload`: the local lab from the command
 * line. Each command is a new process; everything it needs comes from the
 * lab's state file and the kernel.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { downCluster } from '../lab/cluster/cluster-lab.js';
import type { PodDeleteRequest, PodFinishRequest, PodReadyRequest } from '../lab/cluster/control.js';
import { SERVICE_PROXIES, parseServiceProxy } from '../lab/cluster/kube-proxy.js';
import { execRunner } from '../lab/command.js';
import { LabError, asError } from '../lab/errors.js';
import { Lab } from '../lab/lab.js';
import { defaultLabPaths } from '../lab/names.js';
import { type LabSpec, resolveSpec } from '../lab/spec.js';
import { formatStatus } from '../lab/status-format.js';
import { registerLabDatapathCommands } from './lab-datapath.js';
import { registerLabPolicyCommands } from './lab-policy.js';

const DEFAULT_LAB = 'dev';

type PodRequest = PodReadyRequest | PodDeleteRequest | PodFinishRequest;

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('a local lab: pods as network namespaces, the datapath on their veths');

  lab
    .command('up')
    .description('create a lab')
    .option('--name <name>', 'lab name ([a-z0-9], ≤ 20)', DEFAULT_LAB)
    .option('--pods <names>', 'comma-separated pod names', 'a,b')
    .option('--cidr <cidr>', 'pod addresses (default 10.<hash>.0.0/24)')
    .option('--no-datapath', 'plain veths, no programs (a baseline)')
    .option('--cluster', 'real control plane + sluice-agent; pods attached by sluice-cni (prints a kubeconfig)')
    .option('-f, --file <path>', '--cluster: Pods/Namespaces describing the lab pods (labels, ports); repeatable', (v: string, acc: string[]) => [...acc, v], [])
    .option('--foreground', '--cluster: stay in the foreground; SIGINT/SIGTERM takes the lab down')
    .option('--nodes <n>', '--cluster: nodes on a lab fabric, one agent each (pods round-robin unless spec.nodeName)', '1')
    .option('--zones <zones>', '--cluster: topology.kubernetes.io/zone per node, comma-separated')
    .option('--fabric', '--cluster: put a lone node on the lab fabric too (an address and a default route; several nodes always are)')
    .option('--routing <mode>', '--cluster with --nodes ≥ 2: native or vxlan', 'native')
    .option('--proxy <proxy>', `--cluster: what implements Services: ${SERVICE_PROXIES.join(', ')} (kube-proxy needs --nodes ≥ 2 or --fabric)`, 'sluice')
    .action(
      run(async (opts: {
        name: string; pods: string; cidr?: string; datapath: boolean; cluster?: boolean; file: string[]; foreground?: boolean;
        nodes: string; zones?: string; fabric?: boolean; routing: string; proxy: string;
      }) => {
        const spec: LabSpec = {
          name: opts.name,
          pods: opts.pods.split(',').map((p) => p.trim()),
          datapath: opts.datapath,
          ...(opts.cidr !== undefined ? { cidr: opts.cidr } : {}),
        };
        // Spec errors first, before the datapath (and the addon) is loaded.
        resolveSpec(spec, defaultLabPaths);
        const nodes = Number(opts.nodes);
        if (!Number.isInteger(nodes) || nodes < 1) throw new LabError('invalid-spec', `--nodes ${opts.nodes}: want a whole number ≥ 1`, 'nodes');
        if (opts.routing !== 'native' && opts.routing !== 'vxlan') throw new LabError('invalid-spec', `--routing ${opts.routing}: want native or vxlan`, 'routing');
        if (opts.cluster === true) {
          if (!opts.datapath) throw new LabError('invalid-spec', '--cluster needs the datapath (drop --no-datapath)', 'datapath');
          const cluster = await import('./lab-cluster.js');
          const options = {
            nodes, routing: opts.routing, proxy: parseServiceProxy(opts.proxy),
            ...(opts.zones !== undefined ? { zones: opts.zones.split(',').map((z) => z.trim()) } : {}),
            ...(opts.fabric === true ? { fabric: true } : {}),
          } as const;
          if (opts.foreground === true) await cluster.clusterUpForeground(spec, opts.file, options);
          else await cluster.clusterUpDetached(process.argv.slice(1), opts.name);
          return;
        }
        if (opts.file.length > 0 || opts.foreground === true || nodes !== 1 || opts.zones !== undefined || opts.fabric === true || opts.proxy !== 'sluice') {
          throw new LabError('invalid-spec', '-f, --foreground, --nodes, --zones, --fabric and --proxy go with --cluster', 'cluster');
        }
        const state = await (await makeLab(opts.datapath)).up(spec);
        const list = state.plan.pods.map((p) => `${p.name}=${p.ipv4}`).join(' ');
        process.stdout.write(`lab "${state.plan.name}" up: ${list}\n`);
      }),
    );

  lab
    .command('down')
    .description('remove a lab and everything it created (idempotent)')
    .option('--name <name>', 'lab name', DEFAULT_LAB)
    .action(
      run(async (opts: { name: string }) => {
        // Any lab: a cluster lab's processes and files go first, then the common parts.
        const report = await downCluster({ runner: execRunner, paths: defaultLabPaths }, opts.name);
        const removed = [
          ...report.netns.map((n) => `netns ${n}`),
          ...(report.pinRoot ? [report.pinRoot] : []),
          ...(report.stateFile ? [report.stateFile] : []),
          ...report.cluster,
        ];
        process.stdout.write(
          removed.length ? `lab "${opts.name}" down: removed ${removed.join(', ')}\n` : `lab "${opts.name}": nothing to remove\n`,
        );
      }),
    );

  lab
    .command('status')
    .description('show a lab: pods, addresses, links, attached programs')
    .option('--name <name>', 'lab name', DEFAULT_LAB)
    .option('-o, --output <format>', 'text or json', 'text')
    .action(
      run(async (opts: { name: string; output: string }) => {
        if (opts.output !== 'text' && opts.output !== 'json') {
          throw new LabError('invalid-spec', `output "${opts.output}": want text or json`, 'output');
        }
        const report = await (await makeLab(true)).status(opts.name);
        process.stdout.write(opts.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report));
        if (!report.healthy) process.exitCode = 1;
      }),
    );

  lab
    .command('exec')
    .description("run a command in a pod's network namespace")
    .usage('[--name N] POD -- CMD...')
    .option('--name <name>', 'lab name', DEFAULT_LAB)
    .argument('<pod>', 'pod name')
    .argument('<cmd...>', 'command and its arguments (after --)')
    .action(
      run(async (pod: string, cmd: string[], opts: { name: string }) => {
        const argv = await (await makeLab(false)).execArgv(opts.name, pod, cmd);
        process.exitCode = await runInherited(argv);
      }),
    );

  lab
    .command('reload')
    .description("reload a pod's programs (pinned maps kept) and swap them in atomically")
    .option('--name <name>', 'lab name', DEFAULT_LAB)
    .argument('<pod>', 'pod name')
    .action(
      run(async (pod: string, opts: { name: string }) => {
        const programs = await (await makeLab(true)).reload(opts.name, pod);
        process.stdout.write(
          `pod "${pod}": from_container prog ${programs.fromContainer}, to_container prog ${programs.toContainer}\n`,
        );
      }),
    );

  lab
    .command('node')
    .description('nodes of a several-node cluster lab')
    .command('add')
    .description('add a node (namespace on the fabric, Node object, agent) and pods on it to a running lab')
    .option('--name <name>', 'lab name', DEFAULT_LAB)
    .option('--zone <zone>', 'its topology.kubernetes.io/zone (default zone<k>)')
    .option('--pods <names>', 'comma-separated new pods to place on it')
    .action(
      run(async (opts: { name: string; zone?: string; pods?: string }) => {
        const cluster = await import('./lab-cluster.js');
        await cluster.clusterNodeAdd(opts.name, {
          ...(opts.zone !== undefined ? { zone: opts.zone } : {}),
          ...(opts.pods !== undefined ? { pods: opts.pods.split(',').map((p) => p.trim()) } : {}),
        });
      }),
    );

  const pod = lab.command('pod').description("a cluster lab's pods as a kubelet would change them (status, graceful delete)");
  const podAction = (build: (pod: string, opts: { name: string; gracePeriod?: string }) => PodRequest) =>
    run(async (name: string, opts: { name: string; gracePeriod?: string }) => {
      const cluster = await import('./lab-cluster.js');
      await cluster.clusterRequest(opts.name, build(name, opts));
    });
  pod.command('ready').description('report the pod ready (Ready condition True)').option('--name <name>', 'lab name', DEFAULT_LAB)
    .argument('<pod>', 'pod name').action(podAction((p) => ({ op: 'pod-ready', pod: p, ready: true })));
  pod.command('not-ready').description('report the pod not ready (Ready False): EndpointSlices mark it ready=false').option('--name <name>', 'lab name', DEFAULT_LAB)
    .argument('<pod>', 'pod name').action(podAction((p) => ({ op: 'pod-ready', pod: p, ready: false })));
  pod.command('delete').description('delete the Pod with a grace period: terminating (still serving) until it ends, then torn down and gone')
    .option('--name <name>', 'lab name', DEFAULT_LAB).option('--grace-period <seconds>', 'seconds the pod stays terminating', '30')
    .argument('<pod>', 'pod name').action(podAction((p, o) => {
      const grace = Number(o.gracePeriod);
      if (!Number.isInteger(grace) || grace < 0) throw new LabError('invalid-spec', `--grace-period ${String(o.gracePeriod)}: want whole seconds ≥ 0`, 'gracePeriod');
      return { op: 'pod-delete', pod: p, gracePeriodSeconds: grace };
    }));
  pod.command('finish').description('end a terminating pod now (sandbox, then the object)').option('--name <name>', 'lab name', DEFAULT_LAB)
    .argument('<pod>', 'pod name').action(podAction((p) => ({ op: 'pod-finish', pod: p })));

  lab.command('proxy').description('hand Services over to another proxy on every node of a running cluster lab (kube-proxy rules cleaned up)')
    .option('--name <name>', 'lab name', DEFAULT_LAB).argument('<proxy>', SERVICE_PROXIES.join(' | '))
    .action(run(async (proxy: string, opts: { name: string }) => {
      const cluster = await import('./lab-cluster.js');
      await cluster.clusterRequest(opts.name, { op: 'proxy', proxy: parseServiceProxy(proxy) });
    }));

  registerLabDatapathCommands(lab, run);
  registerLabPolicyCommands(lab);
}

/**
 * The datapath (and with it the native addon) is loaded only by commands that
 * touch programs, so `down` and `exec` work even where the addon is not built.
 */
async function makeLab(withDatapath: boolean): Promise<Lab> {
  if (!withDatapath) return new Lab({ runner: execRunner, paths: defaultLabPaths });
  const { LxcEndpoints } = await import('../lab/lxc-endpoints.js');
  const endpoints = new LxcEndpoints();
  return new Lab({
    runner: execRunner,
    paths: defaultLabPaths,
    datapath: endpoints,
    objectPath: endpoints.objectPath,
  });
}

/** Wraps an action: errors become one line on stderr and exit code 1. */
function run<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const err = asError(e);
      process.stderr.write(`sluice lab: ${err.message}\n`);
      process.exitCode = 1;
    }
  };
}

function runInherited(argv: readonly string[]): Promise<number> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve(2);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0;
}
