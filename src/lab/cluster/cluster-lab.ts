/**
 * A cluster lab: the lab's node and pod namespaces, but pods are made the
 * way a Kubernetes node makes them. A real control plane
 * (src/lab/controlplane) holds the Node (spec.podCIDR = the lab's cidr), the
 * Namespaces and the Pods (bound with spec.nodeName); the real sluice-agent
 * (--datapath bpf, pins under the lab's pin root) watches it; each pod's
 * namespace is attached by the real sluice-cni, called as a runtime calls it;
 * the Pod's status then gets the CNI's address and Ready, as a kubelet would
 * report. Policies then flow kubectl → apiserver → agent → maps.
 *
 * The object that started the lab owns the control plane and the agent
 * (they die with its process, even on SIGKILL). The state file lists, from
 * before each step, what the step creates, so `downCluster` undoes a lab
 * whose owner is gone, or a half-made one.
 */
import { createHash } from 'node:crypto';
import { EndpointClient } from '../../endpoint/client.js';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlPlane, type ControlPlaneOptions } from '../controlplane/controlplane.js';
import { writeKubeconfig } from '../controlplane/kubeconfig.js';
import { isProcessAlive } from '../controlplane/process.js';
import { type Runner } from '../command.js';
import { LabError, asError } from '../errors.js';
import { Lab, type DownReport } from '../lab.js';
import { NetnsOps, netnsPath } from '../netns.js';
import { LabNetwork } from '../network.js';
import { type LabPaths, clusterDirFor, clusterLogFor, statePathFor } from '../names.js';
import { type LabPlan, type LabSpec, type PodPlan, checkLabName, resolveSpec } from '../spec.js';
import { type ClusterAttachment, type ClusterRecord, type LabState, STATE_VERSION, readState, writeState } from '../state.js';
import { AgentProcess } from './agent-process.js';
import { ApiBridge } from './api-bridge.js';
import { CniRuntime, POD_IFNAME } from './cni-runtime.js';
import { clusterObjects, LAST_APPLIED, nodeName, runningStatus, type ClusterObjects, type KubeObject } from './objects.js';

export interface ClusterLabDeps {
  readonly runner: Runner;
  readonly paths: LabPaths;
  readonly controlPlane?: ControlPlaneOptions;
  /** Progress lines ("control plane ready in 6.1 s"). */
  readonly log?: (line: string) => void;
  readonly agentLogLevel?: string;
  /** The agent's `--map-size NAME=N` (e.g. a tiny policy map to test a full one). */
  readonly agentMapSizes?: Readonly<Record<string, number>>;
}

/** What `downCluster` removed beyond the generic lab parts. */
export interface ClusterDownReport extends DownReport {
  readonly cluster: readonly string[];
}

export class ClusterLab {
  private attachments: ClusterAttachment[] = [];
  private pids = new Set<number>();
  private apiBridge: ApiBridge | undefined;
  private stopped = false;
  private status: LabState['status'] = 'creating';
  /** The plan with what the CNI and the agent assigned (address, host veth, endpoint id). */
  private statePlan: LabPlan;

  private constructor(
    private readonly deps: ClusterLabDeps,
    readonly plan: LabPlan,
    readonly dir: string,
    readonly createdAt: string,
    private cp: ControlPlane | undefined,
    readonly agent: AgentProcess,
    readonly cni: CniRuntime,
  ) {
    this.statePlan = plan;
  }

