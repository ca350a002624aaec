/** Reading a kubeconfig context or the in-cluster service account into an ApiEndpoint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { AgentError } from '../../src/agent/errors.js';
import { inClusterEndpoint, KubeConfigError, loadKubeConfig, parseKubeConfig } from '../../src/agent/k8s/kubeconfig.js';

/** A kubeconfig with two contexts; `user` is the user of the current one ("me"). */
function doc(cluster: Record<string, unknown>, user: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'other', cluster: { server: 'https://other.invalid' } }, { name: 'c', cluster }],
    users: [{ name: 'someone', user: { token: 'not-this-one' } }, { name: 'me', user }],
    contexts: [{ name: 'x', context: { cluster: 'other', user: 'someone' } }, { name: 'mine', context: { cluster: 'c', user: 'me' } }],
    'current-context': 'mine',
    ...extra,
  });
}

const rejects = (text: string, code: KubeConfigError['code'], field: string): void => {
  assert.throws(() => parseKubeConfig(text, '/base'), (e: unknown) => e instanceof KubeConfigError && e.code === code && e.field === field);
};

test('the current context picks the cluster and user; relative paths are relative to the kubeconfig', () => {
  const e = parseKubeConfig(doc(
    { server: 'https://api.example:6443/', 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'kubernetes' },
    { 'client-certificate': '/abs/me.crt', 'client-key': 'me.key', tokenFile: 'tok' },
  ), '/base');
  assert.equal(e.server, 'https://api.example:6443');
  assert.deepEqual(e.ca, { file: '/base/pki/ca.crt' });
  assert.equal(e.tlsServerName, 'kubernetes');
  assert.equal(e.insecureSkipTlsVerify, false);
  assert.deepEqual(e.user, { clientCert: { cert: { file: '/abs/me.crt' }, key: { file: '/base/me.key' } }, credential: { kind: 'token-file', file: '/base/tok' } });
});

test('inline data wins over a path, and a token over a token file', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n';
  const e = parseKubeConfig(doc(
    { server: 'https://h', 'certificate-authority': '/ignored', 'certificate-authority-data': Buffer.from(ca).toString('base64'), 'insecure-skip-tls-verify': true },
    { token: 't0k', tokenFile: '/ignored' },
  ), '/base');
  assert.deepEqual(e.ca, { data: Buffer.from(ca) });
  assert.equal(e.insecureSkipTlsVerify, true);
  assert.deepEqual(e.user, { credential: { kind: 'token', token: 't0k' } });
});

test('basic auth and exec plugins are read with their settings', () => {
  assert.deepEqual(parseKubeConfig(doc({ server: 'http://h' }, { username: 'u', password: 'p' }), '/b').user, { credential: { kind: 'basic', username: 'u', password: 'p' } });
  const e = parseKubeConfig(doc({ server: 'https://h' }, {
    exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './bin/get-token', args: ['--x'], env: [{ name: 'A', value: 'b' }], provideClusterInfo: true, interactiveMode: 'Never' },
  }), '/base');
  assert.deepEqual(e.user.credential, {
    kind: 'exec',
    plugin: { apiVersion: 'client.authentication.k8s.io/v1', command: '/base/bin/get-token', args: ['--x'], env: [{ name: 'A', value: 'b' }], interactiveMode: 'Never', provideClusterInfo: true },
  });
  const bare = parseKubeConfig(doc({ server: 'https://h' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'aws' } }), '/base');
  assert.equal(bare.user.credential?.kind === 'exec' ? bare.user.credential.plugin.command : '', 'aws');
});

test('what cannot be used is refused, naming the field', () => {
  rejects(doc({ server: 'https://h' }, {}, { 'current-context': '' }), 'invalid', 'current-context');
  rejects(doc({ server: 'https://h' }, {}, { 'current-context': 'gone' }), 'invalid', 'contexts');
  rejects(doc({}, {}), 'invalid', 'clusters[1].cluster.server');
  rejects(doc({ server: 'ftp://h' }, {}), 'invalid', 'clusters[1].cluster.server');
  rejects(doc({ server: 'https://h', 'proxy-url': 'http://proxy' }, {}), 'unsupported', 'clusters[1].cluster.proxy-url');
  rejects(doc({ server: 'https://h' }, { 'auth-provider': { name: 'oidc' } }), 'unsupported', 'users[1].user.auth-provider');
  rejects(doc({ server: 'https://h' }, { token: 't', username: 'u' }), 'invalid', 'users[1].user');
  rejects(doc({ server: 'https://h' }, { 'client-certificate-data': 'eA==' }), 'invalid', 'users[1].user.client-key');
  rejects(doc({ server: 'https://h' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'x' } }), 'unsupported', 'users[1].user.exec.apiVersion');
  rejects(doc({ server: 'https://h' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'x', interactiveMode: 'Always' } }), 'unsupported', 'users[1].user.exec.interactiveMode');
  rejects(doc({ server: 'https://h', 'insecure-skip-tls-verify': 'yes' }, {}), 'invalid', 'clusters[1].cluster.insecure-skip-tls-verify');
  rejects('{', 'invalid', '(document)');
});

test('in-cluster: the service account files and the server from the environment (IPv6 in brackets)', () => {
  const e = inClusterEndpoint({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, '/sa');
  assert.equal(e.server, 'https://[fd00::1]:443');
  assert.deepEqual(e.ca, { file: '/sa/ca.crt' });
  assert.deepEqual(e.user, { credential: { kind: 'token-file', file: '/sa/token' } });
  assert.throws(() => inClusterEndpoint({}, '/sa'), (err: unknown) => err instanceof KubeConfigError && err.field === 'KUBERNETES_SERVICE_HOST');
});

test('loadKubeConfig reads the file and reports problems as invalid-config naming kubeconfig or inCluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-kc-'));
  try {
    const path = join(dir, 'kubeconfig');
    writeFileSync(path, doc({ server: 'https://h:1' }, { token: 't' }));
    assert.equal(loadKubeConfig({ kubeconfig: path, inCluster: false }).server, 'https://h:1');
    writeFileSync(path, doc({ server: 'https://h:1' }, { 'auth-provider': { name: 'gcp' } }));
    assert.throws(() => loadKubeConfig({ kubeconfig: path, inCluster: false }),
      (e: unknown) => e instanceof AgentError && e.code === 'invalid-config' && e.field === 'kubeconfig' && /auth-provider/.test(e.message));
    assert.throws(() => loadKubeConfig({ inCluster: true }, { env: {} }),
      (e: unknown) => e instanceof AgentError && e.field === 'inCluster' && /KUBERNETES_SERVICE_HOST/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
