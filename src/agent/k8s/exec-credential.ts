/**
 * Exec credential plugins (client.authentication.k8s.io ExecCredential): the
 * command a kubeconfig names is run with KUBERNETES_EXEC_INFO describing the
 * request, and prints an ExecCredential whose status carries a bearer token
 * and/or a client certificate, valid until its expirationTimestamp (none:
 * until the server refuses it).
 */
import { execFile } from 'node:child_process';
import type { ApiEndpoint, ExecPlugin } from './api-endpoint.js';

export interface ExecCredential {
  readonly token?: string;
  readonly clientCert?: { readonly cert: Buffer; readonly key: Buffer };
  /** ms since the epoch; absent = no stated expiry. */
  readonly expiresAt?: number;
}

/** A plugin that could not be run or printed something that is not a usable ExecCredential. */
export class ExecCredentialError extends Error {
  override readonly name = 'ExecCredentialError';
  constructor(
    readonly code: 'failed' | 'invalid',
    message: string,
  ) {
    super(message);
  }
}

/** The KUBERNETES_EXEC_INFO a plugin gets: never interactive; the cluster when the plugin asks for it. */
export function execInfo(plugin: ExecPlugin, endpoint: ApiEndpoint, ca: Buffer | undefined): string {
  const cluster = {
    server: endpoint.server,
    ...(ca === undefined ? {} : { 'certificate-authority-data': ca.toString('base64') }),
    ...(endpoint.insecureSkipTlsVerify ? { 'insecure-skip-tls-verify': true } : {}),
    ...(endpoint.tlsServerName === undefined ? {} : { 'tls-server-name': endpoint.tlsServerName }),
  };
  return JSON.stringify({
    apiVersion: plugin.apiVersion,
    kind: 'ExecCredential',
    spec: { interactive: false, ...(plugin.provideClusterInfo ? { cluster } : {}) },
  });
}

/** Runs the plugin (60 s at most) and returns what it printed on stdout. */
export function runExecPlugin(plugin: ExecPlugin, info: string): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const e of plugin.env) env[e.name] = e.value;
  env['KUBERNETES_EXEC_INFO'] = info;
  return new Promise((resolve, reject) => {
    execFile(plugin.command, [...plugin.args], { env, timeout: 60_000, maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) {
        const detail = stderr.trim().split('\n').slice(-3).join(' / ');
        reject(new ExecCredentialError('failed', `exec plugin ${plugin.command}: ${err.message.split('\n')[0] ?? ''}${detail === '' ? '' : `: ${detail}`}`));
        return;
      }
      resolve(stdout);
    });
  });
}

/** The credential in a plugin's output, which must be an ExecCredential of the plugin's apiVersion. */
export function parseExecCredential(stdout: string, apiVersion: string): ExecCredential {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new ExecCredentialError('invalid', 'the exec plugin did not print JSON');
  }
  const o = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  if (o['kind'] !== 'ExecCredential' || o['apiVersion'] !== apiVersion) {
    throw new ExecCredentialError('invalid', `the exec plugin printed ${String(o['apiVersion'])} ${String(o['kind'])}, want ${apiVersion} ExecCredential`);
  }
  const status = (typeof o['status'] === 'object' && o['status'] !== null ? o['status'] : {}) as Record<string, unknown>;
  const text = (key: string): string | undefined => (typeof status[key] === 'string' && status[key] !== '' ? status[key] : undefined);
  const token = text('token');
  const cert = text('clientCertificateData');
  const key = text('clientKeyData');
  if ((cert === undefined) !== (key === undefined)) throw new ExecCredentialError('invalid', 'the ExecCredential has a client certificate without its key, or a key without its certificate');
  if (token === undefined && cert === undefined) throw new ExecCredentialError('invalid', 'the ExecCredential has neither a token nor a client certificate');
  const expiry = text('expirationTimestamp');
  const expiresAt = expiry === undefined ? undefined : Date.parse(expiry);
  if (expiresAt !== undefined && Number.isNaN(expiresAt)) throw new ExecCredentialError('invalid', `expirationTimestamp "${expiry ?? ''}" is not a time`);
  return {
    ...(token === undefined ? {} : { token }),
    ...(cert === undefined || key === undefined ? {} : { clientCert: { cert: Buffer.from(cert), key: Buffer.from(key) } }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}
