/**
 * The observer gRPC server on a unix socket, through grpc-js clients: flows
 * and status over Hubble's wire format, INVALID_ARGUMENT naming the field,
 * health for hubble.server.Observer, and back-pressure: a client that stops
 * reading neither grows memory without bound nor slows a client that reads;
 * it is told how many flows it missed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as http2 from 'node:http2';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { SluiceEventFlags } from '../../src/datapath/generated/abi.js';
import { FlowObserver } from '../../src/flow/observer.js';
import { ObserverClient } from '../../src/flow/server/client.js';
import { ObserverGrpcServer } from '../../src/flow/server/grpc-server.js';
import { decodeMessage, observerSchema } from '../../src/flow/wire/schema.js';
import { ALLOWED, event, VIEW } from './helpers.js';

let dir: string;
let server: ObserverGrpcServer;
let obs: FlowObserver;
let socket: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-hf-grpc-'));
  socket = join(dir, 'run', 'hubble.sock'); // run/ does not exist yet: listen creates it
  obs = new FlowObserver({ nodeName: 'node-1', view: () => VIEW, now: () => Date.now(), wallOffsetNs: () => 0n, capacity: 4095 });
  server = new ObserverGrpcServer({ observer: obs, version: 'test-1' });
  assert.deepEqual(await server.listen([{ address: socket }]), [`unix:${socket}`]);
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const client = (): ObserverClient => new ObserverClient({ server: `unix://${socket}` });

test('GetFlows returns the last flows, filtered; ServerStatus and GetNodes count them', async () => {
  obs.ingest([event(), event({ ...ALLOWED, flags: SluiceEventFlags.CT_ESTABLISHED, sport: 40001 })]);
  const c = client();
  const got: Record<string, unknown>[] = [];
  await c.getFlows({ number: 10, whitelist: [{ verdict: [2], event_type: [{ type: 1 }] }] }, (r) => got.push(r)).done;
  assert.equal(got.length, 1);
  const flow = got[0]?.['flow'] as { source: { pod_name: string }; destination: { pod_name: string; namespace: string } };
  assert.deepEqual([flow.source.pod_name, flow.destination.namespace, flow.destination.pod_name], ['client', 'shop', 'web']);
  assert.equal(got[0]?.['node_name'], 'node-1');
  const st = await c.unary<{ num_flows: number; max_flows: number; version: string; num_connected_nodes: { value: number } }>('ServerStatus');
  assert.deepEqual([st.num_flows, st.max_flows, st.version, st.num_connected_nodes.value], [3, 4095, 'test-1', 1]);
  const nodes = await c.unary<{ nodes: { name: string; state: number }[] }>('GetNodes');
  assert.deepEqual(nodes.nodes.map((n) => [n.name, n.state]), [['node-1', 1]]);
  const ns = await c.unary<{ namespaces: { namespace: string }[] }>('GetNamespaces');
  assert.deepEqual(ns.namespaces.map((n) => n.namespace), ['shop']);
  c.close();
});

test('an invalid filter answers INVALID_ARGUMENT naming the field', async () => {
  const c = client();
  await assert.rejects(c.getFlows({ whitelist: [{}, { source_ip: ['not-an-ip'] }] }, () => undefined).done,
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /whitelist\[1\]\.source_ip/.test(e.details));
  c.close();
});

test('health answers SERVING for hubble.server.Observer', async () => {
  const health = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  // grpc.health.v1.HealthCheckRequest{service=1}; the response's status=1 is SERVING (field 1 varint 1: 0x08 0x01).
  const name = Buffer.from('hubble.server.Observer');
  const res = await new Promise<Buffer>((resolve, reject) => {
    health.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b,
      Buffer.concat([Buffer.from([0x0a, name.length]), name]), (err, v) => (err ? reject(err) : resolve(v as Buffer)));
  });
  assert.deepEqual([...res], [0x08, 0x01]);
  health.close();
});

test('TCP with TLS: a client that trusts the CA gets status; plaintext is refused', async () => {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=observer.test', '-addext', 'subjectAltName=DNS:observer.test', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const tls = new ObserverGrpcServer({ observer: obs, version: 'tls-1' });
  try {
    const [bound] = await tls.listen([{ address: '127.0.0.1:0', tls: { certFile: cert, keyFile: key } }]);
    assert.match(bound ?? '', /^127\.0\.0\.1:[1-9]\d*$/);
    const good = new ObserverClient({ server: bound ?? '', tls: { caFile: cert, serverName: 'observer.test' } });
    assert.equal((await good.unary<{ version: string }>('ServerStatus')).version, 'tls-1');
    good.close();
    const plain = new ObserverClient({ server: bound ?? '' });
    await assert.rejects(plain.unary('ServerStatus', 2000), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED);
    plain.close();
    await assert.rejects(new ObserverGrpcServer({ observer: obs, version: 'x' }).listen([{ address: '127.0.0.1:0' }]), /TCP needs TLS/);
  } finally {
    await tls.close();
  }
});

function heapUsed(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

test('back-pressure: a client that stops reading holds no memory and slows no one; it learns what it missed', async () => {
  const total = 25_000;
  // A raw HTTP/2 client that sends GetFlows{follow} and then reads nothing: its flow-control window closes.
  const session = http2.connect('http://observer', { createConnection: () => connect(socket) });
  session.on('error', () => undefined);
  const stalledCall = session.request({
    ':method': 'POST', ':path': '/observer.Observer/GetFlows', 'content-type': 'application/grpc', te: 'trailers',
  });
  stalledCall.on('error', () => undefined);
  stalledCall.pause();
  stalledCall.end(Buffer.from([0, 0, 0, 0, 2, 0x18, 0x01])); // one gRPC message: GetFlowsRequest{follow: true}
  const fast = client();
  let fastFlows = 0;
  let fastLost = 0;
  const fastCall = fast.getFlows({ follow: true }, (r) => {
    if (r['flow'] !== undefined) fastFlows++;
    else fastLost += Number((r['lost_events'] as { num_events_lost?: number } | undefined)?.num_events_lost ?? 0);
  });
  await new Promise((r) => setTimeout(r, 200)); // both streams open
  const before = heapUsed();
  const established = event({ ...ALLOWED, flags: SluiceEventFlags.CT_ESTABLISHED });
  for (let sent = 0; sent < total;) {
    obs.ingest(Array.from({ length: 500 }, () => established));
    sent += 500;
    // Paced by the reading client (it shares this process's event loop and CPU with the server):
    // whatever the stalled stream does, the reading one keeps within 2,000 flows of the head.
    const paced = Date.now() + 5000;
    while (fastFlows + fastLost < sent - 2000 && Date.now() < paced) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setImmediate(r));
  }
  const deadline = Date.now() + 20_000;
  while (fastFlows + fastLost < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(fastFlows, total, `the reading client got every flow (lost ${fastLost})`);
  const grown = heapUsed() - before;
  assert.ok(grown < 16 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MiB for ${total} flows past a stalled client`);

  // The stalled client reads again: a LostEvent with the count, then what the ring still holds.
  let received = 0;
  let lost = 0;
  const { GetFlowsResponse } = observerSchema();
  let pending = Buffer.alloc(0);
  stalledCall.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt32BE(1)) {
      const len = pending.readUInt32BE(1);
      const r = decodeMessage<Record<string, unknown>>(GetFlowsResponse, pending.subarray(5, 5 + len));
      pending = pending.subarray(5 + len);
      if (r['flow'] !== undefined) received++;
      else lost += Number((r['lost_events'] as { num_events_lost?: number }).num_events_lost ?? 0);
    }
  });
  stalledCall.resume();
  const deadline2 = Date.now() + 20_000;
  while (received + lost < total && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 20));
  assert.ok(lost > 0, 'it was told it missed flows');
  assert.equal(received + lost, total, `every flow is either received or counted as lost (received ${received}, lost ${lost})`);
  fastCall.cancel();
  await fastCall.done;
  stalledCall.close();
  session.close();
  fast.close();
});
