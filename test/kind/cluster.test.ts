// Sluice on a real three-node kind cluster (kind/up: one control plane, two
// workers, no kube-proxy, the chart installed, native routing), checked with
// the real kubectl and torn down in `after` whatever happened: the cluster,
// its Docker network and its kubeconfig.
//
// Needs a Docker engine, decided as for the image test: when `docker info`
// does not answer, every test here is reported as not run (skipped, with the
// reason), never as passed; with an engine, a cluster that does not come up
// fails them. The test neither starts nor stops an engine: `npm test`'s
// Docker phase (scripts/test) and `bash kind/test` start one where none
// answers, run this file, and stop that engine by its pid however the run ends.
//
// Proves: pods get addresses from sluice-cni run inside the agent's pod (the
// node has no Node.js, so nothing else could); agnhost pods reach each other
// on the same node and across nodes; the NetworkPolicies of examples/lab are
// enforced; a ClusterIP Service answers through Sluice's load balancer (the
// cluster has no kube-proxy) and one without endpoints refuses; `helm upgrade` with a changed value replaces every agent while an
// established connection across nodes keeps flowing (the pinned maps stay);
// a second upgrade to VXLAN routing still carries pods across nodes.
//
// Time here: about 2.5 min with every image cached (kind/build-images,
// scripts/build-image, kind/build-test-images); a cold build of the node
// images adds about 5 min, of the Sluice image about 6.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runWithInput } from '../../src/lab/command.js';
import { findBinaries } from '../../src/lab/controlplane/binaries.js';
import { dockerUnusable, k8sTool } from '../helpers/k8s-tools.js';

const exec = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOCKER = process.env['DOCKER'] ?? 'docker';
const NAME = `sluice-kd${process.pid}`;
const NETWORK = `sluice-kd-net${process.pid}`;
const KUBECONFIG = join(ROOT, '.cache', `kind-${NAME}.kubeconfig`);
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const unusable = await dockerUnusable();
// Each test carries the reason, so the run counts them as skipped (a skipped suite counts nothing).
const skip = unusable ?? false;

async function run(file: string, args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  try {
    const { stdout } = await exec(file, args, { cwd: ROOT, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20, env: { ...process.env, ...opts.env } });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')}: ${err.message}\n${(err.stdout ?? '').slice(-4000)}\n${(err.stderr ?? '').slice(-4000)}`);
  }
}

const kubectl = (...args: string[]): Promise<string> => run(findBinaries().kubectl, ['--kubeconfig', KUBECONFIG, ...args]);

/** `agnhost connect` from a pod: 'ok', or what agnhost printed (TIMEOUT, REFUSED, …). */
async function connect(from: string, to: string, port = 8080): Promise<string> {
  try {
    await kubectl('exec', from, '--', '/agnhost', 'connect', `${to}:${port}`, '--timeout=3s');
    return 'ok';
  } catch (e) {
    return /\b(TIMEOUT|REFUSED|UNKNOWN|OTHER)\b/.exec((e as Error).message)?.[1] ?? (e as Error).message;
  }
}

interface PodView {
  readonly name: string;
  readonly ip: string;
  readonly node: string;
  readonly uid: string;
}

async function pods(namespace: string, selector?: string): Promise<PodView[]> {
  const out = await kubectl('get', 'pods', '-n', namespace, ...(selector !== undefined ? ['-l', selector] : []), '-o', 'json');
  const list = JSON.parse(out) as { items: { metadata: { name: string; uid: string }; spec: { nodeName?: string }; status: { podIP?: string } }[] };
  return list.items.map((p) => ({ name: p.metadata.name, uid: p.metadata.uid, ip: p.status.podIP ?? '', node: p.spec.nodeName ?? '' }));
}

/** The agent's in-process CNI counters on a node (GET /v1/cni/exec on the endpoint socket, from the node). */
async function cniStats(node: string): Promise<{ done: number; fallback: Record<string, number> }> {
  const out = await run(DOCKER, ['exec', node, 'curl', '-s', '--unix-socket', '/var/run/sluice/agent.sock', 'http://agent/v1/cni/exec']);
  return JSON.parse(out) as { done: number; fallback: Record<string, number> };
}

