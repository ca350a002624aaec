/**
 * Third-party clients against the observer server, built from the Go module
 * proxy by scripts/build-hubble-tools: grpcurl v1.9.3 lists and calls the
 * service by reflection; the hubble CLI (cilium v1.20.2) runs status,
 * observe (filters, -o json), list nodes, and reads the exporter's file with
 * observe --input-file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { SluiceEventFlags } from '../../src/datapath/generated/abi.js';
import { compileFilters } from '../../src/flow/filter.js';
import { FlowObserver } from '../../src/flow/observer.js';
import { FlowExporter } from '../../src/flow/server/exporter.js';
import { ObserverGrpcServer } from '../../src/flow/server/grpc-server.js';
import { observerSchema } from '../../src/flow/wire/schema.js';
import { ALLOWED, event, VIEW } from './helpers.js';

const CACHE = process.env['SLUICE_CACHE'] ?? '/var/cache/sluice';
const GRPCURL = `${CACHE}/hubble-tools/grpcurl-v1.9.3/grpcurl`;
const HUBBLE = `${CACHE}/hubble-tools/hubble-v1.20.2/hubble`;
const run = promisify(execFile);

let dir: string;
let server: ObserverGrpcServer;
let exporter: FlowExporter;
let target: string;
let exportFile: string;

before(async () => {
  for (const bin of [GRPCURL, HUBBLE]) assert.ok(existsSync(bin), `${bin} is missing: run scripts/build-hubble-tools`);
  dir = mkdtempSync(join(tmpdir(), 'sluice-hf-hubble-'));
  exportFile = join(dir, 'events.log');
  exporter = new FlowExporter({
    file: exportFile, maxSizeBytes: 1 << 20, maxBackups: 1, predicate: compileFilters([], []), nodeName: 'node-1', schema: observerSchema(),
  });
  const wall = BigInt(Date.now()) * 1_000_000n;
  const obs = new FlowObserver({
    nodeName: 'node-1', view: () => VIEW, now: () => Date.now(), wallOffsetNs: () => wall, onFlow: (f) => exporter.export(f),
  });
  obs.ingest([
    event(), // policy drop client → web:80 (and its policy verdict)
    event({ ...ALLOWED, sport: 40001 }), // allowed by shop/web-policy (and its policy verdict)
    event({ ...ALLOWED, flags: SluiceEventFlags.CT_REPLY, saddr: 0x0a000002, daddr: 0x0a000001, sport: 80, dport: 40001, direction: 1, endpointId: 2, srcIdentity: 301, dstIdentity: 300, ruleId: 0 }),
  ]);
  exporter.flush();
  server = new ObserverGrpcServer({ observer: obs, version: 'sluice-test' });
  const socket = join(dir, 'hubble.sock');
  await server.listen([{ address: socket }]);
  target = `unix://${socket}`;
});

after(async () => {
  exporter?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('grpcurl lists and describes the service and calls it, by reflection only', async () => {
  const list = await run(GRPCURL, ['-plaintext', target, 'list']);
  assert.deepEqual(list.stdout.trim().split('\n').sort(), ['grpc.health.v1.Health', 'observer.Observer']);
  const health = await run(GRPCURL, ['-plaintext', '-d', '{"service": "hubble.server.Observer"}', target, 'grpc.health.v1.Health/Check']);
  assert.equal((JSON.parse(health.stdout) as { status: string }).status, 'SERVING');
  const desc = await run(GRPCURL, ['-plaintext', target, 'describe', 'flow.FlowFilter']);
  assert.match(desc.stdout, /repeated string source_pod = 2;/);
  const status = await run(GRPCURL, ['-plaintext', target, 'observer.Observer/ServerStatus']);
  assert.equal((JSON.parse(status.stdout) as { numFlows: string }).numFlows, '5');
  const flows = await run(GRPCURL, ['-plaintext', '-d', '{"number": 10, "whitelist": [{"verdict": ["DROPPED"], "event_type": [{"type": 1}]}]}', target, 'observer.Observer/GetFlows']);
  const one = JSON.parse(flows.stdout) as { flow: { destination: { podName: string }; dropReasonDesc: string } };
  assert.deepEqual([one.flow.destination.podName, one.flow.dropReasonDesc], ['web', 'POLICY_DENIED']);
  await assert.rejects(run(GRPCURL, ['-plaintext', '-d', '{"whitelist": [{"destination_port": ["eighty"]}]}', target, 'observer.Observer/GetFlows']),
    (e: { stdout: string; stderr: string }) => /InvalidArgument/.test(e.stdout + e.stderr) && /whitelist\[0\]\.destination_port/.test(e.stdout + e.stderr));
});

test('hubble status passes the health check and reads ServerStatus', async () => {
  const r = await run(HUBBLE, ['status', '--server', target]);
  assert.match(r.stdout, /Healthcheck \(via unix:\/\/.*\): Ok/);
  assert.match(r.stdout, /Current\/Max Flows: 5\/4,095/);
  assert.match(r.stdout, /Connected Nodes: 1\/1/);
});

test('hubble observe: compact, filters, -o json', async () => {
  const compact = await run(HUBBLE, ['observe', '--server', target, '--verdict', 'DROPPED', '--type', 'drop']);
  const lines = compact.stdout.trim().split('\n');
  assert.equal(lines.length, 1, compact.stdout);
  assert.match(lines[0] ?? '', /shop\/client:40000 .* -> shop\/web:80 .*DROPPED/);
  const json = await run(HUBBLE, ['observe', '--server', target, '-o', 'json', '--to-pod', 'shop/web', '--type', 'policy-verdict']);
  const flows = json.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { flow: { verdict: string; traffic_direction: string; ingress_allowed_by?: { name: string }[] } }).flow);
  assert.deepEqual(flows.map((f) => [f.verdict, f.traffic_direction]), [['DROPPED', 'INGRESS'], ['FORWARDED', 'INGRESS']]);
  assert.equal(flows[1]?.ingress_allowed_by?.[0]?.name, 'web-policy');
  const nodes = await run(HUBBLE, ['list', 'nodes', '--server', target]);
  assert.match(nodes.stdout, /node-1\s+Connected/);
});

test('hubble observe --input-file reads the exporter\'s file', async () => {
  const r = await run(HUBBLE, ['observe', '--input-file', exportFile, '-o', 'json', '--namespace', 'shop', '--verdict', 'FORWARDED', '--type', 'trace']);
  const flows = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { flow: { source: { pod_name: string }; is_reply: boolean } }).flow);
  assert.deepEqual(flows.map((f) => [f.source.pod_name, f.is_reply]), [['client', false], ['web', true]]);
});
