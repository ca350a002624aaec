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
import { type ClusterAttachment, type ClusterNodeRecord, type ClusterRecord, type LabState, STATE_VERSION, readState, writeState } from '../state.js';
import { AgentProcess, type ProxySettings, type RoutingMode } from './agent-process.js';
import { ApiBridge } from './api-bridge.js';
import { CniRuntime, POD_IFNAME } from './cni-runtime.js';
import { LabFabric } from './fabric.js';
import { FABRIC_IFNAME, clusterCidr, nodeObject, planNodes, type NodePlan } from './nodes.js';
import { clusterObjects, LAST_APPLIED, nodeName, type ClusterObjects, type KubeObject } from './objects.js';
import { PodLifecycle } from './pod-lifecycle.js';
import { kubeProxyMode, type KubeProxyProcess, type ServiceProxy } from './kube-proxy.js';
import { NodeProxies } from './node-proxies.js';

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

/** How many nodes, their zones, and how the agents route between them. */
export interface ClusterOptions {
  /** Default 1: the one-node lab. */
  readonly nodes?: number;
  /** topology.kubernetes.io/zone per node (nodes.ts). */
  readonly zones?: readonly string[];
  /** A one-node lab's node on the lab fabric too (nodes.ts); several nodes always are. */
  readonly fabric?: boolean;
  /** The agents' `routing` (default native; a one-node lab has nobody to route to). */
  readonly routing?: RoutingMode;
  /**
   * What implements Services on the nodes (default sluice). A kube-proxy
   * mode runs the real kube-proxy in every node's namespace (kube-proxy.ts);
   * it needs nodes with an address and a default route: --nodes 2 or more, or --fabric.
   */
  readonly proxy?: ServiceProxy;
}

/** One node of the lab: its namespace, agent, CNI and API bridge. */
export interface LabNode {
  readonly plan: NodePlan;
  readonly agent: AgentProcess;
  readonly cni: CniRuntime;
}

/** What `downCluster` removed beyond the generic lab parts. */
export interface ClusterDownReport extends DownReport {
  readonly cluster: readonly string[];
}

export class ClusterLab {
  private attachments: ClusterAttachment[] = [];
  private pids = new Set<number>();
  private readonly bridges: ApiBridge[] = [];
  private readonly labNodes: LabNode[];
  private saving: Promise<void> = Promise.resolve();
  private stopped = false;
  private status: LabState['status'] = 'creating';
  /** The plan with what the CNI and the agent assigned (address, host veth, endpoint id). */
  private statePlan: LabPlan;
  /** What a kubelet would do with the pods' objects: status, readiness, graceful deletes. */
  private readonly lifecycle: PodLifecycle;
  /** What implements Services on the nodes, and the kube-proxies. */
  private readonly proxies: NodeProxies;

  private constructor(
    private readonly deps: ClusterLabDeps,
    readonly plan: LabPlan,
    readonly dir: string,
    readonly createdAt: string,
    private cp: ControlPlane | undefined,
    nodes: readonly LabNode[],
    private readonly routing: RoutingMode,
    proxy: ServiceProxy,
  ) {
    this.statePlan = plan;
    this.labNodes = [...nodes];
    this.lifecycle = new PodLifecycle({
      kubectl: (args) => this.kubectl(args),
      teardown: (pod) => this.teardownPod(pod),
      log: (line) => this.log(line),
    });
    this.proxies = new NodeProxies({
      runner: deps.runner,
      kubeconfig: this.kubeconfig,
      clusterCidr: clusterCidr(plan),
      started: (pid) => {
        this.pids.add(pid);
        return this.save();
      },
      log: (line) => this.log(line),
    }, proxy);
  }

  /** The node by name; node 1 when name is undefined (a one-node lab records none). */
  private nodeOf(name: string | undefined): LabNode {
    const n = this.labNodes.find((x) => x.plan.name === name) ?? this.labNodes[0];
    if (n === undefined) throw new LabError('setup-failed', 'the lab has no nodes', 'nodes');
    return n;
  }

  /** Node 1's agent (the one-node lab's only one). */
  get agent(): AgentProcess {
    return this.nodeOf(undefined).agent;
  }

  /** Node 1's CNI. */
  get cni(): CniRuntime {
    return this.nodeOf(undefined).cni;
  }

  get nodes(): readonly LabNode[] {
    return this.labNodes;
  }

