/**
 * A node for CNI tests, built from real parts and torn down in finally:
 *
 *   sluice-cni-<id>-node      a netns playing the node's host namespace (ip_forward=1):
 *                             every plugin runs inside it (nsenter), so host veths, routes
 *                             and iptables rules never touch the root namespace
 *   sluice-cni-<id>-<pod>     pod namespaces (CNI_NETNS = /var/run/netns/<name>)
 *   /tmp/sluice-cni-<id>/     bin/ (the installed wrapper + Debian plugins), net.d/,
 *                             ipam/, agent state and socket
 *   /sys/fs/bpf/sluice-t-<id> the pinned maps (datapath "bpf")
 *   sluice-agent --datapath none against a fake API server (Node with a podCIDR), in the
 *                             root netns (the installed sluice-cni shim then falls back to the
 *                             Node plugin: "not here") or, agentIn 'node', inside the node
 *                             netns (the shim's fast path: the agent runs the plugin), reaching
 *                             the API server through <dir>/api.sock (a unix socket crosses
 *                             network namespaces; the lab's ApiBridge puts a forwarder in the node netns on the
 *                             API server's port there: src/lab/cluster/api-bridge.ts)
 *
 * Plugins are invoked as libcni does: CNI_* environment + config on stdin,
 * result or error object on stdout.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EndpointClient } from '../../../src/endpoint/client.js';
import type { CniExecStats } from '../../../src/endpoint/contract.js';
import { ApiBridge } from '../../../src/lab/cluster/api-bridge.js';
import { runWithInput } from '../../../src/lab/command.js';
import { ensureBpffsMounted, ensurePinDir, removePinDir } from '../../../src/datapath/bpffs.js';
import { FakeApiServer } from '../../agent/helpers/fake-apiserver.js';
import { namespace, node, PATHS } from '../../agent/helpers/objects.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CNI_MAIN = join(DIST, 'src', 'cni', 'main.js');
const AGENT_MAIN = join(DIST, 'src', 'agent', 'main.js');
export const DEBIAN_CNI = '/usr/lib/cni';
export const NODE_NAME = 'node-a';

export interface PluginRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed (result, version or error object), or undefined when empty. */
  readonly json: Record<string, unknown> | undefined;
  readonly ms: number;
}

export interface CallArgs {
  readonly command: string;
  readonly containerId?: string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly args?: string;
  /** Extra environment (test hooks), or overrides; undefined values remove a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Run the plugin in a mount namespace of its own (`unshare -m`, private propagation), as a
   * runtime on a node runs it apart from the agent's pod; this shell script runs there first
   * (mounts that hide or replace paths), then the plugin.
   */
  readonly mountNs?: string;
}

