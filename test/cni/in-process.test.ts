/**
 * InProcessCni, the agent's side of the sluice-cni front end: it runs an
 * invocation only when it is this agent's (its socket), from its namespaces
 * and a CNI command other than VERSION; every other request is a counted
 * fallback, decided before any plugin code runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessCni, ownNamespaces } from '../../src/cni/in-process.js';

const NS = { net: '4:4026531840', mnt: '4:4026531841' };

function request(socket: string, env: Record<string, string>, conf: unknown = { cniVersion: '1.1.0', name: 'n', type: 'sluice-cni', agentSocket: socket }): unknown {
  return { env, stdin: typeof conf === 'string' ? conf : JSON.stringify(conf), namespaces: NS };
}

test('fallbacks: VERSION, a malformed request, other namespaces, another or unreadable agentSocket', async () => {
  const socket = '/tmp/sluice-cni-inproc-none/agent.sock';
  const cni = new InProcessCni(socket, NS);
  const status = { CNI_COMMAND: 'STATUS' };
  const cases: [unknown, string][] = [
    [request(socket, { CNI_COMMAND: 'VERSION' }), 'not-in-process'],
    [request(socket, {}), 'not-in-process'],
    [{ env: status, namespaces: NS }, 'not-in-process'],
    [{ env: { CNI_COMMAND: 1 }, stdin: '{}', namespaces: NS }, 'not-in-process'],
    [{ ...(request(socket, status) as object), namespaces: { ...NS, net: '4:1' } }, 'not-here'],
    [{ ...(request(socket, status) as object), namespaces: { ...NS, mnt: '4:1' } }, 'not-here'],
    [request(socket, status, { cniVersion: '1.1.0', agentSocket: '/run/other.sock' }), 'not-mine'],
    [request(socket, status, { cniVersion: '1.1.0', agentSocket: 'agent.sock' }), 'not-mine'],
    [request(socket, status, { cniVersion: '1.1.0' }), 'not-mine'], // the default socket is not this agent's
    [request(socket, status, '{"cniVersion": '), 'not-mine'],
    [request(socket, status, '[]'), 'not-mine'],
  ];
  for (const [body, reason] of cases) {
    const answer = await cni.exec(body);
    assert.equal(answer.kind, 'fallback', JSON.stringify(body));
    assert.equal(answer.kind === 'fallback' ? answer.reason : '', reason, JSON.stringify(body));
  }
  assert.deepEqual(cni.stats(), { done: 0, fallback: { 'not-here': 2, 'not-mine': 5, 'not-in-process': 4 } });
});

test('its own invocation runs the plugin: STATUS against an agent socket nobody serves → 50', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cni-inproc-'));
  try {
    const socket = join(dir, 'agent.sock');
    const cni = new InProcessCni(join(dir, '.', 'agent.sock'), NS); // paths compare resolved
    const answer = await cni.exec(request(socket, { CNI_COMMAND: 'STATUS' }));
    assert.equal(answer.kind, 'done');
    if (answer.kind !== 'done') return;
    assert.equal(answer.outcome.exitCode, 1);
    const err = JSON.parse(answer.outcome.stdout) as { code: number; msg: string };
    assert.equal(err.code, 50);
    assert.match(err.msg, new RegExp(`not reachable at ${socket}`));
    assert.match(answer.outcome.stderr, /^sluice-cni: error 50: /);
    assert.deepEqual(cni.stats(), { done: 1, fallback: { 'not-here': 0, 'not-mine': 0, 'not-in-process': 0 } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ownNamespaces: this process\'s net and mnt namespaces as "dev:ino", stable', () => {
  const a = ownNamespaces();
  assert.match(a.net, /^\d+:\d+$/);
  assert.match(a.mnt, /^\d+:\d+$/);
  assert.notEqual(a.net, a.mnt);
  assert.deepEqual(ownNamespaces(), a);
});
