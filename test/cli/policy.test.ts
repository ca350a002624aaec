/**
 * `sluice policy reachability|explain` as a user runs it: the process, its
 * output (the exact JSON shape, the table, explanations) and its exit codes
 * (0 answered, 2 bad input naming file and field), with both engines.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sluice } from '../helpers/sluice-cli.js';

const CLUSTER = `apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {ns: y}}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: a, labels: {pod: a}}, spec: {containers: [{name: c, ports: [{name: serve-80-tcp, containerPort: 80}]}]}, status: {podIP: 10.9.0.1}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: x, name: b, labels: {pod: b}}, spec: {containers: [{name: c}]}, status: {podIP: 10.9.0.2}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: y, name: a, labels: {pod: a}}, spec: {containers: [{name: c}]}, status: {podIP: 10.9.1.1}}
`;

const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: x, name: allow-b}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
    ports: [{port: serve-80-tcp}]
`;

const EXPECTED_JSON =
  '{"protocol":"TCP","port":80,"pods":["x/a","x/b","y/a"],"allowed":' +
  '{"x/a":{"x/a":false,"x/b":true,"y/a":true},"x/b":{"x/a":true,"x/b":true,"y/a":true},"y/a":{"x/a":false,"x/b":true,"y/a":true}}}\n';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-cli-policy-'));
  mkdirSync(join(dir, 'manifests'));
  writeFileSync(join(dir, 'manifests', 'cluster.yaml'), CLUSTER);
  writeFileSync(join(dir, 'manifests', 'policy.yml'), POLICY);
  writeFileSync(join(dir, 'manifests', 'README.txt'), 'not a manifest');
  writeFileSync(join(dir, 'bad.yaml'), POLICY.replace('{port: serve-80-tcp}', '{port: 80, endPort: 79, protocol: tcp}'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

for (const engine of ['model', 'bpf']) {
  test(`reachability -o json is exactly the documented shape (${engine} engine, a directory)`, async () => {
    const r = await sluice('policy', 'reachability', '-f', join(dir, 'manifests'), '--port', '80', '--protocol', 'TCP', '--engine', engine, '-o', 'json');
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, EXPECTED_JSON);
  });

  test(`explain names the rule that allowed, or what isolates (${engine} engine, several -f)`, async () => {
    const files = ['-f', join(dir, 'manifests', 'cluster.yaml'), '-f', join(dir, 'manifests', 'policy.yml')];
    const ok = await sluice('policy', 'explain', ...files, '--from', 'x/b', '--to', 'x/a', '--port', '80', '--engine', engine);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^x/b → x/a TCP/80: ALLOWED \\(${engine} engine\\)$`, 'm'));
    assert.match(ok.stdout, /ingress to x\/a: allowed by x\/allow-b ingress\[0\] \(isolated by x\/allow-b\)/);
    const denied = await sluice('policy', 'explain', ...files, '--from', 'y/a', '--to', 'x/a', '--port', '80', '--engine', engine);
    assert.equal(denied.code, 0, denied.stderr);
    assert.match(denied.stdout, /: DENIED /);
    assert.match(denied.stdout, /ingress to x\/a: denied: isolated by x\/allow-b and none of its ingress rules allows from y\/a on TCP\/80/);
    if (engine === 'bpf') {
      assert.match(ok.stdout, /reply x\/a → x\/b: passed/);
      assert.match(denied.stdout, /drop reason POLICY_DENIED/);
    }
    const json = await sluice('policy', 'explain', ...files, '--from', 'x/b', '--to', 'x/a', '--port', '80', '--engine', engine, '-o', 'json');
    const parsed = JSON.parse(json.stdout) as { allowed: boolean; ingress: { rules: unknown[] } };
    assert.equal(parsed.allowed, true);
    assert.deepEqual(parsed.ingress.rules, [{ policy: 'x/allow-b', direction: 'ingress', index: 0 }]);
  });
}

test('the table has the matrix and a legend', async () => {
  const r = await sluice('policy', 'reachability', '-f', join(dir, 'manifests'), '--port', '80');
  assert.equal(r.code, 0);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'TCP/80 reachability (model engine): rows = from, columns = to');
  assert.match(lines[1] ?? '', /^\s+x\/a\s+x\/b\s+y\/a$/);
  assert.match(lines[2] ?? '', /^x\/a\s+X\s+\.\s+\.$/);
  assert.match(lines[lines.length - 1] ?? '', /^legend: "\." allowed, "X" denied — 7 of 9 pairs allowed$/);
});

test('bad input exits 2 naming the file and the field', async () => {
  const r = await sluice('policy', 'reachability', '-f', join(dir, 'manifests', 'cluster.yaml'), '-f', join(dir, 'bad.yaml'), '--port', '80');
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.includes(`${join(dir, 'bad.yaml')}: NetworkPolicy x/allow-b: spec.ingress[0].ports[0].protocol: unsupported protocol a string ("tcp"); want TCP, UDP, SCTP (protocols are upper case: TCP)`), r.stderr);
  assert.ok(r.stderr.includes('spec.ingress[0].ports[0].endPort: must be ≥ port (80), got 79'), r.stderr);
});

test('other input errors exit 2 too: a missing file, flags, an unknown pod', async () => {
  const missing = await sluice('policy', 'reachability', '-f', join(dir, 'nope.yaml'), '--port', '80');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.yaml: cannot read: ENOENT/);
  const port = await sluice('policy', 'reachability', '-f', join(dir, 'manifests'), '--port', '0');
  assert.equal(port.code, 2);
  assert.match(port.stderr, /--port: want 1\.\.65535, got "0"/);
  const proto = await sluice('policy', 'reachability', '-f', join(dir, 'manifests'), '--port', '80', '--protocol', 'GRE');
  assert.equal(proto.code, 2);
  assert.match(proto.stderr, /--protocol: "GRE" is not one of TCP, UDP, SCTP, ICMP/);
  const engine = await sluice('policy', 'reachability', '-f', join(dir, 'manifests'), '--port', '80', '--engine', 'ebpf');
  assert.equal(engine.code, 2);
  const pod = await sluice('policy', 'explain', '-f', join(dir, 'manifests'), '--port', '80', '--from', 'x/zz', '--to', 'x/a');
  assert.equal(pod.code, 2);
  assert.match(pod.stderr, /--from: no pod "x\/zz" in the manifests/);
  const none = await sluice('policy', 'reachability', '--port', '80');
  assert.equal(none.code, 2);
  const noIp = join(dir, 'noip.yaml');
  writeFileSync(noIp, 'kind: Pod\nmetadata: {name: a}\n');
  const bpfNoIp = await sluice('policy', 'reachability', '-f', noIp, '--port', '80', '--engine', 'bpf');
  assert.equal(bpfNoIp.code, 2);
  assert.match(bpfNoIp.stderr, /the bpf engine needs every pod's status\.podIP; missing for default\/a/);
});
