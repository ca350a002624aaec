/**
 * The real kube-proxy (v1.34, scripts/build-controlplane --kube-proxy) on a
 * lab node, the peer Sluice's Services are measured against: one process per
 * node, inside the node's network namespace (`nsenter --net`, which execs:
 * the pid is kube-proxy's), so every iptables or nftables rule it writes is
 * in that namespace and no other. It reaches the API server through the
 * node's API bridge with the lab's kubeconfig, names itself by the Node
 * (--hostname-override), takes the node's InternalIP as its node IP
 * (--bind-address: no wait for the Node object), and counts the lab's pod
 * range as local traffic (--cluster-cidr). It leaves the machine-wide
 * conntrack limits alone (--conntrack-max-per-core=0 and timeouts 0: "as
 * is"): those are not per namespace. Ready once its first full sync of
 * IPv4 rules is done (its "SyncProxyRules complete" line at --v=2).
 */
import { ManagedProcess } from '../controlplane/process.js';
import { waitReady } from '../controlplane/readiness.js';
import type { Runner } from '../command.js';
import { LabError } from '../errors.js';

/** What implements Services on the lab's nodes. */
export type ServiceProxy = 'sluice' | 'kube-proxy-iptables' | 'kube-proxy-nftables';

export const SERVICE_PROXIES: readonly ServiceProxy[] = ['sluice', 'kube-proxy-iptables', 'kube-proxy-nftables'];

export type KubeProxyMode = 'iptables' | 'nftables';

/** The kube-proxy mode of a proxy choice; undefined for Sluice's own. */
export function kubeProxyMode(p: ServiceProxy): KubeProxyMode | undefined {
  return p === 'kube-proxy-iptables' ? 'iptables' : p === 'kube-proxy-nftables' ? 'nftables' : undefined;
}

export function parseServiceProxy(text: string): ServiceProxy {
  const p = SERVICE_PROXIES.find((x) => x === text);
  if (p === undefined) throw new LabError('invalid-spec', `proxy "${text}": want ${SERVICE_PROXIES.join(', ')}`, 'proxy');
  return p;
}

export interface KubeProxyConfig {
  readonly binary: string;
  readonly mode: KubeProxyMode;
  readonly kubeconfig: string;
  /** The Node's name (--hostname-override). */
  readonly nodeName: string;
  /** The node's InternalIP. */
  readonly nodeIp: string;
  /** Every pod address of the lab (nodes.ts clusterCidr). */
  readonly clusterCidr: string;
  /** Path of the node's network namespace. */
  readonly netns: string;
  readonly logFile: string;
  readonly readyTimeoutMs?: number;
}

/** The line kube-proxy logs (at --v=2) after each sync of a family's rules. */
export const SYNC_DONE = '"SyncProxyRules complete" ipFamily="IPv4"';

/** kube-proxy's command line (pure). */
export function kubeProxyArgs(c: KubeProxyConfig): string[] {
  return [
    // Two words: `lab down` recognises the lab's processes by an argument that starts with the lab's dir.
    '--kubeconfig', c.kubeconfig,
    `--proxy-mode=${c.mode}`,
    `--hostname-override=${c.nodeName}`,
    `--bind-address=${c.nodeIp}`,
    `--cluster-cidr=${c.clusterCidr}`,
    // NodePorts on the node's InternalIP only (not on 127.0.0.1, which would
    // set route_localnet): what kube-proxy itself recommends.
    '--nodeport-addresses=primary',
    '--conntrack-max-per-core=0',
    '--conntrack-tcp-timeout-established=0',
    '--conntrack-tcp-timeout-close-wait=0',
    '--v=2',
  ];
}

export class KubeProxyProcess {
  private proc: ManagedProcess | undefined;

  constructor(readonly config: KubeProxyConfig, private readonly run: Runner) {}

  get pid(): number | undefined {
    return this.proc?.running ? this.proc.pid : undefined;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Starts it and waits for its first IPv4 sync; the milliseconds that took. Fails at once if it exits. */
  start(): Promise<number> {
    if (this.proc?.running) throw new LabError('setup-failed', `kube-proxy on ${this.config.nodeName} is running already`, 'kube-proxy');
    const proc = ManagedProcess.start({
      name: `kube-proxy (${this.config.mode}) on ${this.config.nodeName}`,
      file: 'nsenter',
      args: [`--net=${this.config.netns}`, this.config.binary, ...kubeProxyArgs(this.config)],
      logFile: this.config.logFile,
    });
    this.proc = proc;
    return waitReady({
      component: proc.name,
      process: proc,
      deadlineMs: this.config.readyTimeoutMs ?? 60_000,
      intervalMs: 50,
      check: () => Promise.resolve(proc.tail(200).includes(SYNC_DONE) ? undefined : 'no rules synced yet'),
    });
  }

  /** SIGTERM (SIGKILL after the grace period); its rules stay until `cleanup` or the namespace goes. Idempotent. */
  async stop(graceMs = 5000): Promise<void> {
    await this.proc?.stop(graceMs);
  }

  /**
   * `kube-proxy --cleanup` in the node's namespace: removes the rules of
   * every mode, so that another proxy can take the node over.
   */
  async cleanup(): Promise<void> {
    await this.run('nsenter', [`--net=${this.config.netns}`, this.config.binary, '--cleanup']);
  }

  tail(lines = 30): string {
    return this.proc?.tail(lines) ?? '';
  }
}
