/**
 * ClusterIP checks that hold for any implementation of Services — Sluice's
 * datapath or the real kube-proxy in either mode — run with real packets
 * between lab pods, with EndpointSlices made by the real controller manager
 * from the Pods' status. Each check makes its own Services (names carry a
 * tag), so one lab can run them once per proxy.
 */
import assert from 'node:assert/strict';
import { until } from '../../agent/helpers/wait.js';
import { applyService, clusterIpService, waitEndpoints, type Kubectl } from './services.js';
import { ask, serveName, spread, type AskResult, type NameServer } from './traffic.js';

/** What the checks need of a lab: kubectl, and the pods' namespaces and addresses. */
export interface ServiceLab {
  readonly kubectl: Kubectl;
  pod(name: string): { readonly netns: string; readonly ipv4: string };
}

/** The port every backend serves its name on (the Pods' named port "http"). */
export const BACKEND_PORT = 8080;

/** A web Pod (label app=web, named port http = BACKEND_PORT), for lab manifests. */
export function webPod(name: string, labels: Readonly<Record<string, string>> = { app: 'web' }): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, labels },
    spec: { containers: [{ name: 'srv', ports: [{ name: 'http', containerPort: BACKEND_PORT }] }] },
  };
}

/** Name servers on the backends, on their pod address and BACKEND_PORT. */
export async function serveBackends(lab: ServiceLab, backends: readonly string[]): Promise<NameServer[]> {
  const servers: NameServer[] = [];
  for (const b of backends) servers.push(await serveName(lab.pod(b).netns, lab.pod(b).ipv4, BACKEND_PORT, b));
  return servers;
}

/**
 * A ClusterIP Service (port 80 → targetPort http) selecting `selector`:
 * waits for its slices to hold `backends` ready, then until a connection
 * from `client` through the Service answers (the proxy programs it
 * asynchronously). Resolves with the ClusterIP.
 */
export async function readyService(lab: ServiceLab, name: string, selector: Readonly<Record<string, string>>, backends: readonly string[], client: string): Promise<string> {
  const vip = await applyService(lab.kubectl, clusterIpService(name, selector, [{ name: 'http', port: 80, targetPort: 'http' }]));
  const want = backends.map((b) => lab.pod(b).ipv4).sort();
  await waitEndpoints(lab.kubectl, name, `${backends.join(', ')} ready`, (eps) => JSON.stringify(eps.filter((e) => e.ready).map((e) => e.address).sort()) === JSON.stringify(want));
  await until(`${client} → ${name} ${vip}:80 answers`, async () => (await ask(lab.pod(client).netns, vip, 80, 1000)).result === 'answered', 30_000);
  return vip;
}

/**
 * Clients reach a ClusterIP whose backends are on different nodes: every
 * connection is answered, only by the Service's backends, and each backend
 * answers some (`asks` connections per client).
 */
export async function checkClusterIpSpreads(lab: ServiceLab, tag: string, clients: readonly string[], backends: readonly string[], asks = 24): Promise<void> {
  const vip = await readyService(lab, `web-${tag}`, { app: 'web' }, backends, clients[0] ?? '');
  for (const client of clients) {
    const seen = await spread(lab.pod(client).netns, vip, 80, asks);
    assert.deepEqual([...seen.keys()].sort(), [...backends].sort(), `${client} → ${vip}:80 reached every backend, and only those: ${JSON.stringify([...seen])}`);
    assert.equal([...seen.values()].reduce((x, y) => x + y, 0), asks);
  }
}

/**
 * A Service without endpoints refuses a connection at once (kube-proxy's
 * REJECT: a TCP reset or ICMP port-unreachable, which the client sees as
 * ECONNREFUSED), never a timeout. Resolves with the refusals' times (ms).
 */
export async function checkNoEndpointsRefused(lab: ServiceLab, tag: string, client: string, tries = 5, withinMs = 1000): Promise<number[]> {
  const name = `empty-${tag}`;
  const vip = await applyService(lab.kubectl, clusterIpService(name, { app: `nobody-${tag}` }, [{ name: 'http', port: 80, targetPort: 'http' }]));
  await waitEndpoints(lab.kubectl, name, 'no endpoints', (eps) => eps.length === 0);
  let last: AskResult | undefined;
  // The proxy learns of the Service asynchronously: until then the address is nobody's (a timeout).
  await until(`${client} → ${name} ${vip}:80 refused`, async () => (last = await ask(lab.pod(client).netns, vip, 80, 1000)).result === 'refused', 30_000)
    .catch((e: unknown) => assert.fail(`${String(e)}; last: ${JSON.stringify(last)}`));
  const times: number[] = [];
  for (let i = 0; i < tries; i++) {
    const r = await ask(lab.pod(client).netns, vip, 80, 3000);
    assert.equal(r.result, 'refused', `${client} → ${vip}:80 (no endpoints): ${JSON.stringify(r)}`);
    if (r.result === 'refused') times.push(r.ms);
  }
  assert.ok(Math.max(...times) < withinMs, `refused within ${withinMs} ms: ${times.join(', ')} ms`);
  return times;
}
