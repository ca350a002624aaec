/**
 * A local lab: one node namespace, pods as namespaces behind veths, the lxc
 * programs on every host veth. Creation either completes or is rolled back
 * completely; `down` removes everything a lab may have left, with or without
 * a state file.
 */
import { access, readdir } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { removePinDir } from '../datapath/bpffs.js';
import { type Runner } from './command.js';
import { isProcessAlive } from './controlplane/process.js';
import { httpGet } from './controlplane/readiness.js';
import type { EndpointDatapath, EndpointPrograms } from './endpoint-datapath.js';
import { LabError, asError } from './errors.js';
import { LabNetwork } from './network.js';
import { NetnsOps } from './netns.js';
import { type LabPaths, pinRootFor, policyStorePathFor, statePathFor } from './names.js';
import { type LabPlan, type LabSpec, type PodPlan, checkLabName, resolveSpec } from './spec.js';
import { type LabState, STATE_VERSION, readState, removeState, writeState } from './state.js';

export interface LabDeps {
  readonly runner: Runner;
  readonly paths: LabPaths;
  /** Required to create a lab with datapath: true; absent for network-only use. */
  readonly datapath?: EndpointDatapath;
  /** Recorded in the state file; informational. */
  readonly objectPath?: string;
}

/** What `down` found and removed. */
export interface DownReport {
  readonly name: string;
  readonly netns: readonly string[];
  readonly pinRoot: string | undefined;
  readonly stateFile: string | undefined;
}

export interface PodStatus {
  readonly pod: PodPlan;
  readonly netnsPresent: boolean;
  readonly hostLinkUp: boolean;
  /** undefined for a lab without datapath. */
  readonly programs: EndpointPrograms | undefined;
}

/** A node of a several-node cluster lab, and its agent's /readyz. */
export interface NodeStatus {
  readonly name: string;
  readonly netns: string;
  readonly netnsPresent: boolean;
  readonly podCidr: string;
  readonly internalIp: string | undefined;
  readonly zone: string | undefined;
  /** "ready", "not ready (HTTP 503)", or "down: <why>". */
  readonly agent: string;
}

export interface LabStatusReport {
  readonly state: LabState;
  readonly nodePresent: boolean;
  /** Several-node cluster labs only. */
  readonly nodes?: readonly NodeStatus[];
  readonly pods: readonly PodStatus[];
  /** Cluster labs: whether the process owning the control plane and the agent runs. */
  readonly ownerAlive?: boolean;
  /** Every namespace and link present, every program attached (and a cluster lab's owner alive). */
  readonly healthy: boolean;
}

export class Lab {
  private readonly netns: NetnsOps;
  private readonly network: LabNetwork;

  constructor(private readonly deps: LabDeps) {
    this.netns = new NetnsOps(deps.runner);
    this.network = new LabNetwork(this.netns);
  }

