/**
 * Random clusters for differential tests (model vs compiled state vs BPF),
 * seeded so a failure reproduces from the printed seed. Built to hit the
 * corners where a compiler can be inexact: pods with equal labels but
 * different container ports or on either side of an ipBlock, ipBlocks with
 * except holes around pod IPs and nested across policies, endPort ranges,
 * SCTP, named ports on ingress and egress, empty and absent selectors,
 * explicit and implied policyTypes.
 */
import { formatIpv4 } from '../../src/policy/cidr.js';
import { buildCluster, type Cluster } from '../../src/policy/cluster.js';
import { formatIssue } from '../../src/policy/errors.js';
import type {
  ContainerPort, LabelSelector, Namespace, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, Pod,
} from '../../src/policy/k8s-types.js';
import type { TrafficProtocol } from '../../src/policy/match.js';

/** mulberry32: small, fast, good enough to spread test cases. */
export function seededRandom(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  return {
    int: (n) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    chance: (p) => next() < p,
  };
}

export interface Rng {
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

export interface RandomCase {
  readonly seed: number;
  readonly cluster: Cluster;
  /** The objects, for engines that take manifests. */
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  readonly policies: readonly NetworkPolicy[];
  /** Probes worth asking: ports the policies and pods use. */
  readonly probes: readonly { readonly port: number; readonly protocol: TrafficProtocol }[];
}

const APPS = ['web', 'db'] as const;
const PORT_NAMES = ['http', 'dns', 'metrics', 'stream', 'nope'] as const;

export function randomCase(seed: number): RandomCase {
  const rng = seededRandom(seed);
  const namespaces: Namespace[] = [];
  const pods: Pod[] = [];
  const ips: string[] = [];
  const nsCount = 2 + rng.int(3);
  for (let n = 0; n < nsCount; n++) {
    const labels: Record<string, string> = { team: rng.pick(['a', 'b']) };
    if (rng.chance(0.5)) labels['env'] = rng.pick(['prod', 'dev']);
    namespaces.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `n${n}`, labels } });
    const used = new Set<number>();
    const count = 2 + rng.int(3);
    for (let i = 0; i < count; i++) {
      let host = 1 + rng.int(60);
      while (used.has(host)) host = 1 + rng.int(60);
      used.add(host);
      const ip = `10.${rng.pick([0, 0, 1])}.${n}.${host}`;
      if (ips.includes(ip)) continue;
      ips.push(ip);
      const labels: Record<string, string> = { app: rng.pick(APPS) };
      if (rng.chance(0.3)) labels['tier'] = rng.pick(['1', '2']);
      pods.push({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { namespace: `n${n}`, name: `p${i}`, labels },
        spec: { containers: [{ name: 'c', ports: randomContainerPorts(rng) }] },
        status: { phase: 'Running', podIP: ip },
      });
    }
  }
  const policies: NetworkPolicy[] = [];
  const policyCount = 1 + rng.int(5);
  for (let k = 0; k < policyCount; k++) {
    const namespace = `n${rng.int(nsCount)}`;
    policies.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { namespace, name: `pol${k}` },
      spec: randomSpec(rng, ips),
    });
  }
  const built = buildCluster({ namespaces, pods, networkPolicies: policies });
  if (!built.ok) throw new Error(`seed ${seed}: generated an invalid cluster:\n${built.errors.map(formatIssue).join('\n')}`);
  const probes: { port: number; protocol: TrafficProtocol }[] = [
    { port: 80, protocol: 'TCP' },
    { port: 8080, protocol: 'TCP' },
    { port: 9090, protocol: 'TCP' },
    { port: 53, protocol: 'UDP' },
    { port: 9000, protocol: 'SCTP' },
    { port: 0, protocol: 'ICMP' },
  ];
  return { seed, cluster: built.value, namespaces, pods, policies, probes };
}

/** Names shared by pods that differ in numbers, so one rule means different ports on different pods. */
function randomContainerPorts(rng: Rng): ContainerPort[] {
  const ports: ContainerPort[] = [];
  if (rng.chance(0.8)) ports.push({ name: 'http', containerPort: rng.pick([80, 8080]) });
  if (rng.chance(0.6)) ports.push({ name: 'dns', containerPort: 53, protocol: 'UDP' });
  if (rng.chance(0.5)) ports.push({ name: 'metrics', containerPort: rng.pick([9090, 9091]), protocol: 'TCP' });
  if (rng.chance(0.4)) ports.push({ name: 'stream', containerPort: 9000, protocol: 'SCTP' });
  return ports;
}

