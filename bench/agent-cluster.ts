/**
 * The API objects of bench/agent, and a loader that creates them in a real
 * kube-apiserver over its REST API with many requests in flight (kubectl
 * would spend most of the time starting processes and reading discovery).
 *
 * Pods, namespaces and policies come from bench/policy-workload.ts (so the
 * policy mix is the one bench/policy measures), made valid API objects: an
 * image, spec.nodeName spread over the Node objects, and the status a
 * kubelet would report (phase, podIP, Ready) patched through the status
 * subresource. Services have no selector and come with one EndpointSlice
 * each, written here rather than by the controller manager (whose 20 QPS
 * client would take minutes for thousands of slices).
 *
 * With `initialPods` the cluster comes in two steps: first every object
 * with only that many pods (slices listing only those), then `growth` adds
 * the other pods and fills the slices, so one run can measure an agent at
 * two cluster sizes.
 */
import { Agent as HttpsAgent, request } from 'node:https';
import type { Pod } from '../src/policy/k8s-types.js';
import { NAMESPACES, workload } from './policy-workload.js';

export interface ClusterSize {
  readonly nodes: number;
  readonly pods: number;
  readonly policies: number;
  readonly services: number;
  /** Pods created first (the rest come as `growth`). Default: all of them. */
  readonly initialPods?: number;
}

export interface ApiObject {
  readonly path: string;
  readonly body: unknown;
}

/** A pod's identity on the bench cluster, for registering it as a local endpoint. */
export interface BenchPod {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly app: string;
}

/** What turns the initial cluster into the whole one. */
export interface ClusterGrowth {
  /** The pods past `initialPods`. */
  readonly then: readonly ApiObject[];
  readonly statuses: readonly ApiObject[];
  /** Merge patches giving each EndpointSlice that gains backends its whole endpoint list. */
  readonly slices: readonly ApiObject[];
}

export interface BenchCluster {
  /** In creation order: nodes and namespaces, then pods, policies, services and slices. */
  readonly first: readonly ApiObject[];
  readonly then: readonly ApiObject[];
  /** Status patches (path of the status subresource, merge-patch body). */
  readonly statuses: readonly ApiObject[];
  /** Every pod, the initial ones first. */
  readonly pods: readonly BenchPod[];
  readonly growth: ClusterGrowth;
}

export const nodeName = (i: number): string => `bench-node-${i}`;

export function benchCluster(size: ClusterSize): BenchCluster {
  const w = workload(size.policies, size.pods);
  const first: ApiObject[] = [];
  for (let i = 0; i < size.nodes; i++) {
    first.push({ path: '/api/v1/nodes', body: { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName(i) }, spec: { podCIDR: `10.200.${i}.0/24` } } });
  }
  for (const ns of w.namespaces) first.push({ path: '/api/v1/namespaces', body: ns });

  const initialPods = Math.min(size.initialPods ?? size.pods, size.pods);
  const then: ApiObject[] = [];
  const statuses: ApiObject[] = [];
  const growth = { then: [] as ApiObject[], statuses: [] as ApiObject[], slices: [] as ApiObject[] };
  const pods: BenchPod[] = [];
  w.pods.forEach((p, i) => {
    const { namespace, name, labels } = p.metadata as { namespace: string; name: string; labels: Record<string, string> };
    const ip = p.status?.podIP ?? '';
    // Every node gets pods of every namespace: a node's endpoints meet all policy shapes.
    const node = nodeName((i + Math.floor(i / NAMESPACES)) % size.nodes);
    const into = i < initialPods ? { then, statuses } : growth;
    into.then.push({ path: `/api/v1/namespaces/${namespace}/pods`, body: apiPod(p, node) });
    into.statuses.push({
      path: `/api/v1/namespaces/${namespace}/pods/${name}/status`,
      body: { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] } },
    });
    pods.push({ namespace, name, node, ip, app: labels['app'] ?? '' });
  });
  const firstPods = new Set(pods.slice(0, initialPods));
  const endpointsOf = (backends: readonly BenchPod[]): unknown[] => backends.map((b) => ({
    addresses: [b.ip],
    conditions: { ready: true },
    nodeName: b.node,
    targetRef: { kind: 'Pod', namespace: b.namespace, name: b.name },
  }));
  for (const pol of w.policies) {
    then.push({ path: `/apis/networking.k8s.io/v1/namespaces/${pol.metadata?.namespace ?? ''}/networkpolicies`, body: pol });
  }
  for (let k = 0; k < size.services; k++) {
    const ns = w.namespaces[k % NAMESPACES]?.metadata?.name ?? '';
    const name = `svc-${Math.floor(k / NAMESPACES)}`;
    const app = `app-${Math.floor(k / NAMESPACES) % 10}`;
    then.push({
      path: `/api/v1/namespaces/${ns}/services`,
      body: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
    });
    const backends = pods.filter((p) => p.namespace === ns && p.app === app);
    const initial = backends.filter((b) => firstPods.has(b));
    const slicePath = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
    if (initial.length < backends.length) growth.slices.push({ path: `${slicePath}/${name}-bench`, body: { endpoints: endpointsOf(backends) } });
    then.push({
      path: slicePath,
      body: {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: `${name}-bench`, namespace: ns, labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'bench.sluice.dev' } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
        endpoints: endpointsOf(initial),
      },
    });
  }
  return { first, then, statuses, pods, growth };
}

function apiPod(p: Pod, node: string): unknown {
  const containers = p.spec?.containers?.map((c) => ({ ...c, image: 'example.invalid/bench:1' })) ?? [];
  return { apiVersion: 'v1', kind: 'Pod', metadata: p.metadata, spec: { ...p.spec, nodeName: node, containers } };
}

export interface ApiServerAccess {
  readonly server: string;
  readonly token: string;
  readonly caPem: string;
}

/** REST calls to one apiserver over a keep-alive pool. */
export class ApiClient {
  private readonly agent: HttpsAgent;

  constructor(private readonly access: ApiServerAccess, maxSockets = 64) {
    this.agent = new HttpsAgent({ keepAlive: true, maxSockets, ca: access.caPem });
  }

  /** One request; rejects with the method, path, status and body unless the answer is 2xx. */
  call(method: 'POST' | 'PATCH' | 'PUT' | 'DELETE', path: string, body: unknown, contentType = 'application/json'): Promise<string> {
    const url = new URL(path, this.access.server);
    const data = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method,
        agent: this.agent,
        headers: { authorization: `Bearer ${this.access.token}`, 'content-type': contentType, 'content-length': data.length },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(text);
          else reject(new Error(`${method} ${path}: HTTP ${status}: ${text.slice(0, 300)}`));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  create(o: ApiObject): Promise<string> {
    return this.call('POST', o.path, o.body);
  }

  mergePatch(o: ApiObject): Promise<string> {
    return this.call('PATCH', o.path, o.body, 'application/merge-patch+json');
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight; the first failure rejects. */
export async function inParallel<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
