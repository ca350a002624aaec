/** Exec credential plugins: what they are given, how they are run, what is read back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiEndpoint, ExecPlugin } from '../../src/agent/k8s/api-endpoint.js';
import { ExecCredentialError, execInfo, parseExecCredential, runExecPlugin } from '../../src/agent/k8s/exec-credential.js';

const V1 = 'client.authentication.k8s.io/v1';
const plugin = (over: Partial<ExecPlugin> = {}): ExecPlugin => ({ apiVersion: V1, command: 'x', args: [], env: [], interactiveMode: 'Never', provideClusterInfo: false, ...over });
const endpoint: ApiEndpoint = { server: 'https://h:6443', insecureSkipTlsVerify: false, tlsServerName: 'kubernetes', user: {} };

test('KUBERNETES_EXEC_INFO says non-interactive, with the cluster only when the plugin asks for it', () => {
  assert.deepEqual(JSON.parse(execInfo(plugin(), endpoint, Buffer.from('CA'))), { apiVersion: V1, kind: 'ExecCredential', spec: { interactive: false } });
  const withCluster = JSON.parse(execInfo(plugin({ provideClusterInfo: true }), endpoint, Buffer.from('CA'))) as { spec: { cluster: unknown } };
  assert.deepEqual(withCluster.spec.cluster, {
    server: 'https://h:6443', 'certificate-authority-data': Buffer.from('CA').toString('base64'), 'tls-server-name': 'kubernetes',
  });
});

test('a token, a client certificate and the expiry are read from the status', () => {
  const out = (status: Record<string, unknown>): string => JSON.stringify({ apiVersion: V1, kind: 'ExecCredential', status });
  assert.deepEqual(parseExecCredential(out({ token: 'tk' }), V1), { token: 'tk' });
  assert.deepEqual(parseExecCredential(out({ clientCertificateData: 'C', clientKeyData: 'K', expirationTimestamp: '2030-01-02T03:04:05Z' }), V1), {
    clientCert: { cert: Buffer.from('C'), key: Buffer.from('K') }, expiresAt: Date.UTC(2030, 0, 2, 3, 4, 5),
  });
  const invalid = (text: string): void => {
    assert.throws(() => parseExecCredential(text, V1), (e: unknown) => e instanceof ExecCredentialError && e.code === 'invalid');
  };
  invalid('not json');
  invalid(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 't' } }));
  invalid(out({}));
  invalid(out({ clientCertificateData: 'C' }));
  invalid(out({ token: 't', expirationTimestamp: 'soon' }));
});

test('the plugin runs with its env and KUBERNETES_EXEC_INFO; a failure carries its stderr', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-exec-'));
  try {
    const script = join(dir, 'plugin.sh');
    writeFileSync(script, `#!/bin/sh\nprintf '%s' "$KUBERNETES_EXEC_INFO" > "${dir}/info"\necho "{\\"who\\":\\"$WHO\\",\\"arg\\":\\"$1\\"}"\n`);
    chmodSync(script, 0o755);
    const out = await runExecPlugin(plugin({ command: script, args: ['a1'], env: [{ name: 'WHO', value: 'me' }] }), '{"i":1}');
    assert.deepEqual(JSON.parse(out), { who: 'me', arg: 'a1' });
    assert.equal(readFileSync(join(dir, 'info'), 'utf8'), '{"i":1}');

    const failing = join(dir, 'fail.sh');
    writeFileSync(failing, '#!/bin/sh\necho "no credentials for you" >&2\nexit 3\n');
    chmodSync(failing, 0o755);
    await assert.rejects(runExecPlugin(plugin({ command: failing }), '{}'),
      (e: unknown) => e instanceof ExecCredentialError && e.code === 'failed' && /no credentials for you/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
