/**
 * The agent against a real kube-apiserver (etcd + kube-apiserver +
 * kube-controller-manager from scripts/build-controlplane, started by
 * src/lab/controlplane). If the binaries were never built these tests FAIL
 * with that instruction; they never skip.
 *
 * The datapath side is the fake datapath (test/agent/helpers): these
 * tests are about watching, resyncing and the endpoint API, not about maps.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { httpGet } from '../../src/lab/controlplane/readiness.js';
import { Agent } from '../../src/agent/agent.js';
import { DEFAULT_CONFIG, type AgentConfig } from '../../src/agent/config.js';
import { EndpointClient } from '../../src/endpoint/client.js';
import { ApiServerTransport } from '../../src/agent/k8s/api-transport.js';
import { loadKubeConfig } from '../../src/agent/k8s/kubeconfig.js';
import { FakeDatapath } from './helpers/fake-datapath.js';
import { captureLog } from './helpers/logs.js';
import { until } from './helpers/wait.js';

const NS = 'sluice-agent-it';

const base = `
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}, labels: {team: a}}
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
spec: {podCIDR: 10.244.1.0/24}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
spec: {podCIDR: 10.244.2.0/24}
`;

function podYaml(name: string, node: string, labels = `{app: ${name}}`): string {
  return `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}, labels: ${labels}}
spec:
  nodeName: ${node}
  containers: [{name: c, image: example.invalid/x:1, ports: [{name: http, containerPort: 8080}]}]
`;
}

const policy = (name: string): string => `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: ${NS}}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{protocol: TCP, port: http}]}]
`;

describe('the agent against a real kube-apiserver', () => {
  let cp: ControlPlane | undefined;
  let startError: unknown;
  let dir = '';
  let config: AgentConfig;
  const writer = new FakeDatapath();
  const logs = captureLog();
  let agent: Agent | undefined;
  let port = 0;

  const plane = (): ControlPlane => {
    if (cp !== undefined) return cp;
    throw startError instanceof Error ? startError : new Error(`control plane did not start: ${String(startError)}`);
  };
  const running = (): Agent => {
    if (agent === undefined) throw new Error('the agent is not running');
    return agent;
  };
  const kubectl = (args: string[], input?: string): Promise<string> => plane().kubectl(args, input === undefined ? {} : { input });
  const setIp = (name: string, ip: string): Promise<string> =>
    kubectl(['patch', 'pod', name, '-n', NS, '--subresource=status', '--type=merge', '-p',
      JSON.stringify({ status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } })]);
  const startAgent = async (): Promise<void> => {
    const a = new Agent({ config, log: logs.log, transport: new ApiServerTransport(loadKubeConfig(config)), datapath: writer, stats: writer });
    const { http } = await a.start();
    assert.ok('port' in http, 'httpListen is host:port');
    port = http.port;
    agent = a;
  };
  const metrics = async (): Promise<string> => (await httpGet({ url: `http://127.0.0.1:${port}/metrics` })).body;

  before(async () => {
    try {
      cp = await ControlPlane.start();
    } catch (e) {
      startError = e;
      return;
    }
    dir = mkdtempSync(join(tmpdir(), 'sluice-agent-it-'));
    config = {
      ...DEFAULT_CONFIG,
      nodeName: 'node-a',
      kubeconfig: cp.kubeconfigPath,
      inCluster: false,
      stateDir: join(dir, 'state'),
      endpointSocket: join(dir, 'agent.sock'),
      httpListen: '127.0.0.1:0',
      sync: { ...DEFAULT_CONFIG.sync, endpointTimeoutMs: 5000 },
      watch: { ...DEFAULT_CONFIG.watch, backoff: { initialMs: 200, maxMs: 2000, factor: 2, jitter: 0.5 } },
    };
    await kubectl(['apply', '-f', '-'], base);
    await kubectl(['apply', '-f', '-'], podYaml('web', 'node-a') + '---' + podYaml('client', 'node-b', '{app: client, role: client}'));
    await setIp('web', '10.244.1.10');
    await setIp('client', '10.244.2.20');
    await startAgent();
  });

  after(async () => {
    await agent?.stop();
    await cp?.stop();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  test('lists everything, becomes ready, and sees kubectl apply / label / delete', async () => {
    plane();
    await until('ready', () => running().readiness().ready, 20_000);
    assert.equal((await httpGet({ url: `http://127.0.0.1:${port}/readyz` })).status, 200);
    assert.equal(writer.maps.get(`${NS}/web`), '10.244.1.10');
    assert.equal(writer.maps.get(`${NS}/client`), '10.244.2.20');
    assert.equal(running().informers.nodes.store.get('node-a')?.spec?.podCIDR, '10.244.1.0/24');

    await kubectl(['apply', '-f', '-'], policy('allow-client'));
    await until('the policy in the maps', () => writer.maps.get('policies') === '1');
    await kubectl(['label', 'pod', 'web', '-n', NS, 'tier=front']);
    await until('the pod label', () => writer.maps.get(`labels/${NS}/web`)?.includes('tier=front'));
    await kubectl(['label', 'namespace', NS, 'team=b', '--overwrite']);
    await until('the namespace label', () => writer.maps.get(`labels/${NS}/web`)?.includes('ns:team=b'));
    await kubectl(['delete', 'networkpolicy', 'allow-client', '-n', NS]);
    await until('the policy gone', () => writer.maps.get('policies') === '0');

    // Stored slim: no managedFields or last-applied annotations in the cache.
    const cached = running().informers.pods.store.get(`${NS}/web`);
    assert.deepEqual(Object.keys(cached?.metadata ?? {}).sort(), ['labels', 'name', 'namespace', 'uid']);
  });

  test('Services and the EndpointSlices the controller manager makes for them are watched', async () => {
    plane();
    await kubectl(['apply', '-f', '-'], `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${NS}}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
`);
    await until('the service', () => running().informers.services.store.get(`${NS}/web`)?.spec?.clusterIP);
    const slice = await until('its EndpointSlice with the pod', () =>
      [...running().informers.endpointSlices.store.values()].find((s) =>
        s.metadata.namespace === NS && s.metadata.labels?.['kubernetes.io/service-name'] === 'web' &&
        (s.endpoints ?? []).some((e) => e.addresses.includes('10.244.1.10'))), 30_000);
    assert.equal(slice.addressType, 'IPv4');
  });

  test('a pod without an IP is named in a log line and a metric; everything else is unaffected', async () => {
    plane();
    await kubectl(['apply', '-f', '-'], podYaml('pending', 'node-b'));
    const line = await until('the warning', () => logs.find(`Pod ${NS}/pending: has no IPv4 address`)[0]);
    assert.equal(line['level'], 'warn');
    assert.equal(line['object'], `Pod ${NS}/pending`);
    assert.match(await metrics(), new RegExp(`sluice_agent_object_problems\\{kind="Pod",object="${NS}/pending",severity="warning"\\} 1`));
    assert.equal(writer.maps.get(`${NS}/web`), '10.244.1.10');
    assert.equal(running().readiness().ready, true);
    await setIp('pending', '10.244.2.30');
    await until('resolved', () => logs.find(`Pod ${NS}/pending: problem resolved`).length === 1);
    await kubectl(['delete', 'pod', 'pending', '-n', NS, '--grace-period=0', '--force']);
    await until('the pod gone', () => !writer.maps.has(`${NS}/pending`));
  });

  test('an endpoint ADD for a pod bound to this node answers once its policy is in the maps', async () => {
    plane();
    await kubectl(['apply', '-f', '-'], podYaml('fresh', 'node-a'));
    await until('the pod in the cache', () => running().informers.pods.store.get(`${NS}/fresh`));
    const client = new EndpointClient(config.endpointSocket);
    const { endpoint } = await client.register({
      containerId: 'abc', ifname: 'eth0', netns: '/var/run/netns/fresh', podNamespace: NS, podName: 'fresh',
      ip: '10.244.1.11', hostIfname: 'lxcfresh', hostIfindex: 7001,
    });
    assert.equal(writer.maps.get(`endpoint/${endpoint.endpointId}`), `${NS}/fresh`);
    assert.equal(writer.maps.get(`${NS}/fresh`), '10.244.1.11', 'the registered IP, before the kubelet reports it');
  });

  test('API server down: the agent stays ready and retries; back up: it resyncs, relisting after 410', async () => {
    const c = plane();
    await until('ready', () => running().readiness().ready);
    const relistsBefore = /sluice_agent_relists_total\{resource="pods"\} (\d+)/.exec(await metrics())?.[1];
    await c.stopApiserver();
    await until('the watches noticed', () => logs.find('pods: watch ended').length > 0);
    assert.equal(running().readiness().ready, true, 'the datapath keeps the last state');
    // The apiserver sends its watchers a bookmark when it shuts down, so the agent holds the latest
    // resourceVersion. Move etcd's revision past it (a key outside /registry) and compact there: no
    // version the agent holds can be resumed, and its watches must relist (410).
    let revision = '';
    for (let i = 0; i < 3; i++) {
      const put = await postJson(`${c.etcdUrl}/v3/kv/put`, { key: b64('/sluice-test/bump'), value: b64(String(i)) });
      revision = (JSON.parse(put.body) as { header: { revision: string } }).header.revision;
    }
    const compacted = await postJson(`${c.etcdUrl}/v3/kv/compaction`, { revision, physical: true });
    assert.equal(compacted.status, 200, compacted.body);
    await c.startApiserver();
    await kubectl(['apply', '-f', '-'], policy('after-outage'));
    await until('the change after the outage', () => writer.maps.get('policies') === '1', 30_000);
    const text = await metrics();
    assert.match(text, /sluice_agent_watch_restarts_total\{resource="pods",reason="(error|closed)"\} [1-9]/);
    const relistsAfter = /sluice_agent_relists_total\{resource="pods"\} (\d+)/.exec(text)?.[1];
    const expired = /sluice_agent_watch_restarts_total\{resource="pods",reason="expired"\} (\d+)/.exec(text)?.[1];
    assert.ok(Number(relistsAfter) > Number(relistsBefore), `relists ${relistsBefore} → ${relistsAfter}`);
    assert.ok(Number(expired) >= 1, `expired restarts: ${expired}\n${text.split('\n').filter((l) => l.includes('watch_restarts')).join('\n')}`);
  });

  test('a fresh agent catches up with changes made while it was down and keeps its endpoints', async () => {
    plane();
    await running().stop();
    agent = undefined;
    await kubectl(['delete', 'networkpolicy', 'after-outage', '-n', NS]);
    await kubectl(['delete', 'pod', 'client', '-n', NS, '--grace-period=0', '--force']);
    const writes = writer.applied.length;
    await startAgent();
    await until('ready', () => running().readiness().ready, 20_000);
    assert.equal(writer.maps.get('policies'), '0');
    assert.equal(writer.maps.has(`${NS}/client`), false);
    assert.equal(writer.applied.length, writes + 1, 'one plan: the difference');
    assert.equal((await new EndpointClient(config.endpointSocket).list()).length, 1);
  });
});

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  return { status: res.status, body: await res.text() };
}
