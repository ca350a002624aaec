/**
 * A node and its pods as network namespaces for the load-balancer tests:
 * one "host" namespace (the node: forwarding on, no address of its own) and
 * one namespace per pod, joined by veths whose host ends carry lxc.o
 * (from_container on tc ingress, to_container on tc egress), each host veth
 * registered in sl_lxc_v1 for its endpoint as the CNI does. Pods have a /32,
 * a default route through 169.254.1.1 (the host veth, by a permanent
 * neighbour entry), and run test/fixtures/lb-pod.py, driven over its stdin.
 *
 * Names carry the "lbd" prefix: namespaces sluice-lbd-<id>-*, host veths
 * lbd<id><pod>. remove() deletes every namespace (and with them the veths
 * and their filters) and stops the pod processes.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { attachTc, ensureClsact } from '../../src/datapath/tc.js';
import type { EndpointConfig } from '../../src/datapath/generated/abi.js';
import { ROOT } from '../datapath/addon-support.js';
import type { LxcHarness } from './lxc-harness.js';

const POD_SCRIPT = resolve(ROOT, 'test/fixtures/lb-pod.py');
const GATEWAY = '169.254.1.1';

export interface PodAnswer {
  readonly reply?: string;
  readonly error?: string;
  readonly ok?: boolean;
  readonly local?: number;
  /** udpburst: answers (or errors) by text. */
  readonly counts?: Readonly<Record<string, number>>;
  readonly ms: number;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function linkMac(ns: string, ifname: string): string {
  const out = execFileSync('ip', ['-n', ns, '-j', 'link', 'show', ifname], { encoding: 'utf8' });
  const [link] = JSON.parse(out) as [{ address: string }];
  return link.address;
}

/** A pod: its namespace, address, endpoint and the lb-pod.py process. */
export class Pod {
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];

  constructor(readonly name: string, readonly ns: string, readonly address: string, readonly endpoint: EndpointConfig,
    private readonly proc: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: proc.stdout });
    this.lines.on('line', (line) => this.waiting.shift()?.(line));
  }

  /** Sends one command; resolves with its answer. */
  async cmd(command: Record<string, unknown>): Promise<PodAnswer> {
    const answer = new Promise<string>((done) => this.waiting.push(done));
    this.proc.stdin.write(`${JSON.stringify(command)}\n`);
    return JSON.parse(await answer) as PodAnswer;
  }

  stop(): void {
    this.lines.close();
    this.proc.kill();
  }
}

export class LbNode {
  readonly id = randomBytes(3).toString('hex');
  readonly hostNs = `sluice-lbd-${this.id}-host`;
  private readonly namespaces: string[] = [];
  private readonly hostIfs: { ifname: string; netns: string }[] = [];
  readonly pods = new Map<string, Pod>();

  constructor(private readonly harness: LxcHarness) {}

  /** Creates the node namespace. */
  create(): void {
    this.addNs(this.hostNs);
    ip('netns', 'exec', this.hostNs, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0');
  }

  /** A pod `name` at address, served by the programs as endpoint (its sl_lxc_v1 and endpoint entries written first). */
  addPod(name: string, address: string, endpointId: number): Pod {
    const ns = `sluice-lbd-${this.id}-${name}`;
    const hostIf = `lbd${this.id}${name}`;
    this.addNs(ns);
    ip('-n', this.hostNs, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', this.hostNs, 'link', 'set', hostIf, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'addr', 'add', `${address}/32`, 'dev', 'eth0');
    ip('-n', ns, 'route', 'add', GATEWAY, 'dev', 'eth0', 'scope', 'link');
    ip('-n', ns, 'route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0');
    ip('-n', ns, 'neigh', 'add', GATEWAY, 'lladdr', linkMac(this.hostNs, hostIf), 'dev', 'eth0', 'nud', 'permanent');
    ip('-n', this.hostNs, 'route', 'add', `${address}/32`, 'dev', hostIf);
    ip('-n', this.hostNs, 'neigh', 'add', address, 'lladdr', linkMac(ns, 'eth0'), 'dev', hostIf, 'nud', 'permanent');

    const endpoint = { endpointId, ipv4: parseIpv4(address) };
    if (endpointId !== this.harness.endpoint.endpointId) this.harness.addEndpoint(endpoint);
    const where = { ifname: hostIf, netns: `/var/run/netns/${this.hostNs}` };
    this.hostIfs.push(where);
    const ifindex = ensureClsact(where).ifindex;
    this.harness.dp.maps.interfaces.update(ifindex, endpoint);
    // Where the programs send a translated packet for this pod (the lxc-interfaces owner writes it beside sl_lxc_v1).
    this.harness.dp.maps.addresses.update(endpoint.ipv4, { ifindex });
    attachTc(where, 'ingress', this.harness.dp.fromContainer.fd);
    attachTc(where, 'egress', this.harness.dp.toContainer.fd);

    const proc = spawn('ip', ['netns', 'exec', ns, 'python3', '-u', POD_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const pod = new Pod(name, ns, address, endpoint, proc);
    this.pods.set(name, pod);
    return pod;
  }

  /**
   * A host outside the node at clientAddress, on a /24 link with the node's
   * device (nodeAddress, host side `lbd<id>fab`), its default route through
   * the node. Returns it (running lb-pod.py) and where the node's device is.
   */
  addOutside(name: string, nodeAddress: string, clientAddress: string): { outside: Pod; device: { ifname: string; netns: string } } {
    const ns = `sluice-lbd-${this.id}-${name}`;
    const dev = `lbd${this.id}fab`;
    this.addNs(ns);
    ip('-n', this.hostNs, 'link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', this.hostNs, 'addr', 'add', `${nodeAddress}/24`, 'dev', dev);
    ip('-n', this.hostNs, 'link', 'set', dev, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${clientAddress}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', nodeAddress);
    const proc = spawn('ip', ['netns', 'exec', ns, 'python3', '-u', POD_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const outside = new Pod(name, ns, clientAddress, { endpointId: 0, ipv4: parseIpv4(clientAddress) }, proc);
    this.pods.set(name, outside);
    return { outside, device: { ifname: dev, netns: `/var/run/netns/${this.hostNs}` } };
  }

  /** lb-pod.py in the node's own namespace: a host-network endpoint. */
  addNodeProcess(name: string): Pod {
    const proc = spawn('ip', ['netns', 'exec', this.hostNs, 'python3', '-u', POD_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const pod = new Pod(name, this.hostNs, '', { endpointId: 0, ipv4: 0 }, proc);
    this.pods.set(name, pod);
    return pod;
  }

  /** Swaps these programs in on every pod's veth, in place (as an agent restart or upgrade does). */
  reattach(fromContainerFd: number, toContainerFd: number): void {
    for (const where of this.hostIfs) {
      attachTc(where, 'ingress', fromContainerFd, { replace: true });
      attachTc(where, 'egress', toContainerFd, { replace: true });
    }
  }

  remove(): void {
    for (const pod of this.pods.values()) pod.stop();
    for (const ns of this.namespaces.reverse()) spawnSync('ip', ['netns', 'del', ns]);
  }

  private addNs(ns: string): void {
    ip('netns', 'add', ns);
    this.namespaces.push(ns);
    ip('netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
  }
}