const AGNHOST = `sluice-agnhost:${findBinaries().versions.kubernetes}`;

function pod(name: string, app: string, node: string, container: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app } },
    spec: { nodeName: node, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', imagePullPolicy: 'Never', ...container }] },
  };
}

/**
 * A client that keeps one HTTP/1.1 connection to web open and sends a request on it every 100 ms,
 * printing a JSON line a second: requests done, distinct local ports (connections) used, errors, and
 * the slowest request after the first (which also connects: a new pod's first packets may meet a node
 * that has not learnt its identity yet). Node.js from the Sluice image (agnhost has no long-lived client).
 */
const KEEPER = `
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const s = { requests: 0, ports: [], errors: 0, maxMs: 0 };
function tick() {
  const t0 = Date.now();
  const req = http.get({ host: process.env.WEB, port: 8080, path: '/hostname', agent, timeout: 10000 }, (res) => {
    const port = res.socket.localPort;
    res.resume();
    res.on('end', () => {
      s.requests++;
      if (!s.ports.includes(port)) s.ports.push(port);
      if (s.requests > 1) s.maxMs = Math.max(s.maxMs, Date.now() - t0); // the first one also connects
      setTimeout(tick, 100);
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => { s.errors++; setTimeout(tick, 100); });
}
tick();
setInterval(() => console.log(JSON.stringify(s)), 1000);
`;

interface KeeperState {
  readonly requests: number;
  readonly ports: readonly number[];
  readonly errors: number;
  readonly maxMs: number;
}

async function keeperState(): Promise<KeeperState> {
  const last = (await kubectl('logs', 'keeper', '--tail', '1')).trim();
  return JSON.parse(last) as KeeperState;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (performance.now() > deadline) assert.fail(`${what}: not within ${timeoutMs / 1000} s ${last}`);
    await sleep(1000);
  }
}

async function helmUpgrade(...sets: string[]): Promise<void> {
  await run(k8sTool('helm'), ['upgrade', 'sluice', join(ROOT, 'helm', 'sluice'), '--namespace', 'kube-system', '--kubeconfig', KUBECONFIG,
    '--reuse-values', ...sets.flatMap((s) => ['--set', s]), '--wait', '--timeout', '5m'], { timeoutMs: 6 * 60_000 });
  await kubectl('-n', 'kube-system', 'rollout', 'status', 'daemonset/sluice-agent', '--timeout=5m');
}

