/**
 * InProcessCni, the agent's side of the sluice-cni front end: it runs an
 * invocation only when it is this agent's (its socket), from its namespaces
 * and a CNI command other than VERSION; every other request is a counted
 * fallback, decided before any plugin code runs. An invocation it runs
 * reaches the agent through the EndpointPort it was given, never the socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessCni, ownNamespaces } from '../../src/cni/in-process.js';
import type { DevIno, StatIdentity } from '../../src/cni/path-identity.js';
import { EndpointError, type EndpointPort, type ReadinessReport } from '../../src/endpoint/contract.js';

const NS = { net: '4:4026531840', mnt: '4:4026531841' };
/** Nobody serves it: an invocation that used the socket would fail as unreachable. */
const SOCKET = '/tmp/sluice-cni-inproc-none/agent.sock';

function request(socket: string, env: Record<string, string>, conf: unknown = { cniVersion: '1.1.0', name: 'n', type: 'sluice-cni', agentSocket: socket }): unknown {
  return { env, stdin: typeof conf === 'string' ? conf : JSON.stringify(conf), namespaces: NS };
}

/** An EndpointPort that answers status and node from the test and records every call. */
function fakePort(report: ReadinessReport, calls: string[] = []): EndpointPort {
  const unexpected = (what: string): Promise<never> => Promise.reject(new EndpointError('internal', `unexpected ${what}`));
  return {
    status: () => (calls.push('status'), Promise.resolve(report)),
    node: () => (calls.push('node'), Promise.resolve({ name: 'n1', known: true, podCIDRs: ['10.9.0.0/24'] })),
    register: () => (calls.push('register'), unexpected('register')),
    get: () => (calls.push('get'), unexpected('get')),
    unregister: () => (calls.push('unregister'), unexpected('unregister')),
    list: () => (calls.push('list'), unexpected('list')),
  };
}

test('fallbacks: VERSION, a malformed request, other namespaces, another or unreadable agentSocket', async () => {
  const calls: string[] = [];
  const cni = new InProcessCni({ socketPath: SOCKET, endpoints: fakePort({ ready: true, checks: [] }, calls), namespaces: NS });
  const status = { CNI_COMMAND: 'STATUS' };
  const cases: [unknown, string][] = [
    [request(SOCKET, { CNI_COMMAND: 'VERSION' }), 'not-in-process'],
    [request(SOCKET, {}), 'not-in-process'],
    [{ env: status, namespaces: NS }, 'not-in-process'],
    [{ env: { CNI_COMMAND: 1 }, stdin: '{}', namespaces: NS }, 'not-in-process'],
    [{ ...(request(SOCKET, status) as object), namespaces: { ...NS, net: '4:1' } }, 'not-here'],
    [{ ...(request(SOCKET, status) as object), namespaces: { ...NS, mnt: '4:1' } }, 'not-here'],
    [request(SOCKET, status, { cniVersion: '1.1.0', agentSocket: '/run/other.sock' }), 'not-mine'],
    [request(SOCKET, status, { cniVersion: '1.1.0', agentSocket: 'agent.sock' }), 'not-mine'],
    [request(SOCKET, status, { cniVersion: '1.1.0' }), 'not-mine'], // the default socket is not this agent's
    [request(SOCKET, status, '{"cniVersion": '), 'not-mine'],
    [request(SOCKET, status, '[]'), 'not-mine'],
  ];
  for (const [body, reason] of cases) {
    const answer = await cni.exec(body);
    assert.equal(answer.kind, 'fallback', JSON.stringify(body));
    assert.equal(answer.kind === 'fallback' ? answer.reason : '', reason, JSON.stringify(body));
  }
  assert.deepEqual(cni.stats(), { done: 0, fallback: { 'not-here': 2, 'not-mine': 5, 'not-in-process': 4 } });
  assert.deepEqual(calls, [], 'a fallback never reaches the agent');
});

