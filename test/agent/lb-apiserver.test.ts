/**
 * sluice-agent --datapath bpf against the real control plane
 * (src/lab/controlplane) and real pinned maps (a /sys/fs/bpf/sluice-lba-*
 * pin dir the agent creates, removed in finally): a Service and a
 * hand-made EndpointSlice created with kubectl appear in the load
 * balancer's maps and in `sluice lb list -o json`; a second slice of the
 * same Service (another manager) adds its endpoint; deleting the slice and
 * then the Service takes them out again. Fails (never skips) when the
 * control-plane binaries or the BPF object are missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BPFFS_MOUNT, ensureBpffsMounted, removePinDir } from '../../src/datapath/bpffs.js';
import type { LbListRow } from '../../src/cli/lb-list.js';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { httpGet } from '../../src/lab/controlplane/readiness.js';
import { until } from './helpers/wait.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'src', 'agent', 'main.js');
const CLI = join(ROOT, 'src', 'cli', 'main.js');
const NS = 'sluice-lba';
const run = promisify(execFile);

const objects = `
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
spec: {podCIDR: 10.244.1.0/24}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${NS}}
spec:
  ports: [{name: http, protocol: TCP, port: 80, targetPort: web}]
`;

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
  const { stdout } = await run(process.execPath, [CLI, 'lb', 'list', '--pin-dir', pinDir, '-o', 'json']);
  return JSON.parse(stdout) as LbListRow[];
}

test('--datapath bpf: a Service and its EndpointSlices created with kubectl reach the lb maps and `sluice lb list`, and leave on delete', async () => {
  ensureBpffsMounted();
  const pinDir = `${BPFFS_MOUNT}/sluice-lba-${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-lba-'));
  let cp: ControlPlane | undefined;
  let child: ChildProcess | undefined;
  let stderr = '';
  try {
    cp = await ControlPlane.start();
    const plane = cp;
    const kubectl = (args: string[], input?: string): Promise<string> => plane.kubectl(args, input === undefined ? {} : { input });
    await kubectl(['apply', '-f', '-'], objects);
    const vip = (await kubectl(['get', 'service', 'web', '-n', NS, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
    assert.match(vip, /^\d+\.\d+\.\d+\.\d+$/);
    const frontend = `${vip}:80/TCP`;

    const proc = spawn(process.execPath, [
      MAIN, '--datapath', 'bpf', '--pin-dir', pinDir, '--kubeconfig', cp.kubeconfigPath, '--node-name', 'node-a',
      '--state-dir', join(dir, 'state'), '--endpoint-socket', join(dir, 'agent.sock'), '--http-listen', '127.0.0.1:0',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    proc.stdout.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) lines.push(JSON.parse(l) as Record<string, unknown>);
    });
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const started = await until('the started line', () => lines.find((l) => l['msg'] === 'agent started'), 20_000);
    const port = Number(String(started['http']).split(':').pop());
    await until('ready', async () => (await httpGet({ url: `http://127.0.0.1:${port}/readyz` })).status === 200, 20_000);

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

    await kubectl(['delete', 'endpointslice', 'web-a', '-n', NS]);
    await until('the first slice\'s backend gone', async () => (await backends()) === '10.244.3.10:9090/active', 15_000);
    assert.equal((await row())?.serviceId, id, 'the service keeps its id');

    const metrics = (await httpGet({ url: `http://127.0.0.1:${port}/metrics` })).body;
    assert.match(metrics, /sluice_agent_owner_complete\{owner="lb"\} 1\b/);
    assert.match(metrics, /sluice_agent_map_entries\{map="lb-backends"\} 1\b/);
    const ready = await httpGet({ url: `http://127.0.0.1:${port}/readyz?verbose` });
    assert.match(ready.body, /datapath\/lb/);

    await kubectl(['delete', 'service', 'web', '-n', NS]);
    await until('the frontend gone', async () => (await row()) === undefined, 15_000);
    assert.equal((await lbList(pinDir)).some((r) => r.serviceId === id), false);

    proc.kill('SIGTERM');
    assert.equal(await exit, 0);
    child = undefined;
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\nagent stderr: ${stderr}`, { cause: e });
  } finally {
    child?.kill('SIGKILL');
    await cp?.stop();
    removePinDir(pinDir);
    rmSync(dir, { recursive: true, force: true });
  }
});
