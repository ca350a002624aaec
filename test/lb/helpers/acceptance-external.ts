/**
 * The Service acceptance checks for traffic to external frontends
 * (shared/reference/services.md §6: T14, T18, T19, T20) against real
 * packets on a two-node cluster lab (family `le`), run by one test file per
 * Service proxy: Sluice, the real kube-proxy in iptables mode and in
 * nftables mode. The assertions are the same for all three; where they must
 * differ, the test says why.
 *
 * Pods (round-robin over the nodes, checked in `before`):
 *   node 1: ca (client), wa (web), ha (health: the one backend of the
 *           health-checked Service, terminated by its test)
 *   node 2: cb (client), wb (web)
 * Backends serve their name and the client address they see on http
 * (8080/TCP, echo-tool.ts). An outside client sits on the fabric, on no
 * node; the TEST-NET addresses below (an external IP, load-balancer IPs) are
 * on no interface and routed only inside the outside client's namespace,
 * towards one node or the other.
 *
 * `routing` runs the lab with the agents' native routing or over VXLAN (the
 * masquerade must then take the vxlan device to another node's backend).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ServiceProxy } from '../../../src/lab/cluster/kube-proxy.js';
import type { RoutingMode } from '../../../src/lab/cluster/agent-process.js';
import type { ClusterLab } from '../../../src/lab/cluster/cluster-lab.js';
import { until } from '../../agent/helpers/wait.js';
import { startCluster, type TestCluster } from '../../lab/cluster-helpers.js';
import { inNetns } from '../../lab/helpers.js';
import { addOutsideClient, type OutsideClient } from './outside.js';
import { waitEndpoints, type Kubectl, type SliceEndpoint } from './services.js';
import { answeredBy, asks, startServer, type AskResult, type NameServer } from './traffic.js';

const HTTP_PORT = 8080;
/** TEST-NET-3: on no interface of the lab (e2e "should be possible to connect to a service via ExternalIP when the external IP is not assigned to a node"). */
const EXTERNAL_IP = '203.0.113.250';
/** TEST-NET-2: the load-balancer ingress addresses the tests write into Service status. */
const LB_IP = '198.51.100.10';
const HC_LB_IP = '198.51.100.20';

const PODS = ['ca', 'cb', 'wa', 'wb', 'ha'] as const;
/** Order places them: even indexes on node 1, odd on node 2. */
const ON_NODE_1 = ['ca', 'wa', 'ha'];
const BACKENDS = ['wa', 'wb', 'ha'] as const;

const backendPod = (name: string, app: string): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app, pod: name } },
  spec: { containers: [{ name: 'srv', ports: [{ name: 'http', containerPort: HTTP_PORT }] }] },
});
const clientPod = (name: string): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'client' } }, spec: { containers: [{ name: 'shell' }] } });
const MANIFESTS = PODS.map((p) => (p.startsWith('c') ? clientPod(p) : backendPod(p, p === 'ha' ? 'health' : 'web')));

/** A health-check answer as a load balancer reads it. */
interface HealthAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: unknown;
}

/** GET http://ip:port/healthz from `netns` (curl): the answer, or what went wrong (curl's exit code: 7 refused, 28 timeout). */
async function healthz(netns: string, ip: string, port: number, path = '/healthz'): Promise<HealthAnswer | { readonly error: number }> {
  const r = await inNetns(netns, ['curl', '-sS', '-m', '2', '-D', '-', `http://${ip}:${port}${path}`], 10_000);
  if (r.code !== 0) return { error: r.code };
  const split = r.stdout.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = r.stdout.slice(0, split).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const colon = l.indexOf(':');
    headers[l.slice(0, colon).trim().toLowerCase()] = l.slice(colon + 1).trim();
  }
  const text = r.stdout.slice(split + 4);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

const kubectlOf = (lab: ClusterLab): Kubectl => (args, input) => lab.kubectl(args, input);

