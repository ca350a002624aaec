/** /healthz, /readyz and /metrics over real HTTP; readiness and liveness rules; metric sources. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatListenAddress, parseListenAddress, ProbeServer } from '../../src/agent/http-server.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { liveness, readiness, type ReadinessReport } from '../../src/agent/readiness.js';
import type { InformerStatus } from '../../src/agent/k8s/informer.js';
import type { SyncStatus } from '../../src/agent/sync-loop.js';
import type { PacketCounter } from '../../src/agent/ports.js';
import { ProblemReporter } from '../../src/agent/problems.js';
import { captureLog } from './helpers/logs.js';

/** A TCP port on 127.0.0.1, or a unix socket path. */
function get(at: number | string, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  const where = typeof at === 'number' ? { host: '127.0.0.1', port: at } : { socketPath: at };
  return new Promise((resolve, reject) => {
    const req = request({ ...where, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const informer = (resource: string, synced: boolean, extra: Partial<InformerStatus> = {}): InformerStatus => ({
  resource, synced, watching: true, objects: 3, resourceVersion: '9', restarts: 0, relists: 1, failures: 0, ...extra,
});
const sync = (extra: Partial<SyncStatus> = {}): SyncStatus => ({
  firstSyncDone: true, requestedRevision: 4, appliedRevision: 4, running: false, failingMaps: [], owners: [], ...extra,
});

test('ready needs every informer synced and the first sync in the maps, and no failing map', () => {
  assert.equal(readiness([informer('pods', true)], sync()).ready, true);
  const notListed = readiness([informer('pods', true), informer('nodes', false)], sync({ firstSyncDone: false }));
  assert.equal(notListed.ready, false);
  assert.deepEqual(notListed.checks.filter((c) => !c.ok).map((c) => c.name), ['informer/nodes', 'datapath']);
  const full = readiness([informer('pods', true)], sync({ failingMaps: [{ map: 'sl_policy_v2', message: 'E2BIG' }] }));
  assert.equal(full.ready, false);
  assert.match(full.checks.find((c) => c.name === 'datapath')?.detail ?? '', /sl_policy_v2: E2BIG$/);
});

test('one check per map owner: its applied revision, or what fails', () => {
  const r = readiness([informer('pods', true)], sync({
    owners: [
      { name: 'endpoints', appliedRevision: 4, failing: [] },
      { name: 'lxc', appliedRevision: 3, failing: [{ map: 'lxc', message: 'lxc-upsert ifindex 7: E2BIG' }] },
      { name: 'ct-config', appliedRevision: 0, failing: [] },
    ],
  }));
  assert.deepEqual(r.checks.filter((c) => c.name.startsWith('datapath/')).map((c) => [c.name, c.ok, c.detail]), [
    ['datapath/endpoints', true, 'applied revision 4'],
    ['datapath/lxc', false, 'failing: lxc: lxc-upsert ifindex 7: E2BIG'],
    ['datapath/ct-config', false, 'no round completed yet'],
  ]);
  assert.equal(r.ready, false);
});

test('the datapath detail names the pods of the endpoints that fail closed, once each, by id when no pod is known', () => {
  const r = readiness([informer('pods', true)], sync({
    failingMaps: [
      { map: 'policy', message: 'policy-upsert endpoint 3 ...: E2BIG', endpoints: [3, 7], endpointNames: ['default/b (endpoint 3)', 'endpoint 7'] },
      { map: 'ipcache', message: 'ipcache-upsert 10.0.0.0/8: E2BIG', endpoints: [3, 7], endpointNames: ['default/b (endpoint 3)', 'endpoint 7'] },
      { map: 'endpoints', message: 'endpoint-upsert endpoint 9: EIO', endpoints: [9] },
    ],
  }));
  assert.equal(r.ready, false);
  assert.equal(r.checks.find((c) => c.name === 'datapath')?.detail,
    'map updates failing: policy: policy-upsert endpoint 3 ...: E2BIG; ipcache: ipcache-upsert 10.0.0.0/8: E2BIG; ' +
    'endpoints: endpoint-upsert endpoint 9: EIO; endpoints failing closed (POLICY_INCOMPLETE): default/b (endpoint 3), endpoint 7, endpoint 9');
});

test('an API-server outage after the first sync is reported but keeps the agent ready', () => {
  const r = readiness([informer('pods', true, { failures: 3, lastError: 'list: ECONNREFUSED' })], sync());
  assert.equal(r.ready, true);
  assert.match(r.checks[0]?.detail ?? '', /retrying after 3 failures: list: ECONNREFUSED/);
});

test('liveness fails only for a sync stuck past the limit', () => {
  assert.equal(liveness(sync(), 1000, 500).ok, true);
  assert.equal(liveness(sync({ runningSince: 100 }), 400, 500).ok, true);
  const stuck = liveness(sync({ runningSince: 100 }), 700, 500);
  assert.equal(stuck.ok, false);
  assert.match(stuck.detail, /running for 600 ms/);
});

test('listen addresses', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9890'), { host: '127.0.0.1', port: 9890 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListenAddress(':80'), { host: '0.0.0.0', port: 80 });
  assert.equal(typeof parseListenAddress('localhost'), 'string');
  assert.equal(typeof parseListenAddress('h:70000'), 'string');
  assert.deepEqual(parseListenAddress('unix:/run/sluice/agent-http.sock'), { path: '/run/sluice/agent-http.sock' });
  const reason = (text: string): string => {
    const r = parseListenAddress(text);
    return typeof r === 'string' ? r : `parsed: ${JSON.stringify(r)}`;
  };
  assert.match(reason('unix:agent-http.sock'), /must be absolute/);
  assert.match(reason(`unix:/${'s'.repeat(120)}`), /at most 107 bytes/);
  for (const text of ['127.0.0.1:9890', '[::1]:0', 'unix:/run/x.sock']) {
    const a = parseListenAddress(text);
    assert.ok(typeof a !== 'string');
    assert.equal(formatListenAddress(a), text);
  }
});

test('the probe server on a unix socket: 0600, answers, and the socket is gone after close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-probe-'));
  const path = join(dir, 'run', 'http.sock');
  const server = new ProbeServer({ readiness: () => ({ ready: true, checks: [] }), liveness: () => ({ name: 'sync', ok: true, detail: 'ok' }), metrics: new AgentMetrics(), log: captureLog().log });
  try {
    assert.deepEqual(await server.listen({ path }), { path });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(await get(path, '/healthz'), { status: 200, type: 'text/plain', body: 'ok\n' });
    assert.equal((await get(path, '/readyz')).status, 200);
    await server.close();
    assert.equal(existsSync(path), false);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the probe server answers /healthz, /readyz with detail, /metrics, and 404/405', async () => {
  let report: ReadinessReport = { ready: false, checks: [{ name: 'datapath', ok: false, detail: 'first sync not in the maps yet' }] };
  const metrics = new AgentMetrics();
  metrics.syncs.inc({ result: 'applied' });
  const server = new ProbeServer({ readiness: () => report, liveness: () => ({ name: 'sync', ok: true, detail: 'ok' }), metrics, log: captureLog().log });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  try {
    assert.deepEqual(await get(port, '/healthz'), { status: 200, type: 'text/plain', body: 'ok\n' });
    const notReady = await get(port, '/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(JSON.parse(notReady.body), report);
    report = { ready: true, checks: [] };
    assert.equal((await get(port, '/readyz')).status, 200);
    const m = await get(port, '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /sluice_agent_syncs_total\{result="applied"\} 1/);
    assert.match(m.body, /sluice_agent_process_resident_memory_bytes/);
    assert.equal((await get(port, '/nope')).status, 404);
    assert.equal((await get(port, '/healthz', 'POST')).status, 405);
  } finally {
    await server.close();
  }
});

test('map fill and pressure, drops by reason and informer sizes are read from their sources at scrape time', async () => {
  let counters: PacketCounter[] = [
    { direction: 'INGRESS', reason: 'POLICY_DENIED', packets: 5n, bytes: 500n },
    { direction: 'EGRESS', reason: 'NONE', packets: 100n, bytes: 9000n },
  ];
  const errors: string[] = [];
  const metrics = new AgentMetrics({
    datapath: () => ({
      mapUsage: () => [{ map: 'sl_policy_v2', entries: 250, maxEntries: 1000 }],
      packetCounters: () => counters,
    }),
    informers: () => [informer('pods', true)],
    endpoints: () => {
      throw new Error('registry closed');
    },
    onSourceError: (source) => errors.push(source),
  });
  let text = await metrics.registry.metrics();
  assert.match(text, /sluice_agent_map_entries\{map="sl_policy_v2"\} 250/);
  assert.match(text, /sluice_agent_map_max_entries\{map="sl_policy_v2"\} 1000/);
  assert.match(text, /sluice_agent_map_pressure_percent\{map="sl_policy_v2"\} 25/);
  assert.match(text, /sluice_agent_datapath_drops_total\{direction="INGRESS",reason="POLICY_DENIED"\} 5/);
  assert.match(text, /sluice_agent_datapath_forwarded_packets_total\{direction="EGRESS"\} 100/);
  assert.match(text, /sluice_agent_informer_objects\{resource="pods"\} 3/);
  assert.deepEqual(errors, ['endpoints'], 'a failing source is reported, the scrape still answers');
  counters = [{ direction: 'INGRESS', reason: 'POLICY_DENIED', packets: 7n, bytes: 700n }];
  text = await metrics.registry.metrics();
  assert.match(text, /sluice_agent_datapath_drops_total\{direction="INGRESS",reason="POLICY_DENIED"\} 7/);
  // The map was recreated (counts went down): the counter keeps rising from there.
  counters = [{ direction: 'INGRESS', reason: 'POLICY_DENIED', packets: 2n, bytes: 20n }];
  text = await metrics.registry.metrics();
  assert.match(text, /sluice_agent_datapath_drops_total\{direction="INGRESS",reason="POLICY_DENIED"\} 9/);
});

test('problems are logged once when they appear or change, once when resolved, and exported per object', async () => {
  const logs = captureLog();
  const metrics = new AgentMetrics();
  const r = new ProblemReporter(logs.log, metrics);
  const bad = { kind: 'NetworkPolicy', name: 'a/typo', severity: 'error' as const, message: 'spec.ingress[0].fromm: unknown field' };
  const pending = { kind: 'Pod', name: 'a/p', severity: 'warning' as const, message: 'has no IPv4 address yet' };
  r.report([bad, pending]);
  r.report([bad, pending]);
  assert.equal(logs.find('NetworkPolicy a/typo: spec.ingress[0].fromm').length, 1, 'not repeated on every sync');
  const line = logs.find('NetworkPolicy a/typo')[0];
  assert.equal(line?.['level'], 'error');
  assert.equal(line?.['object'], 'NetworkPolicy a/typo');
  assert.equal(logs.find('Pod a/p: has no IPv4')[0]?.['level'], 'warn');
  let text = await metrics.registry.metrics();
  assert.match(text, /sluice_agent_object_problems\{kind="NetworkPolicy",object="a\/typo",severity="error"\} 1/);
  assert.match(text, /sluice_agent_object_problems_total\{kind="NetworkPolicy",severity="error"\} 1/);
  r.report([{ ...bad, message: 'spec.egress: other' }]);
  assert.equal(logs.find('NetworkPolicy a/typo: spec.egress: other').length, 1);
  assert.equal(logs.find('Pod a/p: problem resolved').length, 1);
  text = await metrics.registry.metrics();
  assert.doesNotMatch(text, /object="a\/p"/);
  assert.deepEqual(r.list().map((p) => p.name), ['a/typo']);
});
