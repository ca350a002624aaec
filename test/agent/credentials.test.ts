/** Per-request TLS options and headers from an ApiEndpoint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiEndpoint, ExecPlugin, UserAuth } from '../../src/agent/k8s/api-endpoint.js';
import { ApiCredentials, type CredentialDeps } from '../../src/agent/k8s/credentials.js';

const V1 = 'client.authentication.k8s.io/v1';
const PLUGIN: ExecPlugin = { apiVersion: V1, command: 'get-token', args: [], env: [], interactiveMode: 'Never', provideClusterInfo: false };

const endpoint = (user: UserAuth, over: Partial<ApiEndpoint> = {}): ApiEndpoint => ({ server: 'https://h', insecureSkipTlsVerify: false, user, ...over });

/** Files in memory, a plugin that hands out token-1, token-2, … and a settable clock. */
function fakes(files: Record<string, string> = {}, expiresInMs?: number): { deps: CredentialDeps; runs: string[]; clock: { now: number } } {
  const runs: string[] = [];
  const clock = { now: 1_000_000 };
  const deps: CredentialDeps = {
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw new Error(`ENOENT: ${p}`);
      return Buffer.from(text);
    },
    runPlugin: async (_plugin, info) => {
      runs.push(info);
      await Promise.resolve();
      const status = { token: `token-${runs.length}`, ...(expiresInMs === undefined ? {} : { expirationTimestamp: new Date(clock.now + expiresInMs).toISOString() }) };
      return JSON.stringify({ apiVersion: V1, kind: 'ExecCredential', status });
    },
    now: () => clock.now,
  };
  return { deps, runs, clock };
}

test('a token file is read again for every request', async () => {
  const files = { '/t': 'first\n' };
  const c = new ApiCredentials(endpoint({ credential: { kind: 'token-file', file: '/t' } }), fakes(files).deps);
  assert.equal((await c.requestOptions()).headers['authorization'], 'Bearer first');
  files['/t'] = 'rotated';
  assert.equal((await c.requestOptions()).headers['authorization'], 'Bearer rotated');
});

test('TLS settings, client certificate files, a token and basic auth become request options', async () => {
  const { deps } = fakes({ '/ca': 'CA', '/crt': 'CRT', '/key': 'KEY' });
  const o = await new ApiCredentials(endpoint(
    { clientCert: { cert: { file: '/crt' }, key: { file: '/key' } }, credential: { kind: 'token', token: 'tk' } },
    { ca: { file: '/ca' }, tlsServerName: 'kubernetes' },
  ), deps).requestOptions();
  assert.deepEqual(o, {
    headers: { authorization: 'Bearer tk' }, rejectUnauthorized: true, ca: Buffer.from('CA'), cert: Buffer.from('CRT'), key: Buffer.from('KEY'), servername: 'kubernetes',
  });
  const basic = await new ApiCredentials(endpoint({ credential: { kind: 'basic', username: 'u', password: 'p' } }, { insecureSkipTlsVerify: true }), deps).requestOptions();
  assert.deepEqual(basic, { headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` }, rejectUnauthorized: false });
  await assert.rejects(new ApiCredentials(endpoint({}, { ca: { file: '/missing' } }), deps).requestOptions(), /ENOENT/);
});

test('an exec credential is kept until 10 s before it expires, then fetched again', async () => {
  const { deps, runs, clock } = fakes({}, 60_000);
  const c = new ApiCredentials(endpoint({ credential: { kind: 'exec', plugin: PLUGIN } }), deps);
  const [a, b] = await Promise.all([c.requestOptions(), c.requestOptions()]);
  assert.equal(runs.length, 1, 'requests waiting at once share one plugin run');
  assert.equal(a.headers['authorization'], 'Bearer token-1');
  assert.equal(b.headers['authorization'], 'Bearer token-1');
  clock.now += 49_000;
  assert.equal((await c.requestOptions()).headers['authorization'], 'Bearer token-1');
  clock.now += 2_000;
  assert.equal((await c.requestOptions()).headers['authorization'], 'Bearer token-2');
  assert.deepEqual(JSON.parse(runs[0] ?? ''), { apiVersion: V1, kind: 'ExecCredential', spec: { interactive: false } });
});

test('an exec credential without expiry is kept until the server answers 401', async () => {
  const { deps, runs } = fakes();
  const c = new ApiCredentials(endpoint({ credential: { kind: 'exec', plugin: PLUGIN } }), deps);
  await c.requestOptions();
  await c.requestOptions();
  assert.equal(runs.length, 1);
  c.unauthorized();
  assert.equal((await c.requestOptions()).headers['authorization'], 'Bearer token-2');
});
