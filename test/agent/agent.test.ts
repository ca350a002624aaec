/**
 * The wired agent over real HTTP and a real unix socket: the API server
 * transport against a fake API server and a fake datapath. Covers
 * readiness after the first sync, watch-driven recompiles, endpoint
 * registration waiting for the datapath, API-server outage and 410, and an
 * agent restart that keeps endpoints and writes nothing new.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { DEFAULT_CONFIG, type AgentConfig } from '../../src/agent/config.js';
import { EndpointClient } from '../../src/endpoint/client.js';
import { ApiServerTransport } from '../../src/agent/k8s/api-transport.js';
import { loadKubeConfig } from '../../src/agent/k8s/kubeconfig.js';
import { FakeApiServer } from './helpers/fake-apiserver.js';
import { FakeDatapath } from './helpers/fake-datapath.js';
import { captureLog } from './helpers/logs.js';
import { denyAll, namespace, node, PATHS, pod } from './helpers/objects.js';
import { until } from './helpers/wait.js';

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

interface World {
  dir: string;
  api: FakeApiServer;
  config: AgentConfig;
  writer: FakeDatapath;
  logs: ReturnType<typeof captureLog>;
  start(): Promise<{ agent: Agent; compiler: { readonly compiled: FakeDatapath['compiled'] }; port: number }>;
}

async function world(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-e2e-'));
  const api = new FakeApiServer();
  await api.start();
  api.writeKubeconfig(join(dir, 'kubeconfig'));
  const config: AgentConfig = {
    ...DEFAULT_CONFIG,
    nodeName: 'node-a',
    kubeconfig: join(dir, 'kubeconfig'),
    inCluster: false,
    stateDir: join(dir, 'state'),
    endpointSocket: join(dir, 'run', 'agent.sock'),
    httpListen: '127.0.0.1:0',
    sync: { ...DEFAULT_CONFIG.sync, debounceMs: 5, maxDelayMs: 50, endpointTimeoutMs: 3000 },
    watch: { ...DEFAULT_CONFIG.watch, backoff: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0.5 } },
  };
  const writer = new FakeDatapath();
  const logs = captureLog();
  const agents: Agent[] = [];
  const w: World = {
    dir, api, config, writer, logs,
    async start() {
      // A new agent process: its owners know nothing of the maps yet; what it compiles from here on is its own.
      writer.invalidate();
      const from = writer.compiled.length;
      const compiler = { get compiled() { return writer.compiled.slice(from); } };
      const transport = new ApiServerTransport(loadKubeConfig(config));
      const agent = new Agent({ config, log: logs.log, transport, datapath: writer, stats: writer });
      agents.push(agent);
      const { http } = await agent.start();
      assert.ok('port' in http, 'httpListen is host:port');
      return { agent, compiler, port: http.port };
    },
  };
  try {
    await fn(w);
  } finally {
    for (const a of agents) await a.stop();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function seed(api: FakeApiServer): void {
  api.put(PATHS.namespaces, namespace('shop'));
  api.put(PATHS.nodes, node('node-a'));
  api.put(PATHS.pods, pod('shop', 'web', { ip: '10.9.0.2', node: 'node-a' }));
  api.put(PATHS.pods, pod('shop', 'db', { ip: '10.9.1.2', node: 'node-b' }));
}

const endpoint = {
  containerId: 'ctr-new', ifname: 'eth0', netns: '/var/run/netns/new', podNamespace: 'shop', podName: 'new',
  ip: '10.9.0.7', hostIfname: 'lxcnew', hostIfindex: 4242,
};

test('ready after the first full sync; watch events recompile; bad objects are named', async () => {
  await world(async (w) => {
    seed(w.api);
    w.api.put(PATHS.networkPolicies, { ...denyAll('shop', 'typo'), spec: { podSelector: {}, ingres: [] } });
    const { agent, port } = await w.start();
    await until('ready', async () => (await httpGet(port, '/readyz')).status === 200);
    assert.deepEqual([...w.writer.maps.entries()].filter(([k]) => !k.startsWith('labels/')).sort(), [['policies', '0'], ['shop/db', '10.9.1.2'], ['shop/web', '10.9.0.2']]);
    assert.equal(w.writer.maps.get('labels/shop/web'), 'app=web,ns:kubernetes.io/metadata.name=shop');
    const line = w.logs.find('NetworkPolicy shop/typo')[0];
    assert.ok(line !== undefined, 'the bad policy is logged by name');
    assert.match(String(line['msg']), /spec\.ingres/);

    w.api.put(PATHS.networkPolicies, denyAll('shop', 'good'));
    w.api.put(PATHS.pods, pod('shop', 'web', { ip: '10.9.0.3', node: 'node-a' }));
    await until('the change in the maps', () => w.writer.maps.get('shop/web') === '10.9.0.3' && w.writer.maps.get('policies') === '1');

    const metrics = (await httpGet(port, '/metrics')).body;
    assert.match(metrics, /sluice_agent_informer_synced\{resource="networkpolicies"\} 1/);
    assert.match(metrics, /sluice_agent_object_problems\{kind="NetworkPolicy",object="shop\/typo",severity="error"\} 1/);
    assert.match(metrics, /sluice_agent_map_pressure_percent\{map="sl_fake_v1"\}/);
    assert.match(metrics, /sluice_agent_sync_latency_seconds_count [1-9]/);
    assert.equal(agent.readiness().ready, true);
  });
});

test('an endpoint ADD answers once its pod is in the maps, with the registered IP', async () => {
  await world(async (w) => {
    seed(w.api);
    w.api.put(PATHS.pods, pod('shop', 'new', { node: 'node-a' })); // no IP yet: the kubelet has not reported it
    await w.start();
    const client = new EndpointClient(w.config.endpointSocket);
    const { endpoint: e, created } = await client.register(endpoint);
    assert.equal(created, true);
    // By the time the ADD answered, the maps already held the endpoint and its pod's address.
    assert.equal(w.writer.maps.get(`endpoint/${e.endpointId}`), 'shop/new');
    assert.equal(w.writer.maps.get('shop/new'), '10.9.0.7');
    await client.unregister('ctr-new', 'eth0');
    await until('the endpoint gone from the maps', () => !w.writer.maps.has(`endpoint/${e.endpointId}`));
  });
});

test('API server down: the agent stays ready, retries, and catches up (410 included) when it returns', async () => {
  await world(async (w) => {
    seed(w.api);
    const { agent, port } = await w.start();
    await until('ready', () => agent.readiness().ready);
    await w.api.stop();
    await until('the watch failures noticed', () => w.logs.find('watch ended').length > 0);
    assert.equal((await httpGet(port, '/readyz')).status, 200, 'the datapath keeps enforcing the last state');
    // Changes made while the agent could not watch, then history compacted: a resume gets 410.
    w.api.delete(PATHS.pods, 'shop', 'db');
    w.api.put(PATHS.pods, pod('shop', 'cache', { ip: '10.9.2.2', node: 'node-b' }));
    w.api.compact();
    await w.api.start();
    await until('caught up', () => !w.writer.maps.has('shop/db') && w.writer.maps.get('shop/cache') === '10.9.2.2');
    const metrics = (await httpGet(port, '/metrics')).body;
    assert.match(metrics, /sluice_agent_watch_restarts_total\{resource="pods",reason="(error|closed)"\} [1-9]/);
    assert.match(metrics, /sluice_agent_watch_restarts_total\{resource="pods",reason="expired"\} [1-9]/);
    assert.match(metrics, /sluice_agent_relists_total\{resource="pods"\} 2/);
  });
});

test('a restarted agent keeps its endpoints and, with nothing changed, writes nothing', async () => {
  await world(async (w) => {
    seed(w.api);
    w.api.put(PATHS.pods, pod('shop', 'new', { node: 'node-a', ip: '10.9.0.7' }));
    const first = await w.start();
    const { endpoint: e } = await new EndpointClient(w.config.endpointSocket).register(endpoint);
    const before = w.writer.applied.length;
    await first.agent.stop();

    const second = await w.start();
    await until('ready again', () => second.agent.readiness().ready);
    assert.deepEqual(await new EndpointClient(w.config.endpointSocket).list(), [e]);
    assert.equal(w.writer.applied.length, before, 'the plan from the maps as they are was empty');
    assert.equal(second.compiler.compiled[0]?.current, w.writer.maps, 'compiled against what the maps hold');
    assert.equal(w.logs.find('endpoint registry loaded: 1 endpoints').length, 1);
  });
});