export function sh(file: string, args: readonly string[], input?: string): string {
  const r = spawnSync(file, [...args], { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

export class CniNode {
  readonly id = randomBytes(4).toString('hex');
  readonly dir = `/tmp/sluice-cni-${this.id}`;
  readonly nodeNs = `sluice-cni-${this.id}-node`;
  readonly binDir = join(this.dir, 'bin');
  readonly confDir = join(this.dir, 'net.d');
  readonly ipamDir = join(this.dir, 'ipam');
  readonly socket = join(this.dir, 'agent.sock');
  readonly pinRoot = `/sys/fs/bpf/sluice-t-${this.id}`;
  readonly network = `sluice${this.id}`;
  readonly podNamespaces: string[] = [];
  /** The file the installed wrapper runs (bundle or main.js). */
  entry = '';
  readonly api = new FakeApiServer();
  /** Appended to the agent's command line (a later flag wins: `--datapath bpf`, `--config FILE`). */
  agentArgs: readonly string[] = [];
  private agent: ChildProcess | undefined;
  private agentLog = '';
  private agentIn: 'root' | 'node' = 'root';
  /** The agent's --state-dir (endpoints.json, fsync'd per change); setUp's stateOnTmpfs moves it to /dev/shm. */
  private agentStateDir = join(this.dir, 'agent-state');
  private apiBridge: ApiBridge | undefined;

  constructor(readonly podCIDR = '10.244.7.0/24') {}

  /** Node netns, dirs, installed plugin (entry: what the wrapper runs, see install --entry), pin root; the agent when asked. */
  async setUp(opts: { agent: boolean; entry?: 'auto' | 'bundle' | 'esm'; agentIn?: 'root' | 'node'; stateOnTmpfs?: boolean } = { agent: true }): Promise<void> {
    this.agentIn = opts.agentIn ?? 'root';
    // On a node the agent's state dir is /var/run/sluice, a tmpfs; /tmp (and /run) on this VM are ext4.
    if (opts.stateOnTmpfs === true) this.agentStateDir = `/dev/shm/sluice-cni-${this.id}-agent-state`;
    mkdirSync(this.dir, { recursive: true });
    sh('ip', ['netns', 'add', this.nodeNs]);
    this.nsExec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    sh('ip', ['-n', this.nodeNs, 'link', 'set', 'lo', 'up']);
    ensureBpffsMounted();
    ensurePinDir(this.pinRoot);
    const installed = sh(process.execPath, [CNI_MAIN, 'install', '--bin-dir', this.binDir, '--conf-dir', this.confDir, '--name', this.network, '--entry', opts.entry ?? 'auto']);
    this.entry = /\(runs (.*)\)/.exec(installed)?.[1] ?? '';
    for (const p of ['portmap', 'loopback', 'bandwidth', 'bridge', 'host-local']) {
      if (existsSync(join(DEBIAN_CNI, p))) symlinkSync(join(DEBIAN_CNI, p), join(this.binDir, p));
    }
    await this.api.start();
    this.api.writeKubeconfig(join(this.dir, 'kubeconfig'));
    this.api.put(PATHS.namespaces, namespace('default'));
    this.api.put(PATHS.nodes, node(NODE_NAME, this.podCIDR));
    if (this.agentIn === 'node') await this.bridgeApiIntoNodeNs();
    if (opts.agent) await this.startAgent();
  }

  /** The fake API server's 127.0.0.1:<port>, reachable from inside the node netns at the same address. */
  private async bridgeApiIntoNodeNs(): Promise<void> {
    this.apiBridge = await ApiBridge.start({
      server: this.api.url,
      netns: this.netnsPath(this.nodeNs),
      socket: join(this.dir, 'api.sock'),
      logFile: join(this.dir, 'api-forwarder.log'),
    });
  }

  /** The agent's in-process CNI counters (GET /v1/cni/exec): invocations it ran, fallbacks by reason. */
  inProcessStats(): Promise<CniExecStats> {
    return this.agentClient().inProcessStats();
  }

  /** The plugin config (one plugin, as a runtime passes it), with overrides. */
  conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      cniVersion: '1.1.0',
      name: this.network,
      type: 'sluice-cni',
      agentSocket: this.socket,
      pinRoot: this.pinRoot,
      ipam: { type: 'sluice', dataDir: this.ipamDir },
      ...extra,
    };
  }

  netnsPath(name: string): string {
    return `/var/run/netns/${name}`;
  }

  /** A new pod namespace (lo up, IPv6 off); returns its path. */
  addPodNetns(suffix: string): string {
    const name = `sluice-cni-${this.id}-${suffix}`;
    sh('ip', ['netns', 'add', name]);
    this.podNamespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return this.netnsPath(name);
  }

  removePodNetns(path: string): void {
    const name = path.split('/').pop() ?? '';
    spawnSync('ip', ['netns', 'delete', name]);
  }

  /** Runs a command inside the node namespace. */
  nsExec(argv: readonly string[], input?: string): string {
    return sh('nsenter', [`--net=${this.netnsPath(this.nodeNs)}`, ...argv], input);
  }

  /** Invokes the installed plugin as libcni does, inside the node namespace. */
  call(c: CallArgs, conf: unknown, plugin = 'sluice-cni'): Promise<PluginRun> {
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: c.command, CNI_PATH: `${this.binDir}:${DEBIAN_CNI}` };
    if (c.containerId !== undefined) env['CNI_CONTAINERID'] = c.containerId;
    if (c.netns !== undefined) env['CNI_NETNS'] = c.netns;
    if (c.ifname !== undefined) env['CNI_IFNAME'] = c.ifname;
    if (c.args !== undefined) env['CNI_ARGS'] = c.args;
    for (const [k, v] of Object.entries(c.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const argv = [`--net=${this.netnsPath(this.nodeNs)}`, join(this.binDir, plugin)];
    const stdin = typeof conf === 'string' ? conf : JSON.stringify(conf);
    if (c.mountNs === undefined) return runProcess('nsenter', argv, env, stdin);
    return runProcess('unshare', ['-m', '--propagation', 'private', 'sh', '-ec', `${c.mountNs}\nexec nsenter "$@"`, 'sh', ...argv], env, stdin);
  }

  async startAgent(): Promise<void> {
    if (this.agent !== undefined) return;
    const nsenter = this.agentIn === 'node' ? ['nsenter', `--net=${this.netnsPath(this.nodeNs)}`] : [];
    const [file, ...prefix] = [...nsenter, process.execPath] as unknown as [string, ...string[]];
    const child = spawn(file, [
      ...prefix, AGENT_MAIN, '--datapath', 'none', '--kubeconfig', join(this.dir, 'kubeconfig'), '--node-name', NODE_NAME,
      '--state-dir', this.agentStateDir, '--endpoint-socket', this.socket, '--http-listen', '127.0.0.1:0', '--log-level', 'warn',
      ...this.agentArgs,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (this.agentLog += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.agentLog += d.toString()));
    this.agent = child;
    const client = new EndpointClient(this.socket, { timeoutMs: 2000 });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        if ((await client.status()).ready && (await client.node()).known) return;
      } catch {
        // not up yet
      }
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sluice-agent did not become ready: ${this.agentLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stopAgent(): Promise<void> {
    const child = this.agent;
    this.agent = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  /** What the agent printed so far (JSON log lines). */
  agentOutput(): string {
    return this.agentLog;
  }

  agentClient(): EndpointClient {
    return new EndpointClient(this.socket);
  }

  /** IPAM allocations on disk: ip → owner. */
  allocations(network = this.network): Map<string, string> {
    const dir = join(this.ipamDir, network);
    if (!existsSync(dir)) return new Map();
    return new Map(readdirSync(dir).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n)).map((n) => [n, readlinkSync(join(dir, n))]));
  }

  /** Host-side links in the node namespace named lxc*. */
  hostVeths(): string[] {
    const links = JSON.parse(sh('ip', ['-n', this.nodeNs, '-j', 'link', 'show'])) as { ifname: string }[];
    return links.map((l) => l.ifname).filter((n) => n.startsWith('lxc'));
  }

  /** Routes in the node namespace to pod /32s. */
  hostRoutes(): string[] {
    const routes = JSON.parse(sh('ip', ['-n', this.nodeNs, '-j', 'route', 'show'])) as { dst: string }[];
    return routes.map((r) => r.dst).filter((d) => d.startsWith(this.podCIDR.split('.').slice(0, 3).join('.')));
  }

  async tearDown(): Promise<void> {
    await this.stopAgent().catch(() => undefined);
    await this.api.stop().catch(() => undefined);
    await this.apiBridge?.stop().catch(() => undefined);
    for (const ns of [...this.podNamespaces, this.nodeNs]) spawnSync('ip', ['netns', 'delete', ns]);
    try {
      removePinDir(this.pinRoot);
    } catch {
      // reported by scripts/test's leak check if it stays
    }
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.agentStateDir, { recursive: true, force: true });
  }
}

export async function runProcess(file: string, args: readonly string[], env: Record<string, string>, input: string): Promise<PluginRun> {
  const start = performance.now();
  const { exitCode, signal, stdout, stderr } = await runWithInput(file, args, env, input);
  let json: Record<string, unknown> | undefined;
  try {
    json = stdout.trim() === '' ? undefined : (JSON.parse(stdout) as Record<string, unknown>);
  } catch {
    json = undefined;
  }
  return { exitCode, signal, stdout, stderr, json, ms: performance.now() - start };
}

/** The run, or an error naming what failed and how, when it did not exit 0. */
export function must(r: PluginRun, what: string): PluginRun {
  if (r.exitCode !== 0) throw new Error(`${what}: exit ${r.exitCode} ${r.signal ?? ''}: ${r.stdout}${r.stderr}`);
  return r;
}

/** Pod args as the kubelet sends them. */
export function podArgs(name: string, ns = 'default'): string {
  return `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=x`;
}
