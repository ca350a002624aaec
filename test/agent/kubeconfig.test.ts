/** The agent's API access as client-node reads the kubeconfig, in the helper process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentError } from '../../src/agent/errors.js';
import { loadKubeConfig } from '../../src/agent/k8s/kubeconfig.js';

function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-agent-kc-'));
  return Promise.resolve(fn(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'c',
    clusters: [{ name: 'k', cluster }], users: [{ name: 'u', user }], contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
  });
}

test('a token, a CA and a TLS server name reach every request; the server URL loses its trailing slash', () => withDir(async (dir) => {
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kubeconfig({ server: 'https://10.0.0.1:6443/', 'certificate-authority-data': b64('CA PEM'), 'tls-server-name': 'api.local' }, { token: 'abc' }));
  const access = loadKubeConfig({ kubeconfig: path });
  assert.equal(access.server, 'https://10.0.0.1:6443');
  const o = await access.requestOptions();
  assert.equal(o.headers['authorization'], 'Bearer abc');
  assert.equal(o.ca?.toString(), 'CA PEM');
  assert.equal(o.servername, 'api.local');
  assert.equal(o.rejectUnauthorized, true);
}));

test('client certificates from files; insecure-skip-tls-verify turns verification off', () => withDir(async (dir) => {
  writeFileSync(join(dir, 'cert.pem'), 'CERT');
  writeFileSync(join(dir, 'key.pem'), 'KEY');
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kubeconfig({ server: 'https://h:1', 'insecure-skip-tls-verify': true },
    { 'client-certificate': join(dir, 'cert.pem'), 'client-key': join(dir, 'key.pem') }));
  const o = await loadKubeConfig({ kubeconfig: path }).requestOptions();
  assert.equal(o.cert?.toString(), 'CERT');
  assert.equal(o.key?.toString(), 'KEY');
  assert.equal(o.rejectUnauthorized, false);
  assert.equal(o.headers['authorization'], undefined);
}));

test('after a 401 the credentials are resolved again (an exec plugin runs again); until then they are reused', () => withDir(async (dir) => {
  writeFileSync(join(dir, 'token'), 'one');
  writeFileSync(join(dir, 'plugin.sh'), `#!/bin/sh\nprintf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat ${dir}/token)"\n`, { mode: 0o755 });
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kubeconfig({ server: 'https://h:1' },
    { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: join(dir, 'plugin.sh'), interactiveMode: 'Never' } }));
  const access = loadKubeConfig({ kubeconfig: path });
  assert.equal((await access.requestOptions()).headers['authorization'], 'Bearer one');
  assert.equal((await access.requestOptions()).headers['authorization'], 'Bearer one', 'reused');
  writeFileSync(join(dir, 'token'), 'two');
  access.unauthorized();
  const [a, b] = await Promise.all([access.requestOptions(), access.requestOptions()]);
  assert.equal(a.headers['authorization'], 'Bearer two');
  assert.equal(b, a, 'one resolution for the requests waiting on it');
}));

test('a kubeconfig that cannot be used: invalid-config naming the setting and the reason', () => withDir((dir) => {
  assert.throws(() => loadKubeConfig({ kubeconfig: join(dir, 'missing') }),
    (e: unknown) => e instanceof AgentError && e.code === 'invalid-config' && e.field === 'kubeconfig' && /missing/.test(e.message));
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, kubeconfig({ server: 'https://h:1', 'proxy-url': 'http://proxy:3128' }, { token: 't' }));
  assert.throws(() => loadKubeConfig({ kubeconfig: path }), (e: unknown) => e instanceof AgentError && /proxy-url is not supported/.test(e.message));
  assert.throws(() => loadKubeConfig({}), (e: unknown) => e instanceof AgentError && e.code === 'invalid-config');
}));