  /**
   * Creates the lab; on any failure removes everything it created and throws
   * (setup-failed, naming the step). `manifests`: Pods and Namespaces that
   * describe the lab pods (objects.ts).
   */
  static async up(deps: ClusterLabDeps, spec: LabSpec, manifests: readonly unknown[] = []): Promise<ClusterLab> {
    const plan = resolveSpec({ ...spec, datapath: true }, deps.paths);
    const objects = clusterObjects(plan, manifests);
    const netns = new NetnsOps(deps.runner);
    const network = new LabNetwork(netns);
    const dir = clusterDirFor(deps.paths, plan.name);
    const found = [...(await network.existing(plan.name))].map((n) => `netns ${n}`);
    for (const p of [statePathFor(deps.paths, plan.name), dir, plan.pinRoot]) if (existsSync(p)) found.push(p);
    if (found.length > 0) {
      throw new LabError('exists', `lab "${plan.name}" exists already (${found.join(', ')}); run \`sluice lab down --name ${plan.name}\``, 'name');
    }
    try {
      await network.claimNode(plan);
    } catch (e) {
      throw new LabError('exists', `lab "${plan.name}": cannot create ${plan.nodeNetns}: ${asError(e).message}`, 'name', { cause: e });
    }
    const agent = new AgentProcess({
      kubeconfig: join(dir, 'kubeconfig'),
      nodeName: nodeName(plan.name),
      pinDir: plan.pinRoot,
      stateDir: join(dir, 'agent'),
      endpointSocket: join(dir, 'agent.sock'),
      flowsSocket: join(dir, 'hubble.sock'),
      httpSocket: join(dir, 'agent-http.sock'),
      netns: netnsPath(plan.nodeNetns),
      logFile: join(dir, 'agent.log'),
      sweep: { ipamDataDir: join(dir, 'ipam'), configFile: join(dir, 'agent.json') },
      ...(deps.agentLogLevel !== undefined ? { logLevel: deps.agentLogLevel } : {}),
      ...(deps.agentMapSizes !== undefined ? { mapSizes: deps.agentMapSizes } : {}),
    });
    const cni = new CniRuntime({
      dir: join(dir, 'cni'),
      network: `sluice-${plan.name}`,
      agentSocket: join(dir, 'agent.sock'),
      pinRoot: plan.pinRoot,
      ipamDir: join(dir, 'ipam'),
      nodeNetns: plan.nodeNetns,
    });
    const lab = new ClusterLab(deps, plan, dir, new Date().toISOString(), undefined, agent, cni);
    let step = 'state file';
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await lab.save();
      step = 'node namespace';
      await network.configureNode(plan);
      step = 'control plane';
      await lab.startControlPlane();
      step = 'API objects';
      await lab.createObjects(objects);
      step = 'CNI install';
      await cni.install();
      step = 'API bridge';
      await lab.startApiBridge();
      step = 'agent';
      const agentMs = await agent.start();
      lab.pids.add(agent.pid ?? 0);
      await lab.save();
      lab.log(`sluice-agent ready in ${seconds(agentMs)}`);
      for (const p of objects.pods) {
        step = `pod "${p.pod}"`;
        await lab.attachPod(netns, p.pod, p.namespace, p.object);
      }
      step = 'state file';
      lab.status = 'ready';
      await lab.save();
      return lab;
    } catch (e) {
      const cause = asError(e);
      let rollback = '';
      try {
        await lab.stop();
      } catch (te) {
        rollback = `; rollback failed too: ${asError(te).message}`;
      }
      throw new LabError('setup-failed', `lab "${plan.name}": ${step} failed: ${cause.message}${rollback || '; rolled back'}`, step, { cause });
    }
  }

  get controlPlane(): ControlPlane {
    if (this.cp === undefined) throw new LabError('setup-failed', 'the control plane is not running', 'control plane');
    return this.cp;
  }

  get kubeconfig(): string {
    return join(this.dir, 'kubeconfig');
  }

  /** The plan as the pods really are (addresses and host veths from the CNI). */
  get livePlan(): LabPlan {
    return this.statePlan;
  }

  kubectl(args: readonly string[], input?: string): Promise<string> {
    return this.controlPlane.kubectl(args, input === undefined ? {} : { input });
  }

  /** The pod, with its CNI address. */
  pod(name: string): PodPlan {
    const p = this.statePlan.pods.find((x) => x.name === name);
    if (!p) throw new LabError('unknown-pod', `unknown pod "${name}" in lab "${this.plan.name}"`, 'pod');
    return p;
  }

  /**
   * Removes everything: CNI DEL of every pod while the agent still answers,
   * then the agent, the control plane, the namespaces, pins, state and dir.
   * Idempotent; keeps going past failures and reports them at the end.
   */
  async stop(): Promise<ClusterDownReport> {
    if (this.stopped) return { name: this.plan.name, netns: [], pinRoot: undefined, stateFile: undefined, cluster: [] };
    this.stopped = true;
    const errors: string[] = [];
    const removed: string[] = [];
    if (this.agent.running) {
      for (const a of [...this.attachments].reverse()) {
        try {
          await this.cni.del({ containerId: a.containerId, netns: a.netns, podNamespace: a.namespace, podName: a.pod });
          removed.push(`CNI DEL ${a.namespace}/${a.pod}`);
        } catch (e) {
          errors.push(asError(e).message);
        }
      }
    }
    await this.agent.stop().catch((e: unknown) => errors.push(`agent: ${asError(e).message}`));
    await this.apiBridge?.stop().catch((e: unknown) => errors.push(`API bridge: ${asError(e).message}`));
    if (this.cp !== undefined) {
      await this.cp.stop().catch((e: unknown) => errors.push(`control plane: ${asError(e).message}`));
      removed.push(`control plane ${this.cp.dir}`);
    }
    const report = await removeLabFiles(this.deps, this.plan.name, removed);
    if (errors.length > 0) throw new LabError('setup-failed', `lab "${this.plan.name}" down: ${errors.join('; ')}`, 'down');
    return report;
  }

  private log(line: string): void {
    this.deps.log?.(line);
  }

  private async startControlPlane(): Promise<void> {
    const cp = await ControlPlane.start(this.deps.controlPlane ?? {});
    this.cp = cp;
    for (const pid of cp.pids().values()) this.pids.add(pid);
    writeKubeconfig(this.kubeconfig, { server: cp.server, caPem: cp.caPem, token: cp.token, cluster: `sluice-${this.plan.name}` });
    await this.save();
    this.log(`control plane ready in ${seconds(cp.timings.totalMs)} (${cp.server})`);
  }

  /** The API server's address inside the node netns, where the agent runs (api-bridge.ts). */
  private async startApiBridge(): Promise<void> {
    this.apiBridge = await ApiBridge.start({
      server: this.controlPlane.server,
      netns: netnsPath(this.plan.nodeNetns),
      socket: join(this.dir, 'api.sock'),
      logFile: join(this.dir, 'api-forwarder.log'),
    });
    this.pids.add(this.apiBridge.pid ?? 0);
    await this.save();
  }

  private async createObjects(objects: ClusterObjects): Promise<void> {
    const items = [objects.node, ...objects.namespaces, ...objects.pods.map((p) => p.object)];
    // create, not apply: no last-applied annotation, so the user's later
    // `kubectl apply` of the same Pods changes nothing it may not change.
    await this.kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
    for (const p of objects.pods) {
      if (p.lastApplied === undefined) continue;
      const patch = { metadata: { annotations: { [LAST_APPLIED]: p.lastApplied } } };
      await this.kubectl(['patch', 'pod', p.pod, '-n', p.namespace, '--type=merge', '-p', JSON.stringify(patch)]);
    }
  }

  private async attachPod(netns: NetnsOps, pod: string, namespace: string, object: KubeObject): Promise<void> {
    const planned = this.plan.pods.find((p) => p.name === pod);
    if (!planned) throw new Error(`no planned pod ${pod}`);
    await netns.add(planned.netns);
    await netns.ip(planned.netns, ['link', 'set', 'lo', 'up']);
    const attachment: ClusterAttachment = {
      pod,
      namespace,
      netns: planned.netns,
      // 64 hex digits, like a runtime's sandbox id; unique per lab incarnation.
      containerId: createHash('sha256').update(`${this.plan.name}/${pod}/${this.createdAt}`).digest('hex'),
    };
    this.attachments.push(attachment);
    await this.save();
    const r = await this.cni.add({ containerId: attachment.containerId, netns: planned.netns, podNamespace: namespace, podName: pod });
    // The agent numbers endpoints; identities follow labels, so none is recorded (0).
    const registered = await new EndpointClient(this.agent.config.endpointSocket).get(attachment.containerId, POD_IFNAME);
    await this.kubectl(['patch', 'pod', pod, '-n', namespace, '--subresource=status', '--type=merge', '-p', JSON.stringify(runningStatus(object, r.ipv4, new Date()))]);
    this.statePlan = {
      ...this.statePlan,
      pods: this.statePlan.pods.map((p) => (p.name === pod ? { ...p, ipv4: r.ipv4, hostIfname: r.hostIfname, hostMac: r.hostMac, podMac: r.podMac, endpointId: registered?.endpointId ?? 0, identity: 0 } : p)),
    };
    await this.save();
    this.log(`pod ${namespace}/${pod}: ${r.ipv4} on ${r.hostIfname} (CNI ADD ${Math.round(r.ms)} ms)`);
  }

  private async save(): Promise<void> {
    const record: ClusterRecord = {
      dir: this.dir,
      kubeconfig: this.kubeconfig,
      kubectl: this.cp?.binaries.kubectl ?? '',
      node: nodeName(this.plan.name),
      ...(this.agent.config.flowsSocket !== undefined ? { flowsSocket: this.agent.config.flowsSocket } : {}),
      ownerPid: process.pid,
      ...(this.cp !== undefined ? { controlPlaneDir: this.cp.dir } : {}),
      pids: [...this.pids].filter((p) => p > 0),
      attachments: this.attachments,
    };
    await writeState(statePathFor(this.deps.paths, this.plan.name), {
      version: STATE_VERSION,
      status: this.status,
      createdAt: this.createdAt,
      plan: this.statePlan,
      cluster: record,
    });
  }
}