function randomSpec(rng: Rng, ips: readonly string[]): NetworkPolicySpec {
  const types = rng.pick([undefined, ['Ingress'], ['Egress'], ['Ingress', 'Egress']] as const);
  const spec: { -readonly [K in keyof NetworkPolicySpec]: NetworkPolicySpec[K] } = { podSelector: randomSelector(rng, 'pod') };
  if (types !== undefined) spec.policyTypes = [...types];
  const ingress = Array.from({ length: rng.int(3) }, () => ({ ...peers(rng, 'from', ips), ...ports(rng) }));
  const egress = Array.from({ length: rng.int(3) }, () => ({ ...peers(rng, 'to', ips), ...ports(rng) }));
  if (ingress.length > 0 || rng.chance(0.3)) spec.ingress = ingress;
  if (egress.length > 0 || rng.chance(0.3)) spec.egress = egress;
  return spec;
}

function randomSelector(rng: Rng, kind: 'pod' | 'ns'): LabelSelector {
  switch (rng.int(5)) {
    case 0:
    case 1:
      return {};
    case 2:
      return kind === 'pod' ? { matchLabels: { app: rng.pick(APPS) } } : { matchLabels: { team: rng.pick(['a', 'b']) } };
    case 3:
      return { matchExpressions: [{ key: kind === 'pod' ? 'tier' : 'env', operator: rng.pick(['Exists', 'DoesNotExist']) }] };
    default:
      return kind === 'pod'
        ? { matchExpressions: [{ key: 'app', operator: rng.pick(['In', 'NotIn']), values: ['web'] }] }
        : { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: rng.pick(['In', 'NotIn']), values: ['n1'] }] };
  }
}

function peers(rng: Rng, key: 'from' | 'to', ips: readonly string[]): Partial<Record<'from' | 'to', NetworkPolicyPeer[]>> {
  if (rng.chance(0.2)) return {};
  const list: NetworkPolicyPeer[] = [];
  const count = 1 + rng.int(2);
  for (let i = 0; i < count; i++) {
    switch (rng.int(4)) {
      case 0:
        list.push({ podSelector: randomSelector(rng, 'pod') });
        break;
      case 1:
        list.push({ namespaceSelector: randomSelector(rng, 'ns') });
        break;
      case 2:
        list.push({ namespaceSelector: randomSelector(rng, 'ns'), podSelector: randomSelector(rng, 'pod') });
        break;
      default:
        list.push({ ipBlock: randomIpBlock(rng, ips) });
    }
  }
  return { [key]: list };
}

/** A CIDR around some pod's IP, with except holes around other pod IPs inside it. */
function randomIpBlock(rng: Rng, ips: readonly string[]): { cidr: string; except?: string[] } {
  const len = rng.pick([8, 16, 20, 22, 24, 26, 28, 30, 32]);
  const cidr = prefixOf(rng.pick(ips), len);
  const except: string[] = [];
  if (len < 32 && rng.chance(0.6)) {
    const inside = ips.filter((ip) => prefixOf(ip, len) === cidr);
    for (let i = 0; i < 1 + rng.int(2); i++) {
      const exLen = Math.min(32, len + 1 + rng.int(32 - len));
      const ex = prefixOf(rng.pick(inside), exLen);
      if (!except.includes(ex)) except.push(ex);
    }
  }
  return except.length > 0 ? { cidr, except } : { cidr };
}

function prefixOf(ip: string, len: number): string {
  const n = ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
  const base = len === 0 ? 0 : Math.floor(n / 2 ** (32 - len)) * 2 ** (32 - len);
  return `${formatIpv4(base)}/${len}`;
}

function ports(rng: Rng): { ports?: NetworkPolicyPort[] } {
  if (rng.chance(0.3)) return {};
  const list: NetworkPolicyPort[] = [];
  for (let i = 0; i < 1 + rng.int(2); i++) {
    const protocol = rng.pick([undefined, 'TCP', 'UDP', 'SCTP'] as const);
    const base = protocol === undefined ? {} : { protocol };
    switch (rng.int(5)) {
      case 0:
        list.push({ ...base, port: rng.pick([53, 80, 8080, 9000, 9090]) });
        break;
      case 1: {
        const [from, to] = rng.pick([[50, 90], [8000, 8100], [9000, 9091], [1, 65535], [79, 81]] as const);
        list.push({ ...base, port: from, endPort: to });
        break;
      }
      case 2:
      case 3:
        list.push({ ...base, port: rng.pick(PORT_NAMES) });
        break;
      default:
        list.push({ protocol: protocol ?? 'UDP' });
    }
  }
  return { ports: list };
}
