/**
 * Flows end to end on a cluster lab: real packets → the datapath's events →
 * the real sluice-agent's flow pipeline → its Observer API on a unix socket
 * → `sluice observe` (and the real hubble CLI when built). A policy drop
 * appears in a follow stream within 1 s with pods, namespace, direction and
 * what decided it; an allowed connection shows the allowing rule; Hubble's
 * metrics count them.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { ALLOW_HTTP, CLIENT_POD, DENY_ALL_INGRESS, eventually, probe, startCluster, type TestCluster } from './cluster-helpers.js';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const HUBBLE = `${process.env['SLUICE_CACHE'] ?? '/var/cache/sluice'}/hubble-tools/hubble-v1.20.2/hubble`;
const run = promisify(execFile);

const manifests = [
  CLIENT_POD,
  {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b', labels: { app: 'web' } },
    spec: { containers: [{ name: 'srv', ports: [{ name: 'http', containerPort: 5201 }] }] },
  },
];

interface JsonFlow {
  readonly time: string;
  readonly verdict: string;
  readonly traffic_direction: string;
  readonly source: { readonly namespace?: string; readonly pod_name?: string };
  readonly destination: { readonly namespace?: string; readonly pod_name?: string };
  readonly l4?: { readonly TCP?: { readonly destination_port: number; readonly flags?: { readonly SYN?: boolean } } };
  readonly drop_reason_desc?: string;
  readonly ingress_allowed_by?: readonly { readonly name: string; readonly namespace: string; readonly labels?: readonly string[] }[];
  readonly Summary?: string;
}

let c: TestCluster;
let server: string;
const children: ChildProcess[] = [];

before(async () => {
  c = await startCluster(['a', 'b'], manifests, { family: 'lf' });
  const socket = c.lab.agent.config.flowsSocket;
  assert.ok(socket !== undefined && existsSync(socket), `the agent serves flows on ${String(socket)}`);
  server = `unix://${socket}`;
});

after(async () => {
  for (const ch of children) ch.kill('SIGINT');
  await c?.close();
});

/** `sluice observe --follow -o json …` as a child; its flows as they arrive, each with the arrival time. */
function follow(args: readonly string[]): { flows: { at: number; flow: JsonFlow }[]; child: ChildProcess } {
  const child = spawn(process.execPath, [main, 'observe', '--server', server, '--follow', '-o', 'json', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const flows: { at: number; flow: JsonFlow }[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
    const r = JSON.parse(l) as { flow?: JsonFlow };
    if (r.flow !== undefined) flows.push({ at: Date.now(), flow: r.flow });
  });
  return { flows, child };
}

async function waitFor<T>(what: string, get: () => T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a policy drop appears in `sluice observe --follow` within 1 s, naming pods, namespace, direction and the decision', async () => {
  await c.lab.kubectl(['apply', '-f', '-'], DENY_ALL_INGRESS);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'closed');
  const { flows, child } = follow(['--type', 'drop', '--to-pod', 'default/b']);
  await new Promise((r) => setTimeout(r, 1000)); // the stream is open
  const sent = Date.now();
  void probe(c, 'a', 'b', 'tcp', 5201);
  const got = await waitFor('the drop', () => flows.find((f) => f.at >= sent), 5000);
  assert.ok(got.at - sent < 1000, `the drop arrived ${got.at - sent} ms after the packet`);
  const f = got.flow;
  assert.deepEqual([f.verdict, f.drop_reason_desc, f.traffic_direction], ['DROPPED', 'POLICY_DENIED', 'INGRESS']);
  assert.deepEqual([f.source.namespace, f.source.pod_name, f.destination.namespace, f.destination.pod_name], ['default', 'a', 'default', 'b']);
  assert.equal(f.l4?.TCP?.destination_port, 5201);
  assert.equal(f.l4?.TCP?.flags?.SYN, true, 'the datapath reports the TCP flags: a SYN');
  assert.match(f.Summary ?? '', /no rule allowed it/);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', (c2) => r(c2)));
  assert.equal(code, 0, 'Ctrl-C ends observe cleanly');

  const compact = await run(process.execPath, [main, 'observe', '--server', server, '--last', '1', '--type', 'drop', '--to-pod', 'b']);
  assert.match(compact.stdout, /default\/a:\d+ .*-> default\/b:5201 .*drop ingress DROPPED \(POLICY_DENIED\) TCP.* no rule allowed it/);
});