/**
 * `lab down` for any lab, from another process: a live owner of a cluster
 * lab is asked to stop (SIGTERM: it DELs its pods through the CNI while its
 * agent runs), then whatever is left is removed — processes the state file
 * lists, the control plane's dir, namespaces, pins, files. Works with no
 * state file, or after the owner died half-way.
 */
export async function downCluster(deps: ClusterLabDeps, name: string, ownerGraceMs = 90_000): Promise<ClusterDownReport> {
  checkLabName(name);
  const removed: string[] = [];
  let state: LabState | undefined;
  try {
    state = await readState(statePathFor(deps.paths, name));
  } catch (e) {
    removed.push(`unreadable state (${asError(e).message})`);
  }
  const c = state?.cluster;
  if (c !== undefined) {
    if (c.ownerPid !== process.pid && ownsLab(c.ownerPid, name)) {
      process.kill(c.ownerPid, 'SIGTERM');
      const deadline = Date.now() + ownerGraceMs;
      while (isProcessAlive(c.ownerPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (isProcessAlive(c.ownerPid)) process.kill(c.ownerPid, 'SIGKILL');
      removed.push(`lab process ${c.ownerPid}`);
    }
    for (const pid of c.pids) {
      // Only a process whose command line names the lab's dirs: a pid may have been reused.
      if (isProcessAlive(pid) && cmdline(pid).some((a) => a.startsWith(c.dir) || (c.controlPlaneDir !== undefined && a.startsWith(c.controlPlaneDir)))) {
        process.kill(pid, 'SIGKILL');
        removed.push(`process ${pid}`);
      }
    }
    if (c.controlPlaneDir !== undefined && existsSync(c.controlPlaneDir)) {
      await rm(c.controlPlaneDir, { recursive: true, force: true });
      removed.push(c.controlPlaneDir);
    }
  }
  return removeLabFiles(deps, name, removed);
}

/** The generic lab teardown (namespaces, pins, state files) plus the cluster's dir and log. */
async function removeLabFiles(deps: ClusterLabDeps, name: string, removed: string[]): Promise<ClusterDownReport> {
  const report = await new Lab({ runner: deps.runner, paths: deps.paths }).down(name);
  for (const p of [clusterDirFor(deps.paths, name), clusterLogFor(deps.paths, name)]) {
    if (!existsSync(p)) continue;
    await rm(p, { recursive: true, force: true });
    removed.push(p);
  }
  return { ...report, cluster: removed };
}

/** Whether `pid` is a `sluice lab up` of this lab (and not a reused pid). */
function ownsLab(pid: number, name: string): boolean {
  if (!isProcessAlive(pid)) return false;
  const args = cmdline(pid);
  const i = args.indexOf('--name');
  return args.includes('lab') && i >= 0 && args[i + 1] === name;
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