describe('kind', () => {
  const worker = `${NAME}-worker`;
  const worker2 = `${NAME}-worker2`;
  let web = '';

  before(async () => {
    if (unusable !== undefined) return;
    await run('bash', [join(ROOT, 'kind', 'up')], { timeoutMs: 40 * 60_000, env: { SLUICE_KIND_NAME: NAME, SLUICE_KIND_NETWORK: NETWORK, SLUICE_KIND_ROUTING: 'native' } });
    const image = (await run('bash', [join(ROOT, 'kind', 'build-test-images')], { timeoutMs: 20 * 60_000 })).trim().split('\n').pop() ?? '';
    assert.equal(image, AGNHOST);
    await run(k8sTool('kind'), ['load', 'docker-image', AGNHOST, '--name', NAME], { timeoutMs: 10 * 60_000 });
    const manifests = [
      pod('web', 'web', worker, { image: AGNHOST, args: ['netexec', '--http-port=8080'], ports: [{ name: 'http', containerPort: 8080 }] }),
      pod('client-same', 'client', worker, { image: AGNHOST, args: ['pause'] }),
      pod('client-cross', 'client', worker2, { image: AGNHOST, args: ['pause'] }),
      pod('other', 'other', worker2, { image: AGNHOST, args: ['pause'] }),
    ];
    for (const m of manifests) await kubectlApply(m);
    await kubectl('wait', '--for=condition=Ready', 'pod', '--all', '--timeout=5m');
    web = (await pods('default')).find((p) => p.name === 'web')?.ip ?? '';
  });

  after(async () => {
    if (unusable !== undefined) return;
    const problems: string[] = [];
    const step = async (what: string, f: () => Promise<unknown>): Promise<void> => {
      await f().catch((e: Error) => problems.push(`${what}: ${e.message}`));
    };
    await step('kind delete cluster', () => run(k8sTool('kind'), ['delete', 'cluster', '--name', NAME, '--kubeconfig', KUBECONFIG], { timeoutMs: 5 * 60_000 }));
    await step('docker network rm', async () => {
      const nets = await run(DOCKER, ['network', 'ls', '--filter', `name=^${NETWORK}$`, '-q']);
      if (nets.trim() !== '') await run(DOCKER, ['network', 'rm', NETWORK]);
    });
    await step('rm kubeconfig', () => run('rm', ['-f', KUBECONFIG]));
    assert.deepEqual(problems, [], 'teardown');
  });

  test('pods get addresses from sluice-cni, run by the agent in its pod (the node has no Node.js)', { skip }, async () => {
    const nodes = JSON.parse(await kubectl('get', 'nodes', '-o', 'json')) as { items: { metadata: { name: string }; spec: { podCIDR?: string } }[] };
    const cidr = new Map(nodes.items.map((n) => [n.metadata.name, n.spec.podCIDR ?? '']));
    const list = await pods('default');
    assert.equal(list.length, 4);
    for (const p of list) {
      const prefix = (cidr.get(p.node) ?? '?').replace(/\.0\/24$/, '.');
      assert.ok(p.ip.startsWith(prefix), `${p.name} ${p.ip} in ${p.node}'s podCIDR ${cidr.get(p.node)}`);
    }
    await assert.rejects(run(DOCKER, ['exec', worker, 'sh', '-c', 'command -v node']), 'no Node.js on the node');
    for (const n of [worker, worker2]) {
      const stats = await cniStats(n);
      assert.ok(stats.done >= 2, `${n}: ${JSON.stringify(stats)}`);
      assert.equal(stats.fallback['not-here'], 0, `${n}: ${JSON.stringify(stats)}`);
    }
  });

  test('agnhost pods reach each other on the same node and across nodes (native routing)', { skip }, async () => {
    assert.equal(await connect('client-same', web), 'ok');
    assert.equal(await connect('client-cross', web), 'ok');
    assert.equal(await connect('other', web), 'ok');
    const routes = await run(DOCKER, ['exec', worker2, 'ip', 'route', 'show', 'proto', '211']);
    assert.match(routes, /via \S+ dev eth0/, 'native: the other nodes\' podCIDRs via their addresses');
  });

  test('the NetworkPolicies of examples/lab are enforced: clients reach web\'s named port, other pods nothing', { skip }, async () => {
    await kubectl('apply', '-f', join(ROOT, 'examples', 'lab', 'policy.yaml'));
    await waitFor('other refused', async () => ((await connect('other', web)) === 'TIMEOUT' ? true : undefined), 30_000);
    assert.equal(await connect('client-same', web), 'ok');
    assert.equal(await connect('client-cross', web), 'ok');
    const other = (await pods('default')).find((p) => p.name === 'other')?.ip ?? '';
    assert.equal(await connect('client-cross', other), 'TIMEOUT', 'default deny for every pod');
  });

  test('a ClusterIP Service answers through Sluice\'s load balancer (kind runs no kube-proxy); one without endpoints refuses', { skip }, async () => {
    const service = (name: string, app: string): Record<string, unknown> => ({
      apiVersion: 'v1', kind: 'Service', metadata: { name },
      spec: { selector: { app }, ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' }] },
    });
    await kubectlApply(service('web', 'web'));
    await kubectlApply(service('nobody', 'nobody'));
    const clusterIp = async (name: string): Promise<string> => (await kubectl('get', 'service', name, '-o', 'jsonpath={.spec.clusterIP}')).trim();
    const [webVip, nobodyVip] = [await clusterIp('web'), await clusterIp('nobody')];
    // Port 80 is translated to web's named port 8080, which the policy admits for clients.
    const viaVip = (from: string, vip: string): Promise<string> => connect(from, vip, 80);
    await waitFor('web\'s ClusterIP answers', async () => ((await viaVip('client-cross', webVip)) === 'ok' ? true : undefined), 60_000);
    assert.equal(await viaVip('client-same', webVip), 'ok', 'from the backend\'s node too');
    assert.equal(await viaVip('other', webVip), 'TIMEOUT', 'policy judges the backend: other is denied behind the VIP as well');
    await waitFor('a Service without endpoints refuses', async () => ((await viaVip('client-cross', nobodyVip)) === 'REFUSED' ? true : undefined), 60_000);
  });

  test('kube-proxy\'s ports answer on every node from the agent: healthz 10256 (/healthz JSON with lastUpdated, /livez), status 10249 (/proxyMode)', { skip }, async () => {
    for (const node of [worker, worker2]) {
      // What the e2e "should check kube-proxy urls" runs from a host-network pod, and a cloud load balancer probes.
      const healthz = await run(DOCKER, ['exec', node, 'curl', '-s', '-i', '--connect-timeout', '2', 'http://localhost:10256/healthz']);
      assert.match(healthz, /^HTTP\/1\.1 200 OK/, `${node}: ${healthz}`);
      const body = JSON.parse(healthz.slice(healthz.indexOf('{'))) as { lastUpdated: string; nodeEligible: boolean; healthy: boolean };
      assert.deepEqual([typeof body.lastUpdated, body.nodeEligible, body.healthy], ['string', true, true], `${node}: ${healthz}`);
      const livez = await run(DOCKER, ['exec', node, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://localhost:10256/livez']);
      assert.equal(livez, '200', node);
      const mode = await run(DOCKER, ['exec', node, 'curl', '-s', '-w', ' %{http_code}', 'http://localhost:10249/proxyMode']);
      assert.equal(mode, 'sluice 200', node);
    }
  });

  test('helm upgrade with a changed value replaces every agent; an established connection across nodes keeps flowing', { skip }, async () => {
    await kubectlApply(pod('keeper', 'client', worker2, { image: `sluice:${VERSION}`, command: ['node', '-e', KEEPER], env: [{ name: 'WEB', value: web }] }));
    await kubectl('wait', '--for=condition=Ready', 'pod/keeper', '--timeout=2m');
    const before = await waitFor('keeper running', async () => {
      const s = await keeperState();
      return s.requests >= 10 ? s : undefined;
    }, 60_000);
    assert.equal(before.ports.length, 1, JSON.stringify(before));
    const agents = await pods('kube-system', 'app.kubernetes.io/name=sluice');
    await helmUpgrade('agent.config.logLevel=debug');
    const replaced = await pods('kube-system', 'app.kubernetes.io/name=sluice');
    assert.equal(replaced.length, 3);
    for (const a of replaced) assert.ok(!agents.some((b) => b.uid === a.uid), `agent ${a.name} on ${a.node} was replaced`);
    await sleep(3000);
    const afterUpgrade = await keeperState();
    assert.ok(afterUpgrade.requests > before.requests + 20, JSON.stringify({ before, afterUpgrade }));
    assert.deepEqual(afterUpgrade.ports, before.ports, 'the same connection all along');
    assert.equal(afterUpgrade.errors, 0);
    assert.ok(afterUpgrade.maxMs < 1000, `slowest request ${afterUpgrade.maxMs} ms: no retransmission stall`);
  });

  test('helm upgrade to VXLAN routing: pods still reach each other across nodes, policy still enforced', { skip }, async () => {
    await helmUpgrade('agent.config.routing.mode=vxlan');
    const routes = await run(DOCKER, ['exec', worker2, 'ip', 'route', 'show', 'proto', '211']);
    assert.match(routes, /dev sluice_vxlan/, routes);
    assert.doesNotMatch(routes, /dev eth0/, routes);
    assert.equal(await connect('client-cross', web), 'ok');
    assert.equal(await connect('other', web), 'TIMEOUT');
  });
});

async function kubectlApply(manifest: Record<string, unknown>): Promise<void> {
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  const r = await runWithInput(findBinaries().kubectl, ['--kubeconfig', KUBECONFIG, 'apply', '-f', '-'], env, JSON.stringify(manifest));
  if (r.exitCode !== 0) throw new Error(`kubectl apply ${JSON.stringify(manifest)}: exit ${r.exitCode}: ${r.stderr}`);
}