  /** Creates the lab; on any failure removes everything it created and throws. */
  async up(spec: LabSpec): Promise<LabState> {
    const plan = resolveSpec(spec, this.deps.paths);
    const datapath = this.deps.datapath;
    if (plan.datapath && !datapath) {
      throw new LabError('invalid-spec', 'datapath: requested but no datapath was given to the lab', 'datapath');
    }
    const leftovers = await this.leftovers(plan.name);
    if (leftovers.length > 0) {
      throw new LabError(
        'exists',
        `lab "${plan.name}" exists already (${leftovers.join(', ')}); run \`sluice lab down --name ${plan.name}\``,
        'name',
      );
    }

    const statePath = statePathFor(this.deps.paths, plan.name);
    const state = (status: LabState['status']): LabState => ({
      version: STATE_VERSION,
      status,
      createdAt: new Date().toISOString(),
      ...(plan.datapath && this.deps.objectPath !== undefined ? { objectPath: this.deps.objectPath } : {}),
      plan,
    });
    try {
      await this.network.claimNode(plan);
    } catch (e) {
      // Not ours: nothing to roll back (another `up` may own the name now).
      throw new LabError('exists', `lab "${plan.name}": cannot create ${plan.nodeNetns}: ${asError(e).message}`, 'name', {
        cause: e,
      });
    }
    let step = 'state file';
    try {
      // Written before anything else, so a crash half-way is visible to status/down.
      await writeState(statePath, state('creating'));
      step = 'node namespace';
      await this.network.configureNode(plan);
      for (const pod of plan.pods) {
        step = `pod "${pod.name}"`;
        await this.network.createPod(plan, pod);
        if (datapath && plan.datapath) {
          await datapath.attach(plan, pod, { replace: false });
        }
      }
      step = 'state file';
      const ready = state('ready');
      await writeState(statePath, ready);
      return ready;
    } catch (e) {
      const cause = asError(e);
      let rollback = '';
      try {
        await this.teardown(plan.name);
      } catch (te) {
        rollback = `; rollback failed too: ${asError(te).message}`;
      }
      throw new LabError(
        'setup-failed',
        `lab "${plan.name}": creating ${step} failed: ${cause.message}${rollback || '; rolled back'}`,
        step,
        { cause },
      );
    }
  }

  /** Removes everything of the lab. Idempotent; works without a state file. */
  async down(name: string): Promise<DownReport> {
    checkLabName(name);
    return this.teardown(name);
  }

  async state(name: string): Promise<LabState> {
    checkLabName(name);
    const state = await readState(statePathFor(this.deps.paths, name));
    if (!state) throw new LabError('not-found', `lab "${name}" not found (no ${statePathFor(this.deps.paths, name)})`, 'name');
    return state;
  }

  async status(name: string): Promise<LabStatusReport> {
    const state = await this.state(name);
    const { plan } = state;
    const namespaces = new Set(await this.network.existing(plan.name));
    const nodePresent = namespaces.has(plan.nodeNetns);
    const links = new Map<string, Awaited<ReturnType<NetnsOps['links']>>>();
    const linksOf = async (ns: string): Promise<Awaited<ReturnType<NetnsOps['links']>>> => {
      let l = links.get(ns);
      if (l === undefined) links.set(ns, (l = namespaces.has(ns) ? await this.netns.links(ns) : []));
      return l;
    };
    const pods: PodStatus[] = [];
    for (const pod of plan.pods) {
      const nodeNetns = pod.nodeNetns ?? plan.nodeNetns;
      const link = (await linksOf(nodeNetns)).find((l) => l.ifname === pod.hostIfname);
      const programs =
        plan.datapath && this.deps.datapath && link ? await this.deps.datapath.query({ ...plan, nodeNetns }, pod) : undefined;
      pods.push({ pod, netnsPresent: namespaces.has(pod.netns), hostLinkUp: link?.up ?? false, programs });
    }
    const ownerAlive = state.cluster ? isProcessAlive(state.cluster.ownerPid) : undefined;
    const nodes: NodeStatus[] | undefined = state.cluster?.nodes === undefined ? undefined : await Promise.all(state.cluster.nodes.map(async (n) => ({
      name: n.name,
      netns: n.netns,
      netnsPresent: namespaces.has(n.netns),
      podCidr: n.podCidr,
      internalIp: n.internalIp,
      zone: n.zone,
      agent: await agentHealth(n.httpSocket),
    })));
    const healthy =
      ownerAlive !== false &&
      (nodes ?? []).every((n) => n.netnsPresent && n.agent === 'ready') &&
      state.status === 'ready' &&
      nodePresent &&
      pods.every(
        (p) =>
          p.netnsPresent &&
          p.hostLinkUp &&
          (!plan.datapath || (p.programs?.fromContainer !== undefined && p.programs.toContainer !== undefined)),
      );
    return { state, nodePresent, ...(nodes !== undefined ? { nodes } : {}), pods, ...(ownerAlive !== undefined ? { ownerAlive } : {}), healthy };
  }

