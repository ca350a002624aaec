/**
 * A full policy map on a cluster lab, with real traffic: the agent runs with
 * `--map-size policy=4` (mapSizes applied when it creates the maps), the
 * first policies fit, a policy that needs more entries than fit fails.
 * Expected (issue 4, Outages): the failing update is reported in the agent's
 * log (naming the map, the entry and the pod), in its metrics and in /readyz
 * (naming the pod); the agent keeps running; the affected endpoint fails
 * closed as a unit — every new connection to and from it drops with the
 * reason POLICY_INCOMPLETE (not POLICY_DENIED: "the node could not apply
 * your policy" is told apart from "your policy denies"), also the ports its
 * earlier policy allowed and the allows that did fit — while another
 * endpoint keeps its policy; deleting the policy recovers, and the endpoint
 * is decided by its policy again.
 *
 * Pods: default/a (app=client), default/b (app=web), default/d (app=db).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { until } from '../agent/helpers/wait.js';
import { CLIENT_POD, eventually, expectNow, startCluster, type TestCluster } from './cluster-helpers.js';

const POLICY_MAP_SIZE = 4;

const manifests = [
  CLIENT_POD,
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'b', labels: { app: 'web' } }, spec: { containers: [{ name: 'srv' }] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'd', labels: { app: 'db' } }, spec: { containers: [{ name: 'db' }] } },
];

/** An ingress allow from app=client to pods labelled app=`app` on TCP `ports`. */
function allow(name: string, app: string, ports: readonly number[]): string {
  return `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: default}
spec:
  podSelector: {matchLabels: {app: ${app}}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [${ports.map((p) => `{port: ${p}}`).join(', ')}]
`;
}

/** Ten ports for web: ten more entries than the map has room for. */
const WIDE_PORTS = Array.from({ length: 10 }, (_, i) => 6000 + i);

let c: TestCluster;

before(async () => {
  c = await startCluster(['a', 'b', 'd'], manifests, { family: 'lf', agentMapSizes: { policy: POLICY_MAP_SIZE } });
});

after(async () => {
  await c?.close();
});

function policyMap(): { entries: number; maxEntries: number } {
  const maps = openPinnedDatapathMaps(c.lab.plan.pinRoot);
  try {
    return { entries: [...maps.policy.raw.keys()].length, maxEntries: maps.policy.raw.info.maxEntries };
  } finally {
    maps.close();
  }
}

function get(path: string): Promise<{ status: number; body: string }> {
  return c.lab.agent.get(path);
}

