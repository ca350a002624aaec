/**
 * sluice-agent --datapath bpf against the real control plane
 * (src/lab/controlplane) and real pinned maps: kubectl apply of a
 * default-deny NetworkPolicy makes the local endpoint's entry in the pinned
 * sl_endpoints_v2 ingress-isolated; kubectl delete clears it. The maps are
 * created by the agent in a fresh pin dir, removed in finally. Fails (never
 * skips) when the control-plane binaries or the BPF object are missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EndpointClient } from '../../src/endpoint/client.js';
import { BPFFS_MOUNT, ensureBpffsMounted, removePinDir } from '../../src/datapath/bpffs.js';
import { SluiceEndpointFlags } from '../../src/datapath/generated/abi.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { ControlPlane } from '../../src/lab/controlplane/controlplane.js';
import { httpGet } from '../../src/lab/controlplane/readiness.js';
import { until } from './helpers/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'agent', 'main.js');
const NS = 'sluice-agt-bpf';

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
kind: Pod
metadata: {name: web, namespace: ${NS}, labels: {app: web}}
spec:
  nodeName: node-a
  containers: [{name: c, image: example.invalid/x:1}]
`;

const denyAll = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: ${NS}}
spec: {podSelector: {}, policyTypes: [Ingress]}
`;

test('--datapath bpf: kubectl apply/delete of a default-deny policy reaches the pinned endpoint entry', async () => {
  ensureBpffsMounted();
  const pinDir = `${BPFFS_MOUNT}/sluice-agt-${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agt-bpf-'));
  let cp: ControlPlane | undefined;
  let child: ChildProcess | undefined;
  let stderr = '';
  try {
    cp = await ControlPlane.start();
    const plane = cp;
    const kubectl = (args: string[], input?: string): Promise<string> => plane.kubectl(args, input === undefined ? {} : { input });
    await kubectl(['apply', '-f', '-'], objects);
    await kubectl(['patch', 'pod', 'web', '-n', NS, '--subresource=status', '--type=merge', '-p',
      JSON.stringify({ status: { phase: 'Running', podIP: '10.244.1.10', podIPs: [{ ip: '10.244.1.10' }] } })]);

    const socket = join(dir, 'agent.sock');
    const proc = spawn(process.execPath, [
      MAIN, '--datapath', 'bpf', '--pin-dir', pinDir, '--kubeconfig', cp.kubeconfigPath, '--node-name', 'node-a',
      '--state-dir', join(dir, 'state'), '--endpoint-socket', socket, '--http-listen', '127.0.0.1:0',
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

    // POST answers once the endpoint's policy is in the maps.
    const { endpoint } = await new EndpointClient(socket).register({
      containerId: 'web1', ifname: 'eth0', netns: '/var/run/netns/web1', podNamespace: NS, podName: 'web',
      ip: '10.244.1.10', hostIfname: 'lxcweb1', hostIfindex: 4242,
    });
    const maps = openPinnedDatapathMaps(pinDir);
    try {
      const flags = (): number | undefined => maps.endpoints.lookup(endpoint.endpointId)?.flags;
      const isolated = (): boolean => ((flags() ?? 0) & SluiceEndpointFlags.INGRESS_ISOLATED) !== 0;
      assert.equal(flags(), 0, 'the endpoint entry is there, not isolated');
      assert.equal(maps.ipcache.lookup({ prefixlen: 32, addr: (10 << 24 | 244 << 16 | 1 << 8 | 10) >>> 0 }) !== undefined, true, 'the pod IP is in the ipcache');

      await kubectl(['apply', '-f', '-'], denyAll);
      await until('ingress-isolated', isolated, 15_000);
      await kubectl(['delete', 'networkpolicy', 'default-deny', '-n', NS]);
      await until('not isolated', () => flags() !== undefined && !isolated(), 15_000);
    } finally {
      maps.close();
    }
    const metrics = (await httpGet({ url: `http://127.0.0.1:${port}/metrics` })).body;
    assert.match(metrics, /sluice_agent_map_entries\{map="endpoints"\} 1\b/);
    assert.match(metrics, /sluice_agent_map_max_entries\{map="policy"\} [1-9]/);

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