/** What the tests read of the lab `before` starts (each throws while it is not up). */
function labAccess(current: () => TestCluster | undefined): {
  lab: () => ClusterLab; ns: (pod: string) => string; ip: (pod: string) => string; nodeIp: (i: number) => string;
} {
  const lab = (): ClusterLab => {
    const started = current();
    if (started === undefined) throw new Error('the lab did not start');
    return started.lab;
  };
  return {
    lab,
    ns: (pod) => lab().pod(pod).netns,
    ip: (pod) => lab().pod(pod).ipv4,
    nodeIp: (i) => lab().nodes[i]?.plan.internalIp ?? '',
  };
}

export function externalAcceptanceSuite(proxy: ServiceProxy, routing: RoutingMode = 'native'): void {
  describe(`${proxy}, ${routing} routing`, () => {
    let c: TestCluster | undefined;
    let outside: OutsideClient | undefined;
    const servers = new Map<string, NameServer>();

    const { lab, ns, ip, nodeIp } = labAccess(() => c);
    const out = (): OutsideClient => {
      if (outside === undefined) throw new Error('no outside client');
      return outside;
    };
    const kubectl: Kubectl = (args, input) => lab().kubectl(args, input);

    /** Applies a Service (port 80 → http); resolves with its NodePort and healthCheckNodePort (0: none). */
    async function apply(name: string, selector: Record<string, string>, spec: Record<string, unknown>): Promise<{ nodePort: number; healthPort: number }> {
      const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }], ...spec } };
      await kubectl(['apply', '-f', '-'], JSON.stringify(svc));
      const got = JSON.parse(await kubectl(['get', 'service', name, '-o', 'json'])) as { spec: { ports: { nodePort?: number }[]; healthCheckNodePort?: number } };
      return { nodePort: got.spec.ports[0]?.nodePort ?? 0, healthPort: got.spec.healthCheckNodePort ?? 0 };
    }

    /** Writes status.loadBalancer.ingress[0].ip, as a cloud's load-balancer controller would. */
    async function setIngress(name: string, address: string): Promise<void> {
      await kubectl(['patch', 'service', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { loadBalancer: { ingress: [{ ip: address }] } } })]);
    }

    const readySet = (eps: readonly SliceEndpoint[]): string => JSON.stringify(eps.filter((e) => e.ready).map((e) => e.address).sort());
    function waitReady(name: string, ready: readonly string[]): Promise<SliceEndpoint[]> {
      return waitEndpoints(kubectlOf(lab()), name, `${ready.join(', ')} ready`, (eps) => readySet(eps) === JSON.stringify(ready.map(ip).sort()));
    }

    /** Routes `address` from the outside client through node `i` (its namespace only). */
    async function routeOutside(address: string, i: number): Promise<void> {
      const r = await inNetns(out().netns, ['ip', 'route', 'replace', `${address}/32`, 'via', nodeIp(i)]);
      assert.equal(r.code, 0, r.stderr);
    }

    /** Until one ask from `netns` to ip:port is answered (the proxy programs a change asynchronously); resolves with it. */
    async function answered(netns: string, to: string, port: number, ms = 30_000): Promise<Extract<AskResult, { result: 'answered' }>> {
      let last: AskResult | undefined;
      await until(`${netns} → ${to}:${port} answers`, async () => (last = (await asks(netns, 'tcp', to, port, 1, 1000))[0])?.result === 'answered', ms)
        .catch((e: unknown) => assert.fail(`${String(e)}; last: ${JSON.stringify(last)}`));
      return last as Extract<AskResult, { result: 'answered' }>;
    }

    /** `n` asks from `netns`: every one answered; resolves with the backends seen and the client addresses they saw. */
    async function spread(netns: string, to: string, port: number, n: number): Promise<{ backends: string[]; peers: string[] }> {
      const rs = await asks(netns, 'tcp', to, port, n);
      const seen = answeredBy(rs, `${netns} → ${to}:${port}`);
      const peers = new Set(rs.flatMap((r) => (r.result === 'answered' && r.peer !== undefined ? [r.peer] : [])));
      return { backends: [...seen.keys()].sort(), peers: [...peers].sort() };
    }

    /** Until node i's health check of `port` gives `status` with `localEndpoints`; resolves with the answer. */
    async function health(i: number, port: number, status: number, localEndpoints: number): Promise<HealthAnswer> {
      let last: HealthAnswer | { error: number } | undefined;
      await until(`node ${i + 1} health check :${port} → ${status}, ${localEndpoints} local endpoints`, async () => {
        last = await healthz(out().netns, nodeIp(i), port);
        return 'status' in last && last.status === status && (last.body as { localEndpoints?: unknown }).localEndpoints === localEndpoints;
      }, 30_000).catch((e: unknown) => assert.fail(`${String(e)}; last: ${JSON.stringify(last)}`));
      return last as HealthAnswer;
    }

    before(async () => {
      c = await startCluster(PODS, MANIFESTS, { family: 'le', cluster: { nodes: 2, proxy, routing } });
      const node1 = c.lab.nodes[0]?.plan.name;
      for (const p of PODS) assert.equal(c.lab.pod(p).node === node1, ON_NODE_1.includes(p), `${p} is on ${String(c.lab.pod(p).node)}`);
      for (const b of BACKENDS) servers.set(b, await startServer('serve', ns(b), ip(b), HTTP_PORT, b));
      outside = await addOutsideClient(c.name);
    });

    after(async () => {
      for (const s of servers.values()) s.kill();
      await outside?.remove();
      await c?.close();
    });

    test(`${proxy}: an external IP on no interface takes pods of both nodes to every backend, without SNAT; from outside, routed through a node, it is masqueraded (externalTrafficPolicy Cluster)`, async () => {
      await apply('ext', { app: 'web' }, { type: 'ClusterIP', externalIPs: [EXTERNAL_IP] });
      await waitReady('ext', ['wa', 'wb']);
      for (const [i, client] of ['ca', 'cb'].entries()) {
        // Each node's proxy programs the Service on its own time.
        await answered(ns(client), EXTERNAL_IP, 80);
        await until(`${client}: both backends answer`, async () => (await spread(ns(client), EXTERNAL_IP, 80, 10).catch(() => undefined))?.backends.length === 2, 30_000);
        // 20 random picks of 2 miss one with probability 2·(1/2)^20 ≈ 2e-6.
        const s = await spread(ns(client), EXTERNAL_IP, 80, 20);
        assert.deepEqual(s.backends, ['wa', 'wb'], `${client} → ${EXTERNAL_IP}:80`);
        // Where the two differ: kube-proxy's EXT chain of an eTP Cluster Service masquerades every packet, a
        // pod's too (to its node's address), whereas Sluice's pod program takes a pod's packets to an external
        // frontend like a ClusterIP's (translated to the backend, the pod's own address kept); masquerading
        // happens in the fabric program, which a pod's packet to a Service never reaches.
        assert.deepEqual(s.peers, [proxy === 'sluice' ? ip(client) : nodeIp(i)], `${client}: the source the backends saw`);
      }
      for (const i of [0, 1]) {
        await routeOutside(EXTERNAL_IP, i);
        await answered(out().netns, EXTERNAL_IP, 80);
        const s = await spread(out().netns, EXTERNAL_IP, 80, 20);
        assert.deepEqual(s.backends, ['wa', 'wb'], `outside → ${EXTERNAL_IP}:80 through node ${i + 1}`);
        assert.deepEqual(s.peers, [nodeIp(i)], `through node ${i + 1}: masqueraded to its address, for its own backend and the other node's alike`);
      }
    });

    test(`${proxy}: a LoadBalancer under externalTrafficPolicy Local with its backend on node 1: pods of both nodes reach the load-balancer IP (the cluster set), outside clients only through node 1, keeping their address`, async () => {
      const { nodePort } = await apply('lb', { pod: 'wa' }, { type: 'LoadBalancer', externalTrafficPolicy: 'Local' });
      assert.ok(nodePort > 0);
      await setIngress('lb', LB_IP);
      await waitReady('lb', ['wa']);
      for (const client of ['ca', 'cb']) {
        await answered(ns(client), LB_IP, 80);
        // cb's node has no local endpoint: kube-proxy short-circuits pod → load-balancer IP to the cluster set
        // (its EXT chain: "pod traffic … simulates going up-and-out to an LB and back"); Cilium differs (cilium#45252).
        const s = await spread(ns(client), LB_IP, 80, 10);
        assert.deepEqual(s, { backends: ['wa'], peers: [ip(client)] }, `${client} → ${LB_IP}:80`);
      }
      await routeOutside(LB_IP, 0);
      const viaA = await answered(out().netns, LB_IP, 80);
      assert.deepEqual([viaA.name, viaA.peer], ['wa', out().ip], 'through node 1: its local backend sees the client\'s own address');
      assert.deepEqual(await spread(out().netns, nodeIp(0), nodePort, 5), { backends: ['wa'], peers: [out().ip] }, 'node 1\'s NodePort, likewise');
      await routeOutside(LB_IP, 1);
      // Node 2 has no local endpoint: dropped (kube-proxy: "has no local endpoints" DROP), not refused.
      const none = await asks(out().netns, 'tcp', LB_IP, 80, 2, 1500);
      assert.deepEqual(none.map((r) => r.result), ['timeout', 'timeout'], JSON.stringify(none));
      const noneNp = await asks(out().netns, 'tcp', nodeIp(1), nodePort, 2, 1500);
      assert.deepEqual(noneNp.map((r) => r.result), ['timeout', 'timeout'], JSON.stringify(noneNp));
    });

    test(`${proxy}: NodePort under externalTrafficPolicy Cluster is masqueraded to the entry node's address, whichever node the backend is on, from outside and from another node's pod`, async () => {
      const { nodePort } = await apply('npc', { pod: 'wa' }, { type: 'NodePort', externalTrafficPolicy: 'Cluster' });
      await waitReady('npc', ['wa']);
      for (const i of [0, 1]) {
        const a = await answered(out().netns, nodeIp(i), nodePort);
        assert.deepEqual([a.name, a.peer], ['wa', nodeIp(i)], `outside → node ${i + 1}'s NodePort (the backend is on node 1): masqueraded (services.md §2.4)`);
        assert.deepEqual(await spread(out().netns, nodeIp(i), nodePort, 10), { backends: ['wa'], peers: [nodeIp(i)] });
      }
      const fromB = await answered(ns('cb'), nodeIp(0), nodePort);
      assert.deepEqual([fromB.name, fromB.peer], ['wa', nodeIp(0)], 'cb (node 2) → node 1\'s NodePort, backend on node 1: masqueraded');
      const fromA = await answered(ns('ca'), nodeIp(1), nodePort);
      assert.deepEqual([fromA.name, fromA.peer], ['wa', nodeIp(1)], 'ca (node 1) → node 2\'s NodePort, backend back on node 1: masqueraded');
      // A pod reaching its own node's NodePort: where the two differ. kube-proxy's NodePort rules masquerade it
      // too (the EXT chain of an eTP Cluster Service marks every packet); Sluice's pod program takes a pod's
      // packets to this node's frontends like a ClusterIP's (translated to the backend, the pod's own address
      // kept), and the fabric program, where masquerading happens, never sees them.
      const own = await answered(ns('ca'), nodeIp(0), nodePort);
      assert.equal(own.peer, proxy === 'sluice' ? ip('ca') : nodeIp(0), 'ca → its own node\'s NodePort: the source the backend saw');
    });

    test(`${proxy}: kube-proxy's ports on every node: healthz (10256) answers /healthz 200 with lastUpdated from outside, /livez 200; status (10249) answers /proxyMode on the node`, async () => {
      for (const i of [0, 1]) {
        let last: HealthAnswer | { error: number } | undefined;
        // The proxy's first sync may still be under way when the suite starts: healthy once it is done.
        await until(`node ${i + 1} :10256/healthz → 200`, async () => 'status' in (last = await healthz(out().netns, nodeIp(i), 10256)) && last.status === 200, 30_000)
          .catch((e: unknown) => assert.fail(`${String(e)}; last: ${JSON.stringify(last)}`));
        const ok = last as HealthAnswer;
        const body = ok.body as { lastUpdated?: unknown; currentTime?: unknown; nodeEligible?: unknown; healthy?: unknown };
        assert.equal(ok.headers['content-type'], 'application/json');
        assert.deepEqual([typeof body.lastUpdated, typeof body.currentTime, body.nodeEligible, body.healthy], ['string', 'string', true, true], JSON.stringify(body));
        const livez = await healthz(out().netns, nodeIp(i), 10256, '/livez');
        assert.equal('status' in livez ? livez.status : livez, 200);
        const netns = lab().nodes[i]?.plan.netns ?? '';
        const mode = await inNetns(netns, ['curl', '-sS', '-m', '2', 'http://127.0.0.1:10249/proxyMode'], 10_000);
        assert.equal(mode.code, 0, mode.stderr);
        assert.equal(mode.stdout, proxy === 'sluice' ? 'sluice' : proxy.replace('kube-proxy-', ''), `node ${i + 1} /proxyMode`);
      }
    });

    test(`${proxy}: healthCheckNodePort answers 200 with the local endpoint count on the backend's node, 503 elsewhere and once its only endpoint is terminating, not serving, or gone`, async () => {
      const { nodePort, healthPort } = await apply('hc', { app: 'health' }, { type: 'LoadBalancer', externalTrafficPolicy: 'Local' });
      assert.ok(healthPort > 0, 'the API server allocated a healthCheckNodePort');
      await setIngress('hc', HC_LB_IP);
      await waitReady('hc', ['ha']);
      const service = { namespace: 'default', name: 'hc' };
      const ok = await health(0, healthPort, 200, 1);
      assert.deepEqual(ok.body, { service, localEndpoints: 1, serviceProxyHealthy: true });
      assert.equal(ok.headers['content-type'], 'application/json');
      assert.equal(ok.headers['x-load-balancing-endpoint-weight'], '1');
      const other = await health(1, healthPort, 503, 0);
      assert.deepEqual(other.body, { service, localEndpoints: 0, serviceProxyHealthy: true });
      assert.equal(other.headers['x-load-balancing-endpoint-weight'], '0');

      let finished = false;
      try {
        // Serving and terminating: only Ready endpoints count (kube-proxy's LocalReadyEndpoints; e2e "should fail
        // health check node port if there are only terminating endpoints"), so the node fails its check and the
        // load balancer sends no new clients, while the NodePort still serves it (the local fallback).
        await lab().deletePod('ha', 600);
        await waitEndpoints(kubectlOf(lab()), 'hc', 'ha serving and terminating', (eps) => eps.some((e) => e.address === ip('ha') && e.serving && e.terminating && !e.ready));
        assert.deepEqual((await health(0, healthPort, 503, 0)).body, { service, localEndpoints: 0, serviceProxyHealthy: true });
        const served = await answered(out().netns, nodeIp(0), nodePort);
        assert.deepEqual([served.name, served.peer], ['ha', out().ip], 'the terminating endpoint still serves the NodePort');
        assert.deepEqual((await health(1, healthPort, 503, 0)).body, { service, localEndpoints: 0, serviceProxyHealthy: true });

        // Terminating and no longer serving.
        await lab().setPodReady('ha', false);
        await waitEndpoints(kubectlOf(lab()), 'hc', 'ha not serving', (eps) => eps.every((e) => !e.serving));
        await until('node 1\'s NodePort stops answering', async () => (await asks(out().netns, 'tcp', nodeIp(0), nodePort, 1, 1000))[0]?.result !== 'answered', 30_000);
        for (const i of [0, 1]) assert.deepEqual((await health(i, healthPort, 503, 0)).body, { service, localEndpoints: 0, serviceProxyHealthy: true });

        // Gone: the Service stays, and so does its health check.
        servers.get('ha')?.kill();
        servers.delete('ha');
        await lab().finishPod('ha');
        finished = true;
        await waitEndpoints(kubectlOf(lab()), 'hc', 'no endpoints', (eps) => eps.length === 0);
        for (const i of [0, 1]) assert.deepEqual((await health(i, healthPort, 503, 0)).body, { service, localEndpoints: 0, serviceProxyHealthy: true });
      } finally {
        if (!finished) await lab().finishPod('ha');
      }

      // The Service deleted: nobody listens on its health-check port any more (curl: connection refused).
      await kubectl(['delete', 'service', 'hc']);
      await until('the health check port closes on node 1', async () => {
        const r = await healthz(out().netns, nodeIp(0), healthPort);
        return 'error' in r && r.error === 7;
      }, 30_000);
    });
  });
}