test('its own invocation runs the plugin against the port it was given, not the socket: STATUS of a not-ready agent → 50, of a ready one → success', async () => {
  const calls: string[] = [];
  const notReady = new InProcessCni({
    socketPath: '/tmp/sluice-cni-inproc-none/./agent.sock', // paths compare resolved
    endpoints: fakePort({ ready: false, checks: [{ name: 'datapath', ok: false, detail: 'first sync not in the maps yet' }] }, calls),
    namespaces: NS,
  });
  const answer = await notReady.exec(request(SOCKET, { CNI_COMMAND: 'STATUS' }));
  assert.equal(answer.kind, 'done');
  if (answer.kind !== 'done') return;
  assert.equal(answer.outcome.exitCode, 1);
  const err = JSON.parse(answer.outcome.stdout) as { code: number; msg: string };
  assert.equal(err.code, 50);
  assert.match(err.msg, /sluice-agent is not ready: datapath: first sync not in the maps yet/);
  assert.match(answer.outcome.stderr, /^sluice-cni: error 50: /);
  assert.deepEqual(notReady.stats(), { done: 1, fallback: { 'not-here': 0, 'not-mine': 0, 'not-in-process': 0 } });
  assert.deepEqual(calls, ['status']);

  const ready = new InProcessCni({ socketPath: SOCKET, endpoints: fakePort({ ready: true, checks: [] }, calls), namespaces: NS });
  const ok = await ready.exec(request(SOCKET, { CNI_COMMAND: 'STATUS' }));
  assert.deepEqual(ok, { kind: 'done', outcome: { stdout: '', stderr: '', exitCode: 0 } });
  assert.deepEqual(calls, ['status', 'status', 'node'], 'STATUS asked for readiness, then the node\'s pod CIDRs');
});

test('ownNamespaces: this process\'s net and mnt namespaces as "dev:ino", stable', () => {
  const a = ownNamespaces();
  assert.match(a.net, /^\d+:\d+$/);
  assert.match(a.mnt, /^\d+:\d+$/);
  assert.notEqual(a.net, a.mnt);
  assert.deepEqual(ownNamespaces(), a);
});

test('a shim in another mount namespace runs in-process only when every path the plugin touches has the same identity for the agent', async () => {
  const files: Record<string, DevIno> = { [SOCKET]: '9:1', '/sys/fs/bpf/sluice': '8:2', '/var/run/netns/p': '4:3', '/var/run/sluice': '9:4' };
  const stat: StatIdentity = (p) => files[p] ?? 'absent';
  const calls: string[] = [];
  const cni = new InProcessCni({ socketPath: SOCKET, endpoints: fakePort({ ready: true, checks: [] }, calls), namespaces: NS, statIdentity: stat });
  const same = { [SOCKET]: '9:1', '/sys/fs/bpf/sluice': '8:2', '/var/run/netns/p': '4:3', '/var/run/sluice/ipam': '9:4/ipam' };
  const body = (paths: unknown, env: Record<string, string> = { CNI_COMMAND: 'STATUS', CNI_NETNS: '/var/run/netns/p' }): unknown =>
    ({ ...(request(SOCKET, env) as object), namespaces: { ...NS, mnt: '4:1' }, paths });
  assert.deepEqual(await cni.exec(body(same)), { kind: 'done', outcome: { stdout: '', stderr: '', exitCode: 0 } });
  const refused: [unknown, RegExp][] = [
    [body(undefined), /\/var\/run\/netns\/p: the front end sent no identity of it/],
    [body({ ...same, '/var/run/netns/p': '4:99' }), /\/var\/run\/netns\/p: 4:99 for the front end, 4:3 here/],
    [body({ ...same, '/sys/fs/bpf/sluice': '8:1/sluice' }), /\/sys\/fs\/bpf: 8:1 for the front end, absent here/],
    [body({ ...same, '/var/run/sluice/ipam': '9:5/ipam' }), /\/var\/run\/sluice: 9:5 for the front end, 9:4 here/],
    [body(same, { CNI_COMMAND: 'STATUS', CNI_NETNS: '/proc/42/ns/net' }), /\/proc\/42\/ns\/net: the front end sent no identity/],
  ];
  for (const [b, detail] of refused) {
    const answer = await cni.exec(b);
    assert.equal(answer.kind, 'fallback');
    if (answer.kind !== 'fallback') continue;
    assert.equal(answer.reason, 'not-here');
    assert.match(answer.detail, detail);
  }
  assert.deepEqual(cni.stats(), { done: 1, fallback: { 'not-here': 5, 'not-mine': 0, 'not-in-process': 0 } });
  assert.deepEqual(calls, ['status', 'node'], 'only the matching invocation reached the agent');
});
