/**
 * What implements Services on a cluster lab's nodes, and the kube-proxies
 * when that is a kube-proxy mode: one per node (kube-proxy.ts), started with
 * the node, replaced on every node by `use`, stopped with the lab (their
 * rules go with the node namespaces). A kube-proxy mode needs nodes with an
 * address (the fabric's, which comes with a default route): `check`.
 */
import type { Runner } from '../command.js';
import { findKubeProxy } from '../controlplane/binaries.js';
import { LabError, asError } from '../errors.js';
import { netnsPath } from '../netns.js';
import { join } from 'node:path';
import { KubeProxyProcess, kubeProxyMode, type ServiceProxy } from './kube-proxy.js';
import type { NodePlan } from './nodes.js';

export interface NodeProxiesDeps {
  readonly runner: Runner;
  readonly kubeconfig: string;
  /** kube-proxy's --cluster-cidr. */
  readonly clusterCidr: string;
  /** Told each kube-proxy's pid as soon as it is started (the lab records it for `down`). */
  readonly started: (pid: number) => Promise<void>;
  readonly log?: (line: string) => void;
}

export class NodeProxies {
  private readonly running = new Map<string, KubeProxyProcess>();

  constructor(private readonly deps: NodeProxiesDeps, private current: ServiceProxy) {}

  /** Throws (invalid-spec, or binaries-missing) when `proxy` cannot run on these nodes. */
  static check(proxy: ServiceProxy, nodes: readonly NodePlan[]): void {
    const mode = kubeProxyMode(proxy);
    if (mode === undefined) return;
    if (nodes.some((n) => n.internalIp === undefined)) {
      throw new LabError('invalid-spec', `proxy ${proxy}: kube-proxy needs nodes with an address and a default route: start the lab with --nodes 2 or more, or with --fabric`, 'proxy');
    }
    findKubeProxy({ nft: mode === 'nftables' });
  }

  get proxy(): ServiceProxy {
    return this.current;
  }

  /** The kube-proxy of a node (by Node name), while one runs. */
  get(node: string): KubeProxyProcess | undefined {
    return this.running.get(node);
  }

  /** The node's kube-proxy when the proxy is a kube-proxy mode, up to its first sync; nothing for Sluice's. */
  async start(n: NodePlan): Promise<void> {
    const mode = kubeProxyMode(this.current);
    if (mode === undefined || n.internalIp === undefined) return;
    const kp = new KubeProxyProcess({
      binary: findKubeProxy({ nft: mode === 'nftables' }),
      mode,
      kubeconfig: this.deps.kubeconfig,
      nodeName: n.name,
      nodeIp: n.internalIp,
      clusterCidr: this.deps.clusterCidr,
      netns: netnsPath(n.netns),
      logFile: join(n.dir, 'kube-proxy.log'),
    }, this.deps.runner);
    this.running.set(n.name, kp);
    const synced = kp.start();
    await this.deps.started(kp.pid ?? 0);
    const ms = await synced;
    this.deps.log?.(`kube-proxy (${mode}) on ${n.name} synced in ${(ms / 1000).toFixed(1)} s`);
  }

  /**
   * Hands Services over on every node: the running kube-proxies stop and
   * their rules are removed (`kube-proxy --cleanup`), then the new ones
   * start; resolves once each has synced.
   */
  async use(proxy: ServiceProxy, nodes: readonly NodePlan[]): Promise<void> {
    NodeProxies.check(proxy, nodes);
    const old = [...this.running.values()];
    this.running.clear();
    await Promise.all(old.map(async (kp) => {
      await kp.stop();
      await kp.cleanup();
    }));
    this.current = proxy;
    await Promise.all(nodes.map((n) => this.start(n)));
  }

  /** Stops every kube-proxy (their rules go with the namespaces); the failures, as messages. */
  async stop(): Promise<string[]> {
    const errors: string[] = [];
    for (const kp of this.running.values()) {
      await kp.stop().catch((e: unknown) => errors.push(`kube-proxy on ${kp.config.nodeName}: ${asError(e).message}`));
    }
    return errors;
  }
}