/** Packets the datapath dropped for `reason` (every direction), from the agent's /metrics. */
async function drops(reason: 'POLICY_DENIED' | 'POLICY_INCOMPLETE'): Promise<number> {
  const { body } = await get('/metrics');
  return body.split('\n').filter((l) => l.startsWith('sluice_agent_datapath_drops_total{') && l.includes(`reason="${reason}"`))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** The value of one sample of /metrics ("name{labels}"), undefined when absent. */
async function metric(sample: string): Promise<number | undefined> {
  const { body } = await get('/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

test('the policy map has the configured size, not the compiled one', () => {
  assert.deepEqual(policyMap(), { entries: 0, maxEntries: POLICY_MAP_SIZE });
});

test('policies that fit: their ports open, others stay closed', async () => {
  await c.lab.kubectl(['apply', '-f', '-'], allow('web-allow', 'web', [5201]) + '---' + allow('db-allow', 'db', [5432]));
  await eventually(c, 'a', 'b', 'tcp', 5201, 'open');
  await eventually(c, 'a', 'd', 'tcp', 5432, 'open');
  await expectNow(c, [['a', 'b', 'tcp', 5202, 'closed'], ['a', 'd', 'tcp', 5433, 'closed'], ['a', 'b', 'tcp', 6000, 'closed']]);
  assert.equal(policyMap().entries, 2, 'one entry per allowed port');
  assert.equal((await get('/readyz')).status, 200);
});

test('a policy that does not fit: reported, the agent runs on, the endpoint fails closed as a unit, others unaffected', async () => {
  const pid = c.lab.agent.pid;
  const endpointOfB = c.lab.pod('b').endpointId;
  assert.ok(endpointOfB > 0);
  await expectNow(c, [['b', 'a', 'tcp', 5201, 'open']]); // b's egress is not isolated: open before
  await c.lab.kubectl(['apply', '-f', '-'], allow('web-wide', 'web', WIDE_PORTS));

  // Reported: /readyz (503, the detail names the map, the kernel's answer and the pod) …
  await until('the agent is unready with the policy map failing', async () => {
    const r = await get('/readyz');
    return r.status === 503 && /map updates failing: policy: policy-upsert endpoint \d+ ingress/.test(r.body);
  }, 20_000);
  const ready = JSON.parse((await get('/readyz')).body) as { checks: { name: string; ok: boolean; detail: string }[] };
  const datapath = ready.checks.find((k) => k.name === 'datapath');
  assert.equal(datapath?.ok, false);
  assert.match(datapath?.detail ?? '', /E2BIG|full|too big|Argument list too long/i, datapath?.detail);
  assert.match(datapath?.detail ?? '', new RegExp(`endpoints failing closed \\(POLICY_INCOMPLETE\\): default/b \\(endpoint ${endpointOfB}\\)$`), datapath?.detail);
  // … the metrics …
  assert.equal(await metric('sluice_agent_map_failing{map="policy"}'), 1);
  assert.equal(await metric('sluice_agent_endpoints_failed_closed'), 1);
  assert.ok(((await metric('sluice_agent_map_update_failures_total{map="policy"}')) ?? 0) >= 1);
  assert.equal(await metric('sluice_agent_map_pressure_percent{map="policy"}'), 100);
  assert.equal(await metric('sluice_agent_map_max_entries{map="policy"}'), POLICY_MAP_SIZE);
  // … and the log, naming the map, the entry, the errno and the pod.
  const line = c.lab.agent.tail(200).split('\n').find((l) => l.includes('map policy update failed'));
  assert.ok(line !== undefined, `no failure in the agent log:\n${c.lab.agent.tail(40)}`);
  const entry = JSON.parse(line) as { level: string; map: string; code?: string; endpointNames?: string[]; msg: string };
  assert.equal(entry.level, 'error');
  assert.equal(entry.map, 'policy');
  assert.equal(entry.code, 'E2BIG');
  assert.deepEqual(entry.endpointNames, [`default/b (endpoint ${endpointOfB})`]);
  assert.match(entry.msg, new RegExp(`policy-upsert endpoint ${endpointOfB} ingress identity \\d+ TCP port 60\\d\\d.*\\(fail closed: default/b`));

  // The agent keeps running (the same process) and keeps retrying.
  assert.equal(c.lab.agent.pid, pid);
  assert.equal((await get('/healthz')).status, 200);
  const failures = (await metric('sluice_agent_map_update_failures_total{map="policy"}')) ?? 0;
  await until('a retry fails again', async () => ((await metric('sluice_agent_map_update_failures_total{map="policy"}')) ?? 0) > failures, 20_000);
  assert.equal(policyMap().entries, POLICY_MAP_SIZE, 'the map is full');
  assert.equal(await metric('sluice_agent_endpoints_failed_closed'), 1, 'still closed after the retry');

  // Fails closed as a unit: every new connection of b, both ways, the allows that fit and its earlier
  // policy's port included, drops as POLICY_INCOMPLETE, none as POLICY_DENIED.
  const deniedBefore = await drops('POLICY_DENIED');
  const incompleteBefore = await drops('POLICY_INCOMPLETE');
  const cases = [
    ...WIDE_PORTS.map((port) => ['a', 'b', 'tcp', port, 'closed'] as const),
    ['a', 'b', 'tcp', 5201, 'closed'], // allowed by web-allow, which did fit
    ['a', 'b', 'tcp', 5202, 'closed'],
    ['d', 'b', 'tcp', 6000, 'closed'],
    ['b', 'a', 'tcp', 5201, 'closed'], // b's egress: not isolated, closed too
    ['b', 'd', 'udp', 5432, 'closed'],
  ] as const;
  await expectNow(c, cases);
  assert.equal(await drops('POLICY_DENIED'), deniedBefore, 'no drop of b reads as an ordinary denial');
  assert.ok((await drops('POLICY_INCOMPLETE')) - incompleteBefore >= cases.length, 'each probe dropped as POLICY_INCOMPLETE');
  // Another endpoint keeps its policy.
  await expectNow(c, [['a', 'd', 'tcp', 5432, 'open'], ['a', 'd', 'tcp', 5433, 'closed']]);
});

test('deleting the policy that did not fit: the agent recovers', async () => {
  await c.lab.kubectl(['delete', 'networkpolicy', 'web-wide']);
  await until('ready again', async () => (await get('/readyz')).status === 200, 40_000);
  assert.equal(await metric('sluice_agent_map_failing{map="policy"}'), 0);
  assert.equal(await metric('sluice_agent_endpoints_failed_closed'), 0);
  const incompleteBefore = await drops('POLICY_INCOMPLETE');
  assert.equal(policyMap().entries, 2);
  await expectNow(c, [
    ['a', 'b', 'tcp', 5201, 'open'],
    ['a', 'b', 'tcp', 6000, 'closed'],
    ['a', 'b', 'tcp', 6009, 'closed'],
    ['a', 'd', 'tcp', 5432, 'open'],
    ['b', 'a', 'tcp', 5201, 'open'],
  ]);
  assert.equal(await drops('POLICY_INCOMPLETE'), incompleteBefore, 'b is decided by its policy again');
  // Room again: a policy that fits goes in.
  await c.lab.kubectl(['apply', '-f', '-'], allow('web-more', 'web', [6000, 6001]));
  await eventually(c, 'a', 'b', 'tcp', 6001, 'open');
  await expectNow(c, [['a', 'b', 'tcp', 6002, 'closed']]);
  assert.equal((await get('/readyz')).status, 200);
});