test('an allowed connection shows the allowing policy and rule', async () => {
  await c.lab.kubectl(['apply', '-f', '-'], ALLOW_HTTP);
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
  const r = await run(process.execPath, [main, 'observe', '--server', server, '-o', 'json', '--type', 'policy-verdict', '--verdict', 'FORWARDED', '--to-pod', 'default/b', '--port', '5201']);
  const flows = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { flow: JsonFlow }).flow);
  assert.ok(flows.length > 0, 'a policy verdict for the allowed connection');
  const allowedBy = flows.at(-1)?.ingress_allowed_by?.[0];
  assert.deepEqual([allowedBy?.namespace, allowedBy?.name], ['default', 'web-allow-clients']);
  assert.ok(allowedBy?.labels?.includes('sluice:rule=ingress[0]'));
  const table = await run(process.execPath, [main, 'observe', '--server', server, '-o', 'table', '--last', '1', '--type', 'policy-verdict', '--verdict', 'FORWARDED']);
  assert.match(table.stdout, /allowed by default\/web-allow-clients ingress\[0\]/);
});

test('Hubble\'s metrics count the flows; sluice status and the hubble CLI read the agent', async () => {
  const metrics = (await c.lab.agent.get('/metrics')).body;
  assert.match(metrics, /hubble_drop_total\{reason="POLICY_DENIED",protocol="TCP"\} [1-9]/);
  assert.match(metrics, /hubble_flows_processed_total\{protocol="TCP",type="PolicyVerdict",subtype="",verdict="FORWARDED"\} [1-9]/);
  assert.match(metrics, /hubble_policy_verdicts_total\{direction="ingress",match="l3-l4",action="forwarded"\} [1-9]/);
  const status = await run(process.execPath, [main, 'status', '--server', server, '--agent-http', `unix:${c.lab.agent.config.httpSocket}`, '-o', 'json'])
    .catch((e: { stdout: string }) => assert.fail(`sluice status: ${e.stdout}`));
  const report = JSON.parse(status.stdout) as { healthy: boolean; ready: string; flows: { held: number; ratePerSecond: number }; lostEvents: object; mapPressurePercent: Record<string, number> };
  assert.deepEqual([report.healthy, report.ready], [true, 'ready']);
  assert.ok(report.flows.held > 0 && report.flows.ratePerSecond > 0, JSON.stringify(report.flows));
  assert.ok((report.mapPressurePercent['policy'] ?? -1) >= 0, `map pressure per map: ${JSON.stringify(report.mapPressurePercent)}`);
  const text = await run(process.execPath, [main, 'status', '--server', server, '--agent-http', `unix:${c.lab.agent.config.httpSocket}`]);
  assert.match(text.stdout, /^agent: healthy \(ready\)/);
  assert.match(text.stdout, /lost events: none/);
  assert.match(text.stdout, /map pressure: /);
  assert.ok(existsSync(HUBBLE), `${HUBBLE} is missing: run scripts/build-hubble-tools`);
  const h = await run(HUBBLE, ['observe', '--server', server, '--last', '50', '-o', 'json', '--verdict', 'DROPPED', '--to-pod', 'default/b']);
  const drops = h.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { flow: JsonFlow }).flow);
  assert.ok(drops.some((f) => f.source.pod_name === 'a' && f.destination.pod_name === 'b'), 'hubble observe sees the drop');
  const hs = await run(HUBBLE, ['status', '--server', server]);
  assert.match(hs.stdout, /Healthcheck .*: Ok/);
});
