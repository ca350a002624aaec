/** The sluice-agent binary as a process: flags, exit codes, JSON logs, probes, socket, SIGTERM. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EndpointClient } from '../../src/endpoint/client.js';
import { FakeApiServer } from './helpers/fake-apiserver.js';
import { namespace, PATHS, pod } from './helpers/objects.js';
import { until } from './helpers/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'agent', 'main.js');

function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'], ...env }, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function httpStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject).end();
  });
}

test('--help prints the flags and exits 0', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--node-name NAME/);
  assert.match(r.stdout, /--endpoint-socket PATH/);
});

test('bad flags and config exit 2 with the field named', () => {
  const unknown = run(['--nodename', 'x']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /--nodename/);
  const missing = run(['--kubeconfig', '/etc/hostname']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /nodeName: required/);
  const size = run(['--node-name', 'n', '--kubeconfig', '/etc/hostname', '--map-size', 'policy=-1']);
  assert.equal(size.status, 2);
  assert.match(size.stderr, /--map-size/);
  const level = run(['--node-name', 'n', '--kubeconfig', '/etc/hostname', '--log-level', 'chatty']);
  assert.equal(level.status, 2);
  assert.match(level.stderr, /logLevel: "chatty"/);
});

test('runs against an API server: JSON logs, ready, endpoint socket 0600, clean SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-main-'));
  const api = new FakeApiServer();
  await api.start();
  let child: ChildProcess | undefined;
  try {
    api.writeKubeconfig(join(dir, 'kubeconfig'));
    api.put(PATHS.namespaces, namespace('default'));
    api.put(PATHS.pods, pod('default', 'web', { node: 'node-a' }));
    const socket = join(dir, 'agent.sock');
    child = spawn(process.execPath, [
      MAIN, '--datapath', 'none', '--kubeconfig', join(dir, 'kubeconfig'), '--node-name', 'node-a',
      '--state-dir', join(dir, 'state'), '--endpoint-socket', socket, '--http-listen', '127.0.0.1:0', '--log-level', 'debug',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) lines.push(JSON.parse(l) as Record<string, unknown>);
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const exit = new Promise<number | null>((resolve) => child?.on('exit', (code) => resolve(code)));

    const started = await until('the started line', () => lines.find((l) => l['msg'] === 'agent started'), 15_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\nstderr: ${stderr}`);
    });
    const port = Number(String(started['http']).split(':').pop());
    assert.equal(started['level'], 'info');
    assert.equal(started['component'], 'sluice-agent');
    assert.equal(typeof started['time'], 'string');
    await until('ready', async () => (await httpStatus(port, '/readyz')) === 200);
    assert.equal(await httpStatus(port, '/healthz'), 200);
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    const client = new EndpointClient(socket);
    const { endpoint } = await client.register({
      containerId: 'c1', ifname: 'eth0', netns: '/var/run/netns/x', podNamespace: 'default', podName: 'web', ip: '10.9.0.9', hostIfname: 'lxc9', hostIfindex: 9,
    });
    assert.equal(endpoint.endpointId, 1);
    // The answer can overtake the log line on its way through the stdout pipe.
    await until('the registered line', () => lines.find((l) => l['msg'] === 'endpoint registered' && l['endpointId'] === 1), 5_000);

    child.kill('SIGTERM');
    assert.equal(await exit, 0);
    assert.ok(lines.some((l) => l['msg'] === 'agent stopped'));
    child = undefined;
  } finally {
    child?.kill('SIGKILL');
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