  /** The pod of a lab, by name. */
  async pod(name: string, pod: string): Promise<{ plan: LabPlan; pod: PodPlan }> {
    const { plan } = await this.state(name);
    const found = plan.pods.find((p) => p.name === pod);
    if (!found) {
      const known = plan.pods.map((p) => `"${p.name}"`).join(', ');
      throw new LabError('unknown-pod', `unknown pod "${pod}" in lab "${name}" (pods: ${known})`, 'pod');
    }
    return { plan, pod: found };
  }

  /** argv that runs `cmd` inside the pod's network namespace. */
  async execArgv(name: string, pod: string, cmd: readonly string[]): Promise<string[]> {
    if (cmd.length === 0) throw new LabError('invalid-spec', 'exec: no command given', 'command');
    const found = await this.pod(name, pod);
    return ['ip', 'netns', 'exec', found.pod.netns, ...cmd];
  }

  /**
   * Loads the node's programs afresh (pinned maps reused), pins them in place
   * of the old ones and swaps them in on the pod's veth atomically: the
   * upgrade path, exercised in the lab.
   */
  async reload(name: string, pod: string): Promise<EndpointPrograms> {
    const found = await this.pod(name, pod);
    if ((await this.state(name)).cluster !== undefined) {
      throw new LabError('invalid-spec', `lab "${name}" is a cluster lab: its programs are the CNI's (sluice-cni attached them)`, 'cluster');
    }
    if (!found.plan.datapath || !this.deps.datapath) {
      throw new LabError('invalid-spec', `lab "${name}" has no datapath to reload`, 'datapath');
    }
    return this.deps.datapath.attach(found.plan, found.pod, { replace: true });
  }

  /** Objects of a lab with this name that exist now. */
  private async leftovers(name: string): Promise<string[]> {
    const found = [...(await this.network.existing(name))].map((ns) => `netns ${ns}`);
    const pinRoot = pinRootFor(this.deps.paths, name);
    if (await exists(pinRoot)) found.push(pinRoot);
    const statePath = statePathFor(this.deps.paths, name);
    if (await exists(statePath)) found.push(statePath);
    return found;
  }

  private async teardown(name: string): Promise<DownReport> {
    // Namespaces first: that detaches the programs (their links go away), so
    // nothing runs while the pinned maps are removed.
    const netns = await this.network.destroy(name);
    const pinRoot = pinRootFor(this.deps.paths, name);
    const hadPins = await exists(pinRoot);
    // Refuses anything not below a bpffs mount: a typo never deletes elsewhere.
    removePinDir(pinRoot);
    // The other nodes' pins of a several-node cluster lab: <pinRoot>-node<k>.
    for (const extra of await nodePinRoots(pinRoot)) removePinDir(extra);
    const statePath = statePathFor(this.deps.paths, name);
    const hadState = await exists(statePath);
    await removeState(statePath);
    // Ids of a lab that is gone must not seed a new lab of the same name.
    await removeState(policyStorePathFor(this.deps.paths, name));
    return { name, netns, pinRoot: hadPins ? pinRoot : undefined, stateFile: hadState ? statePath : undefined };
  }
}

/** <pinRoot>-node<k>: pin roots of a cluster lab's nodes 2, 3, … */
async function nodePinRoots(pinRoot: string): Promise<string[]> {
  const prefix = `${basename(pinRoot)}-node`;
  try {
    return (await readdir(dirname(pinRoot))).filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length))).map((n) => `${dirname(pinRoot)}/${n}`);
  } catch {
    return [];
  }
}

/** An agent's /readyz over its HTTP socket, as one word or a reason. */
async function agentHealth(socketPath: string): Promise<string> {
  try {
    const r = await httpGet({ url: 'http://agent/readyz', socketPath, timeoutMs: 2000 });
    return r.status === 200 ? 'ready' : `not ready (HTTP ${r.status})`;
  } catch (e) {
    return `down: ${asError(e).message}`;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