  /** The node by Node name. */
  node(name: string): LabNode {
    const n = this.labNodes.find((x) => x.plan.name === name);
    if (n === undefined) throw new LabError('unknown-pod', `unknown node "${name}" in lab "${this.plan.name}"`, 'node');
    return n;
  }

  /**
   * Creates the lab; on any failure removes everything it created and throws
   * (setup-failed, naming the step). `manifests`: Pods and Namespaces that
   * describe the lab pods (objects.ts).
   */
  static async up(deps: ClusterLabDeps, spec: LabSpec, manifests: readonly unknown[] = [], options: ClusterOptions = {}): Promise<ClusterLab> {
    const plan = resolveSpec({ ...spec, datapath: true }, deps.paths);
    const nodePlans = planNodes(plan, deps.paths, { ...(options.nodes !== undefined ? { count: options.nodes } : {}), ...(options.zones !== undefined ? { zones: options.zones } : {}), ...(options.fabric === true ? { fabric: true } : {}) });
    const objects = clusterObjects(plan, manifests, nodePlans);
    const proxy = options.proxy ?? 'sluice';
    NodeProxies.check(proxy, nodePlans);
    const netns = new NetnsOps(deps.runner);
    const network = new LabNetwork(netns);
    const dir = clusterDirFor(deps.paths, plan.name);
    const found = [...(await network.existing(plan.name))].map((n) => `netns ${n}`);
    for (const p of [statePathFor(deps.paths, plan.name), dir, ...nodePlans.map((n) => n.pinRoot)]) if (existsSync(p)) found.push(p);
    if (found.length > 0) {
      throw new LabError('exists', `lab "${plan.name}" exists already (${found.join(', ')}); run \`sluice lab down --name ${plan.name}\``, 'name');
    }
    try {
      await network.claimNode(plan);
    } catch (e) {
      throw new LabError('exists', `lab "${plan.name}": cannot create ${plan.nodeNetns}: ${asError(e).message}`, 'name', { cause: e });
    }
    const routing = options.routing ?? 'native';
    const lab = new ClusterLab(deps, plan, dir, new Date().toISOString(), undefined, nodePlans.map((n) => labNode(deps, plan, dir, n, routing, proxySettingsFor(proxy))), routing, proxy);
    let step = 'state file';
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await lab.save();
      for (const n of nodePlans) {
        step = `node namespace ${n.netns}`;
        await lab.createNodeNamespace(netns, network, n);
      }
      step = 'control plane';
      await lab.startControlPlane();
      step = 'API objects';
      await lab.createObjects(objects);
      step = 'agents';
      await Promise.all(lab.labNodes.map((n) => lab.startNode(n)));
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

  /**
   * Adds a node to the running lab: its namespace on the fabric, its Node
   * object (podCIDR and InternalIP as for the others), CNI, API bridge and
   * agent, then `pods` (new lab pods, placed on it). The other agents learn
   * the node from its Node object; none of them restarts.
   */
  async addNode(opts: { readonly zone?: string; readonly pods?: readonly string[] } = {}): Promise<LabNode> {
    const netns = new NetnsOps(this.deps.runner);
    const network = new LabNetwork(netns);
    const [n] = planNodes(this.plan, this.deps.paths, { count: 1, ...(opts.zone !== undefined ? { zones: [opts.zone] } : {}) }, this.labNodes.length + 1);
    if (n === undefined) throw new LabError('invalid-spec', 'no node planned', 'nodes');
    const ln = labNode(this.deps, this.plan, this.dir, n, this.routing, proxySettingsFor(this.proxies.proxy));
    NodeProxies.check(this.proxies.proxy, [n]);
    this.labNodes.push(ln);
    await this.save();
    await this.createNodeNamespace(netns, network, n);
    await this.kubectl(['create', '-f', '-'], JSON.stringify(nodeObject(n)));
    await this.startNode(ln);
    for (const pod of opts.pods ?? []) {
      const added = resolveSpec({ name: this.plan.name, pods: [...this.statePlan.pods.map((p) => p.name), pod], cidr: this.plan.cidr }, this.deps.paths);
      const planned = added.pods.find((p) => p.name === pod);
      if (planned === undefined) throw new LabError('invalid-spec', `pod ${pod} not planned`, 'pods');
      this.statePlan = { ...this.statePlan, pods: [...this.statePlan.pods, planned] };
      const object = clusterObjects({ ...this.plan, pods: [planned] }, [], [n]).pods[0];
      if (object === undefined) throw new LabError('invalid-spec', `pod ${pod} has no object`, 'pods');
      await this.kubectl(['create', '-f', '-'], JSON.stringify(object.object));
      await this.attachPod(netns, pod, object.namespace, object.object);
    }
    return ln;
  }

  /** What implements Services on the nodes now. */
  get proxy(): ServiceProxy {
    return this.proxies.proxy;
  }

  /** The kube-proxy of a node (by Node name), while one runs. */
  kubeProxy(node: string): KubeProxyProcess | undefined {
    return this.proxies.get(node);
  }

  /**
   * Hands Services over to another proxy on every node: the running
   * kube-proxies stop and their rules are removed (`kube-proxy --cleanup`),
   * then the new ones start; resolves once each has synced its rules.
   */
  async useProxy(proxy: ServiceProxy): Promise<void> {
    const settings = proxySettingsFor(proxy);
    const now = proxySettingsFor(this.proxies.proxy);
    if (settings.hostRouting !== now.hostRouting || settings.lbEnabled !== now.lbEnabled) {
      // The agents' datapath stays while they restart; they come back with the other settings.
      for (const n of this.labNodes) {
        await n.agent.stop();
        n.agent.setProxySettings(settings);
        await n.agent.start();
        this.log(`agent on ${n.plan.name}: restarted with hostRouting ${settings.hostRouting}, Services ${settings.lbEnabled ? 'on' : 'off'}`);
      }
    }
    await this.proxies.use(proxy, this.labNodes.map((n) => n.plan));
    await this.save();
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
   * Makes a pod ready or not ready, as a kubelet reports a readiness probe
   * (the Pod's Ready condition; EndpointSlices follow it).
   */
  setPodReady(pod: string, ready: boolean): Promise<void> {
    return this.lifecycle.setReady(this.pod(pod).name, ready);
  }

  /**
   * Deletes a pod's object with a grace period: it is terminating (deletion
   * timestamp set) and keeps serving until the period ends or `finishPod`;
   * then its sandbox is torn down (CNI DEL, namespace) and the object deleted
   * for good. 0: at once. Resolves when the delete is asked for.
   */
  deletePod(pod: string, gracePeriodSeconds: number): Promise<{ readonly deadline: Date }> {
    return this.lifecycle.delete(this.pod(pod).name, gracePeriodSeconds);
  }

  /** Ends a (terminating) pod now: sandbox, then object. */
  finishPod(pod: string): Promise<void> {
    return this.lifecycle.finish(this.pod(pod).name);
  }

  /**
   * Removes everything: CNI DEL of every pod while the agent still answers,
   * then the agent, the control plane, the namespaces, pins, state and dir.
   * Idempotent; keeps going past failures and reports them at the end.
   */
  async stop(): Promise<ClusterDownReport> {
    if (this.stopped) return { name: this.plan.name, netns: [], pinRoot: undefined, stateFile: undefined, cluster: [] };
    this.stopped = true;
    this.lifecycle.close();
    const errors: string[] = [];
    const removed: string[] = [];
    for (const a of [...this.attachments].reverse()) {
      const node = this.nodeOf(a.node);
      if (!node.agent.running) continue;
      try {
        await node.cni.del({ containerId: a.containerId, netns: a.netns, podNamespace: a.namespace, podName: a.pod });
        removed.push(`CNI DEL ${a.namespace}/${a.pod}`);
      } catch (e) {
        errors.push(asError(e).message);
      }
    }
    errors.push(...await this.proxies.stop());
    for (const n of this.labNodes) {
      await n.agent.stop().catch((e: unknown) => errors.push(`agent${n.plan.index > 1 ? ` of ${n.plan.name}` : ''}: ${asError(e).message}`));
    }
    for (const b of this.bridges) await b.stop().catch((e: unknown) => errors.push(`API bridge: ${asError(e).message}`));
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

  /** A node's namespace (ip_forward on, IPv6 off), on the fabric when the lab has several nodes. */
  private async createNodeNamespace(netns: NetnsOps, network: LabNetwork, n: NodePlan): Promise<void> {
    if (n.index > 1) await netns.add(n.netns);
    await network.configureNode({ ...this.plan, nodeNetns: n.netns });
    await mkdir(n.dir, { recursive: true, mode: 0o700 });
    if (n.internalIp === undefined) return;
    const fabric = new LabFabric(netns, this.plan.name);
    if (!(await fabric.exists())) await fabric.create();
    // Node 1 of a lab that started with one node joins the fabric with the second.
    for (const other of this.labNodes) {
      if (other.plan.internalIp !== undefined || other.plan.index === n.index) continue;
      throw new LabError('invalid-spec', `node ${other.plan.name} has no fabric address: start the lab with --nodes 2 or more to add nodes`, 'nodes');
    }
    await fabric.attach(n);
  }

  /**
   * A node's CNI install, API bridge (the API server's address inside the
   * node netns, where the agent runs: api-bridge.ts) and agent, up to /readyz.
   */
  private async startNode(n: LabNode): Promise<void> {
    await n.cni.install();
    const bridge = await ApiBridge.start({
      server: this.controlPlane.server,
      netns: netnsPath(n.plan.netns),
      socket: join(n.plan.dir, 'api.sock'),
      logFile: join(n.plan.dir, 'api-forwarder.log'),
    });
    this.bridges.push(bridge);
    this.pids.add(bridge.pid ?? 0);
    await this.save();
    const agentMs = await n.agent.start();
    this.pids.add(n.agent.pid ?? 0);
    await this.save();
    this.log(`sluice-agent${this.labNodes.length > 1 ? ` on ${n.plan.name}` : ''} ready in ${seconds(agentMs)}`);
    await this.proxies.start(n.plan);
  }

  private async createObjects(objects: ClusterObjects): Promise<void> {
    const items = [...objects.nodes, ...objects.namespaces, ...objects.pods.map((p) => p.object)];
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
    const planned = this.statePlan.pods.find((p) => p.name === pod);
    if (!planned) throw new Error(`no planned pod ${pod}`);
    const spec = object['spec'] as { nodeName?: string } | undefined;
    const node = this.nodeOf(spec?.nodeName);
    const multi = this.labNodes.length > 1;
    await netns.add(planned.netns);
    await netns.ip(planned.netns, ['link', 'set', 'lo', 'up']);
    const attachment: ClusterAttachment = {
      pod,
      namespace,
      netns: planned.netns,
      // 64 hex digits, like a runtime's sandbox id; unique per lab incarnation.
      containerId: createHash('sha256').update(`${this.plan.name}/${pod}/${this.createdAt}`).digest('hex'),
      ...(multi ? { node: node.plan.name } : {}),
    };
    this.attachments.push(attachment);
    await this.save();
    const r = await node.cni.add({ containerId: attachment.containerId, netns: planned.netns, podNamespace: namespace, podName: pod });
    // The agent numbers endpoints; identities follow labels, so none is recorded (0).
    const registered = await new EndpointClient(node.agent.config.endpointSocket).get(attachment.containerId, POD_IFNAME);
    await this.lifecycle.running(pod, namespace, object, { ip: r.ipv4, ...(node.plan.internalIp !== undefined ? { hostIp: node.plan.internalIp } : {}) });
    this.statePlan = {
      ...this.statePlan,
      pods: this.statePlan.pods.map((p) => (p.name === pod ? { ...p, ipv4: r.ipv4, hostIfname: r.hostIfname, hostMac: r.hostMac, podMac: r.podMac, endpointId: registered?.endpointId ?? 0, identity: 0, ...(multi ? { node: node.plan.name, nodeNetns: node.plan.netns } : {}) } : p)),
    };
    await this.save();
    this.log(`pod ${namespace}/${pod}: ${r.ipv4} on ${r.hostIfname}${multi ? ` of ${node.plan.name}` : ''} (CNI ADD ${Math.round(r.ms)} ms)`);
  }

  /** A pod's sandbox away (CNI DEL through its node's agent, its namespace), and the pod out of the plan. */
  private async teardownPod(pod: string): Promise<void> {
    const a = this.attachments.find((x) => x.pod === pod);
    if (a === undefined) throw new LabError('unknown-pod', `pod ${pod} has no sandbox`, 'pod');
    await this.nodeOf(a.node).cni.del({ containerId: a.containerId, netns: a.netns, podNamespace: a.namespace, podName: a.pod });
    await new NetnsOps(this.deps.runner).delete(a.netns);
    this.attachments = this.attachments.filter((x) => x !== a);
    this.statePlan = { ...this.statePlan, pods: this.statePlan.pods.filter((p) => p.name !== pod) };
    await this.save();
  }

  /** Writes the state file; writes are queued (the nodes start in parallel, and share one temp file name). */
  private save(): Promise<void> {
    const next = this.saving.then(() => this.writeStateFile());
    this.saving = next.catch(() => undefined);
    return next;
  }

  private async writeStateFile(): Promise<void> {
    const record: ClusterRecord = {
      dir: this.dir,
      kubeconfig: this.kubeconfig,
      kubectl: this.cp?.binaries.kubectl ?? '',
      node: nodeName(this.plan.name),
      ...(this.agent.config.flowsSocket !== undefined ? { flowsSocket: this.agent.config.flowsSocket } : {}),
      ownerPid: process.pid,
      ...(this.cp !== undefined ? { controlPlaneDir: this.cp.dir } : {}),
      pids: [...this.pids].filter((p) => p > 0),
      ...(this.proxies.proxy !== 'sluice' ? { proxy: this.proxies.proxy } : {}),
      attachments: this.attachments,
      ...(this.labNodes.length > 1 ? { nodes: this.labNodes.map(nodeRecord) } : {}),
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
    const exiting: number[] = [];
    for (const pid of c.pids) {
      if (!isProcessAlive(pid)) continue;
      const args = cmdline(pid);
      // Only a process whose command line names the lab's dirs: a pid may have been reused.
      if (args.some((a) => a.startsWith(c.dir) || (c.controlPlaneDir !== undefined && a.startsWith(c.controlPlaneDir)))) {
        process.kill(pid, 'SIGKILL');
        exiting.push(pid);
        removed.push(`process ${pid}`);
      } else if (args.join('') === '') {
        // No command line left: exiting already (the owner's death signals its children), or a zombie.
        exiting.push(pid);
      }
    }
    // A killed process goes asynchronously: down returns once they are gone, not while they exit.
    const exitDeadline = Date.now() + 10_000;
    while (exiting.some(isProcessAlive) && Date.now() < exitDeadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of exiting.filter(isProcessAlive)) removed.push(`process ${pid} (still exiting after 10 s)`);
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

/**
 * The agents' settings under a proxy. kube-proxy's NAT lives in the node's
 * netfilter and conntrack, which must see every pod packet (hostRouting
 * 'kernel'), and the agents leave Services to it (lb.enabled false): with a
 * ClusterIP in Sluice's maps, the pod's program would translate the packet
 * before kube-proxy ever saw it.
 */
function proxySettingsFor(proxy: ServiceProxy): ProxySettings {
  const kube = kubeProxyMode(proxy) !== undefined;
  return { hostRouting: kube ? 'kernel' : 'bpf', lbEnabled: !kube };
}

/** A node's agent and CNI, with its files in the node's dir (node 1: the lab's dir, as in a one-node lab). */
function labNode(deps: ClusterLabDeps, plan: LabPlan, dir: string, n: NodePlan, routing: RoutingMode, proxy: ProxySettings): LabNode {
  const d = n.dir;
  const agent = new AgentProcess({
    kubeconfig: join(dir, 'kubeconfig'),
    nodeName: n.name,
    pinDir: n.pinRoot,
    stateDir: join(d, 'agent'),
    endpointSocket: join(d, 'agent.sock'),
    flowsSocket: join(d, 'hubble.sock'),
    httpSocket: join(d, 'agent-http.sock'),
    netns: netnsPath(n.netns),
    logFile: join(d, 'agent.log'),
    sweep: { ipamDataDir: join(d, 'ipam'), configFile: join(d, 'agent.json') },
    ...(n.internalIp !== undefined ? { routing: { mode: routing, device: FABRIC_IFNAME } } : {}),
    hostRouting: proxy.hostRouting,
    lbEnabled: proxy.lbEnabled,
    ...(deps.agentLogLevel !== undefined ? { logLevel: deps.agentLogLevel } : {}),
    ...(deps.agentMapSizes !== undefined ? { mapSizes: deps.agentMapSizes } : {}),
  });
  const cni = new CniRuntime({
    dir: join(d, 'cni'),
    network: `sluice-${plan.name}`,
    agentSocket: join(d, 'agent.sock'),
    pinRoot: n.pinRoot,
    ipamDir: join(d, 'ipam'),
    nodeNetns: n.netns,
  });
  return { plan: n, agent, cni };
}

function nodeRecord(n: LabNode): ClusterNodeRecord {
  return {
    ...n.plan, httpSocket: n.agent.config.httpSocket, agentLog: n.agent.config.logFile,
    ...(n.agent.config.flowsSocket !== undefined ? { flowsSocket: n.agent.config.flowsSocket } : {}),
  };
}
