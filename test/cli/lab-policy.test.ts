/**
 * `sluice lab policy apply` with real traffic between real pod namespaces:
 * a default-deny policy blocks TCP and UDP, an allow on a named port opens
 * exactly that port, the reply of an allowed connection passes while a new
 * connection the other way is dropped, drops carry their reason in the
 * datapath's events, and applying no policy opens everything again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SluiceDirection, SluiceDropReason, SluiceEventType, type SluiceEvent } from '../../src/datapath/generated/abi.js';
import { readEvents } from '../../src/datapath/maps/events.js';
import { parseIpv4 } from '../../src/datapath/maps/ipv4.js';
import { openPinnedDatapathMaps } from '../../src/datapath/pinned-maps.js';
import { defaultLabPaths, pinRootFor, podNetnsName } from '../../src/lab/names.js';
import { policyStorePathFor } from '../../src/lab/names.js';
import { labLeftovers, tcpProbe, tcpServe, udpAsk, udpServe, uniqueLabName } from '../lab/helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function sluice(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

const POD_B = `apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: web}}
spec:
  containers:
  - name: web
    ports: [{name: http, containerPort: 8080}]
`;
const DENY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec: {podSelector: {}, policyTypes: [Ingress]}
`;
const ALLOW_HTTP = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-http}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {}}]
    ports: [{port: http}]
`;

const lab = uniqueLabName();
let dir = '';
const ip: Record<string, string> = {};
const ns = (pod: string): string => podNetnsName(lab, pod);
let nextPort = 41000;
const localPort = (): number => nextPort++;

async function applyFile(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  writeFileSync(file, text);
  const r = await sluice('lab', 'policy', 'apply', '--name', lab, '-f', file);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** 'passes' when the SYN got an answer (connected or refused), 'dropped' on timeout. */
async function tcp(from: string, to: string, port: number): Promise<string> {
  const r = await tcpProbe(ns(from), ip[to] ?? '', port, localPort(), 1000);
  return r === 'timeout' ? 'dropped' : r === 'connected' || r.includes('ECONNREFUSED') ? 'passes' : r;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-lab-policy-'));
  const up = await sluice('lab', 'up', '--name', lab, '--pods', 'a,b,c');
  assert.equal(up.code, 0, up.stderr);
  for (const m of up.stdout.matchAll(/(\w)=(\d+\.\d+\.\d+\.\d+)/g)) ip[m[1] ?? ''] = m[2] ?? '';
  assert.ok(ip['a'] && ip['b'] && ip['c'], up.stdout);
});

after(async () => {
  await sluice('lab', 'down', '--name', lab);
  rmSync(policyStorePathFor(defaultLabPaths, lab), { force: true });
  rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(await labLeftovers(lab), []);
});

test('without policy, TCP and UDP pass between the pods', async () => {
  assert.equal(await tcp('a', 'b', 8081), 'passes');
  const udp = await udpServe(ns('b'), ip['b'] ?? '', 5353);
  try {
    assert.equal(await udpAsk(ns('a'), ip['b'] ?? '', 5353, localPort()), 'answered');
  } finally {
    udp.kill();
  }
});

test('default deny blocks TCP and UDP both ways, and every drop says why', async () => {
  const out = await applyFile('deny.yaml', `${POD_B}---\n${DENY}`);
  assert.match(out, /default\/a \(endpoint 1, identity \d+\): ingress isolated by default\/default-deny/);
  const maps = openPinnedDatapathMaps(pinRootFor(defaultLabPaths, lab));
  const events: SluiceEvent[] = [];
  const reader = readEvents(maps.events, (batch) => events.push(...batch));
  const udp = await udpServe(ns('b'), ip['b'] ?? '', 5353);
  try {
    assert.equal(await tcp('a', 'b', 8080), 'dropped');
    assert.equal(await tcp('b', 'a', 8080), 'dropped');
    assert.equal(await tcp('c', 'a', 22), 'dropped');
    assert.equal(await udpAsk(ns('a'), ip['b'] ?? '', 5353, localPort()), 'timeout');
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    udp.kill();
    reader.stop();
    maps.close();
  }
  const denied = events.filter((e) => e.eventType === SluiceEventType.DROP && e.dropReason === SluiceDropReason.POLICY_DENIED);
  const seen = (saddr: string, daddr: string, protocol: number): boolean =>
    denied.some((e) => e.saddr === parseIpv4(saddr) && e.daddr === parseIpv4(daddr) && e.protocol === protocol && e.direction === SluiceDirection.INGRESS && e.ruleId === 0);
  assert.ok(seen(ip['a'] ?? '', ip['b'] ?? '', 6), 'TCP a → b drop event');
  assert.ok(seen(ip['b'] ?? '', ip['a'] ?? '', 6), 'TCP b → a drop event');
  assert.ok(seen(ip['a'] ?? '', ip['b'] ?? '', 17), 'UDP a → b drop event');
});

test('an allow on a named port opens exactly that port; its replies pass, new connections back do not', async () => {
  await applyFile('allow.yaml', `${POD_B}---\n${DENY}---\n${ALLOW_HTTP}`);
  const server = await tcpServe(ns('b'), ip['b'] ?? '', 8080);
  try {
    // "connected" means b's SYN-ACK entered a, whose ingress is isolated: conntrack let the reply in.
    assert.equal(await tcpProbe(ns('a'), ip['b'] ?? '', 8080, localPort(), 2000), 'connected');
  } finally {
    server.kill();
  }
  assert.equal(await tcp('c', 'b', 8080), 'passes', 'any pod may reach http');
  assert.equal(await tcp('a', 'b', 8081), 'dropped', 'only the named port');
  assert.equal(await tcp('b', 'a', 8080), 'dropped', 'a new connection the other way');
  const udp = await udpServe(ns('b'), ip['b'] ?? '', 8080);
  try {
    assert.equal(await udpAsk(ns('a'), ip['b'] ?? '', 8080, localPort()), 'timeout', 'http is TCP: UDP 8080 stays closed');
  } finally {
    udp.kill();
  }
});

test('the same manifests again change nothing; no policy at all opens everything again', async () => {
  const again = await applyFile('allow.yaml', `${POD_B}---\n${DENY}---\n${ALLOW_HTTP}`);
  assert.match(again, /applied 0 changes/);
  const open = await applyFile('none.yaml', POD_B);
  assert.match(open, /default\/b \(endpoint 2, identity \d+\): not isolated/);
  assert.equal(await tcp('b', 'a', 8080), 'passes');
  assert.equal(await tcp('a', 'b', 8081), 'passes');
});

test('bad input is refused with exit code 2 and nothing is written', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'kind: Pod\nmetadata: {name: zz}\n');
  const r = await sluice('lab', 'policy', 'apply', '--name', lab, '-f', file);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Pod default\/zz: the lab has no pod "zz" \(pods: a, b, c\)/);
  const missing = await sluice('lab', 'policy', 'apply', '--name', 'nosuchlab', '-f', file);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /lab "nosuchlab" does not exist/);
});
