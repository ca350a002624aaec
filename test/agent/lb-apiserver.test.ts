/**
 * sluice-agent --datapath bpf against the real control plane
 * (src/lab/controlplane) and real pinned maps (a /sys/fs/bpf/sluice-lba-*
 * pin dir the agent creates, removed in finally): a Service (Maglev by its
 * service.sluice.io/lb-algorithm annotation) and a hand-made EndpointSlice
 * created with kubectl appear in the load balancer's maps and in
 * `sluice lb list -o json`; a second slice of the
 * same Service (another manager) adds its endpoint; deleting the slice
 * takes its endpoint out; a slice made while the agent is down appears
 * after its restart with the service's and the old backend's ids kept;
 * deleting the Service takes it all out. Fails (never skips) when the
 * control-plane binaries or the BPF object are missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BPFFS_MOUNT, ensureBpffsMounted, removePinDir } from '../../src/datapath/bpffs.js';
import type { LbListRow } from '../../src/cli/lb-list.js';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { httpGet } from '../../src/lab/controlplane/readiness.js';
import { sluice } from '../helpers/sluice-cli.js';
import { LB_ALGORITHM_ANNOTATION } from '../../src/agent/k8s/resources.js';
import { AgentProcess } from './helpers/agent-process.js';
import { namespace, node } from './helpers/objects.js';
import { until } from './helpers/wait.js';

const NS = 'sluice-lba';

const objects = JSON.stringify({
  apiVersion: 'v1', kind: 'List', items: [
    namespace(NS), node('node-a', '10.244.1.0/24'),
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS, annotations: { [LB_ALGORITHM_ANNOTATION]: 'maglev' } }, spec: { ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 'web' }] } },
  ],
});

const slice = (name: string, manager: string, ip: string, port: number): string => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  namespace: ${NS}
  labels: {kubernetes.io/service-name: web, endpointslice.kubernetes.io/managed-by: ${manager}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: ${port}}]
endpoints: [{addresses: [${ip}], conditions: {ready: true}, nodeName: node-b}]
`;

async function lbList(pinDir: string): Promise<LbListRow[]> {
  const r = await sluice('lb', 'list', '--pin-dir', pinDir, '-o', 'json');
  if (r.code !== 0) throw new Error(`sluice lb list exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as LbListRow[];
}

test('--datapath bpf: a Service and its EndpointSlices created with kubectl reach the lb maps and `sluice lb list`, and leave on delete', async () => {
  ensureBpffsMounted();
  const pinDir = `${BPFFS_MOUNT}/sluice-lba-${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-lba-'));
  let cp: ControlPlane | undefined;
  let agent: AgentProcess | undefined;
  try {
    cp = await ControlPlane.start();
    const plane = cp;
    const kubectl = (args: string[], input?: string): Promise<string> => plane.kubectl(args, input === undefined ? {} : { input });
    await kubectl(['apply', '-f', '-'], objects);
    const vip = (await kubectl(['get', 'service', 'web', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    assert.match(vip, /^\d+\.\d+\.\d+\.\d+$/);
    const frontend = `${vip}:80/TCP`;

    const argv = [
      '--datapath', 'bpf', '--pin-dir', pinDir, '--kubeconfig', cp.kubeconfigPath, '--node-name', 'node-a',
      '--state-dir', join(dir, 'state'), '--endpoint-socket', join(dir, 'agent.sock'), '--http-listen', '127.0.0.1:0',
    ];
    agent = new AgentProcess(argv);
    await agent.ready(30_000);

    const row = async (): Promise<LbListRow | undefined> => (await lbList(pinDir)).find((r) => r.frontend === frontend);
    const backends = async (): Promise<string> => ((await row())?.backends ?? []).map((b) => `${b.address}/${b.state}`).join(' ');

    // No EndpointSlice yet: the frontend is there and rejects.
    const empty = await until('the frontend without backends', row, 15_000);
    assert.deepEqual([empty.scope, empty.backendSet, empty.algorithm, empty.whenEmpty, empty.tableSize, empty.backends], ['pod', 'cluster', 'maglev', 'reject', 0, []]);

    await kubectl(['apply', '-f', '-'], slice('web-a', 'controller-x', '10.244.2.10', 8080));
    await until('one backend', async () => (await backends()) === '10.244.2.10:8080/active', 15_000);
    // A second slice of the same Service, whoever manages it, at another number for the named port.
    await kubectl(['apply', '-f', '-'], slice('web-b', 'by-hand', '10.244.3.10', 9090));
    await until('two backends', async () => (await backends()) === '10.244.2.10:8080/active 10.244.3.10:9090/active', 15_000);
    const both = await row();
    assert.equal(both?.tableSize, 16381);
    assert.equal(both?.backends.reduce((n, b) => n + b.slots, 0), 16381, 'every Maglev slot names one of them');
    const id = both?.serviceId;

    const idOf = new Map(both?.backends.map((b) => [b.address, b.backendId]));

    await kubectl(['delete', 'endpointslice', 'web-a', '-n', NS]);
    await until('the first slice\'s backend gone', async () => (await backends()) === '10.244.3.10:9090/active', 15_000);
    assert.equal((await row())?.serviceId, id, 'the service keeps its id');

    // A change while the agent is down: the restarted agent reads the ids back from the maps and keeps them.
    assert.equal(await agent.stop(), 0);
    agent = undefined;
    await kubectl(['apply', '-f', '-'], slice('web-c', 'by-hand', '10.244.4.10', 9090));
    agent = new AgentProcess(argv);
    const { port } = await agent.ready(30_000);
    await until('the slice made while the agent was down', async () => (await backends()) === '10.244.3.10:9090/active 10.244.4.10:9090/active', 15_000);
    const after = await row();
    assert.equal(after?.serviceId, id, 'the service keeps its id across the restart');
    assert.equal(after?.backends.find((b) => b.address === '10.244.3.10:9090')?.backendId, idOf.get('10.244.3.10:9090'), 'and so does its backend');
    assert.ok((after?.backends.find((b) => b.address === '10.244.4.10:9090')?.backendId ?? 0) > Math.max(...idOf.values()), 'a new backend gets a new id');

    const metrics = (await httpGet({ url: `http://127.0.0.1:${port}/metrics` })).body;
    assert.match(metrics, /sluice_agent_owner_complete\{owner="lb"\} 1\b/);
    assert.match(metrics, /sluice_agent_map_entries\{map="lb-backends"\} 2\b/);
    const ready = await httpGet({ url: `http://127.0.0.1:${port}/readyz?verbose` });
    assert.match(ready.body, /datapath\/lb/);

    await kubectl(['delete', 'service', 'web', '-n', NS]);
    await until('the frontend gone', async () => (await row()) === undefined, 15_000);
    assert.equal((await lbList(pinDir)).some((r) => r.serviceId === id), false);

    assert.equal(await agent.stop(), 0);
    agent = undefined;
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\nagent stderr: ${agent?.stderrText ?? ''}`, { cause: e });
  } finally {
    agent?.kill();
    await cp?.stop();
    removePinDir(pinDir);
    rmSync(dir, { recursive: true, force: true });
  }
});
