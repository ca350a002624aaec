/**
 * Where the API server is and how to authenticate to it: the current context
 * of a kubeconfig file, or the pod's service account (in-cluster: token and
 * CA under /var/run/secrets/kubernetes.io/serviceaccount, server from
 * KUBERNETES_SERVICE_HOST/PORT). Errors name the setting.
 *
 * Read here rather than through @kubernetes/client-node: its KubeConfig
 * module loads the library's whole generated API, ≈ 45 MiB of RSS and a
 * third of a second of start-up in an agent that makes nothing but lists and
 * watches (bench/agent). What kubectl's kubeconfig can say about a user is
 * covered except the legacy `auth-provider` plugins (gcp, azure, oidc) and
 * `proxy-url`, which are refused by name. Relative paths in a kubeconfig are
 * relative to its directory, as kubectl reads them.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AgentError, asError } from '../errors.js';
import type { ApiEndpoint, ExecPlugin, FileOrData, UserAuth } from './api-endpoint.js';
import { ApiCredentials, type ApiAccess, type CredentialDeps } from './credentials.js';

export interface KubeConfigSource {
  readonly kubeconfig?: string;
  readonly inCluster: boolean;
}

/** A kubeconfig that says something wrong or something Sluice does not support; `field` is its path in the file. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
  constructor(
    readonly code: 'invalid' | 'unsupported',
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The current context of a kubeconfig document; `baseDir` resolves its relative paths. */
export function parseKubeConfig(text: string, baseDir: string): ApiEndpoint {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new KubeConfigError('invalid', '(document)', `not YAML: ${asError(e).message}`);
  }
  const root = object(doc, '(document)');
  const contextName = str(root, 'current-context', '');
  if (contextName === undefined || contextName === '') throw new KubeConfigError('invalid', 'current-context', 'is not set');
  const context = named(root, 'contexts', contextName, 'context');
  const clusterName = str(context.value, 'cluster', context.path);
  if (clusterName === undefined) throw new KubeConfigError('invalid', `${context.path}.cluster`, 'is not set');
  const cluster = named(root, 'clusters', clusterName, 'cluster');
  const userName = str(context.value, 'user', context.path);
  const user = userName === undefined || userName === '' ? undefined : named(root, 'users', userName, 'user');

  const c = cluster.value;
  const server = str(c, 'server', cluster.path);
  if (server === undefined || server === '') throw new KubeConfigError('invalid', `${cluster.path}.server`, 'is not set');
  if (c['proxy-url'] !== undefined) throw new KubeConfigError('unsupported', `${cluster.path}.proxy-url`, 'a proxy is not supported by sluice-agent');
  const ca = fileOrData(c, 'certificate-authority', cluster.path, baseDir);
  const endpoint: ApiEndpoint = {
    server: serverUrl(server, `${cluster.path}.server`),
    insecureSkipTlsVerify: bool(c, 'insecure-skip-tls-verify', cluster.path) ?? false,
    user: user === undefined ? {} : userAuth(user.value, user.path, baseDir),
  };
  const tlsServerName = str(c, 'tls-server-name', cluster.path);
  return {
    ...endpoint,
    ...(ca === undefined ? {} : { ca }),
    ...(tlsServerName === undefined || tlsServerName === '' ? {} : { tlsServerName }),
  };
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The in-cluster endpoint: the service account's token file and CA, the server from the environment. */
export function inClusterEndpoint(env: NodeJS.ProcessEnv, dir = SERVICE_ACCOUNT_DIR): ApiEndpoint {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new KubeConfigError('invalid', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set in a pod');
  }
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    server: serverUrl(`https://${h}:${port}`, 'KUBERNETES_SERVICE_HOST'),
    ca: { file: resolve(dir, 'ca.crt') },
    insecureSkipTlsVerify: false,
    user: { credential: { kind: 'token-file', file: resolve(dir, 'token') } },
  };
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly serviceAccountDir?: string;
  readonly deps?: Partial<CredentialDeps>;
}

/**
 * The API access of the agent's config: the endpoint, and credentials that
 * are applied afresh to every request. Throws AgentError 'invalid-config'
 * naming `kubeconfig` or `inCluster`.
 */
export function loadKubeConfig(source: KubeConfigSource, options: LoadOptions = {}): ApiAccess {
  const field = source.kubeconfig !== undefined ? 'kubeconfig' : 'inCluster';
  const what = source.kubeconfig ?? 'the in-cluster config';
  let endpoint: ApiEndpoint;
  try {
    if (source.kubeconfig !== undefined) {
      const path = resolve(source.kubeconfig);
      endpoint = parseKubeConfig(readFileSync(path, 'utf8'), dirname(path));
    } else if (source.inCluster) {
      endpoint = inClusterEndpoint(options.env ?? process.env, options.serviceAccountDir);
    } else {
      throw new Error('neither a kubeconfig nor in-cluster config was given');
    }
    return new ApiCredentials(endpoint, options.deps);
  } catch (e) {
    throw new AgentError('invalid-config', `${field}: cannot load ${what}: ${asError(e).message}`, field, { cause: e });
  }
}

type Obj = Record<string, unknown>;

function object(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new KubeConfigError('invalid', path, 'must be a mapping');
  return v as Obj;
}

function str(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new KubeConfigError('invalid', join(path, key), 'must be a string');
  return v;
}

function bool(o: Obj, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new KubeConfigError('invalid', join(path, key), 'must be true or false');
  return v;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** The entry `name` of the list `list` ([{name, <inner>: {...}}]): its inner mapping and path. */
function named(root: Obj, list: string, name: string, inner: string): { value: Obj; path: string } {
  const entries = root[list] ?? [];
  if (!Array.isArray(entries)) throw new KubeConfigError('invalid', list, 'must be a list');
  const at = entries.findIndex((e: unknown) => typeof e === 'object' && e !== null && (e as Obj)['name'] === name);
  if (at < 0) throw new KubeConfigError('invalid', list, `has no entry named "${name}"`);
  const path = `${list}[${at}].${inner}`;
  return { value: object((entries[at] as Obj)[inner] ?? {}, path), path };
}

/** `<key>-data` (base64) or `<key>` (a path); the data wins when both are given, as in kubectl. */
function fileOrData(o: Obj, key: string, path: string, baseDir: string): FileOrData | undefined {
  const data = str(o, `${key}-data`, path);
  if (data !== undefined && data !== '') return { data: Buffer.from(data, 'base64') };
  const file = str(o, key, path);
  if (file !== undefined && file !== '') return { file: isAbsolute(file) ? file : resolve(baseDir, file) };
  return undefined;
}

function userAuth(u: Obj, path: string, baseDir: string): UserAuth {
  if (u['auth-provider'] !== undefined) {
    throw new KubeConfigError('unsupported', `${path}.auth-provider`, 'auth-provider plugins are not supported: use an exec plugin (users[].user.exec)');
  }
  const cert = fileOrData(u, 'client-certificate', path, baseDir);
  const key = fileOrData(u, 'client-key', path, baseDir);
  if ((cert === undefined) !== (key === undefined)) {
    throw new KubeConfigError('invalid', `${path}.${cert === undefined ? 'client-certificate' : 'client-key'}`, 'a client certificate needs both the certificate and its key');
  }
  const credentials: NonNullable<UserAuth['credential']>[] = [];
  const token = str(u, 'token', path);
  if (token !== undefined && token !== '') credentials.push({ kind: 'token', token });
  const tokenFile = str(u, 'tokenFile', path);
  if (tokenFile !== undefined && tokenFile !== '' && credentials.length === 0) {
    credentials.push({ kind: 'token-file', file: isAbsolute(tokenFile) ? tokenFile : resolve(baseDir, tokenFile) });
  }
  const username = str(u, 'username', path);
  if (username !== undefined && username !== '') credentials.push({ kind: 'basic', username, password: str(u, 'password', path) ?? '' });
  if (u['exec'] !== undefined && u['exec'] !== null) credentials.push({ kind: 'exec', plugin: execPlugin(object(u['exec'], `${path}.exec`), `${path}.exec`, baseDir) });
  if (credentials.length > 1) {
    throw new KubeConfigError('invalid', path, `more than one credential (${credentials.map((c) => c.kind).join(', ')}): give one`);
  }
  const credential = credentials[0];
  return {
    ...(cert === undefined || key === undefined ? {} : { clientCert: { cert, key } }),
    ...(credential === undefined ? {} : { credential }),
  };
}

const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];

function execPlugin(e: Obj, path: string, baseDir: string): ExecPlugin {
  const apiVersion = str(e, 'apiVersion', path) ?? '';
  if (!EXEC_API_VERSIONS.includes(apiVersion)) {
    throw new KubeConfigError('unsupported', `${path}.apiVersion`, `"${apiVersion}" is not one of ${EXEC_API_VERSIONS.join(', ')}`);
  }
  const command = str(e, 'command', path);
  if (command === undefined || command === '') throw new KubeConfigError('invalid', `${path}.command`, 'is not set');
  const rawArgs = e['args'] ?? [];
  if (!Array.isArray(rawArgs) || !rawArgs.every((a): a is string => typeof a === 'string')) {
    throw new KubeConfigError('invalid', `${path}.args`, 'must be a list of strings');
  }
  const rawEnv = e['env'] ?? [];
  if (!Array.isArray(rawEnv)) throw new KubeConfigError('invalid', `${path}.env`, 'must be a list of {name, value}');
  const env = rawEnv.map((v: unknown, i) => {
    const o = object(v, `${path}.env[${i}]`);
    const name = str(o, 'name', `${path}.env[${i}]`);
    if (name === undefined || name === '') throw new KubeConfigError('invalid', `${path}.env[${i}].name`, 'is not set');
    return { name, value: str(o, 'value', `${path}.env[${i}]`) ?? '' };
  });
  const interactiveMode = str(e, 'interactiveMode', path) ?? 'IfAvailable';
  if (interactiveMode === 'Always') {
    throw new KubeConfigError('unsupported', `${path}.interactiveMode`, 'Always: the agent has no terminal for an interactive plugin');
  }
  // A command with a slash is a path (relative ones from the kubeconfig's directory); a bare name is looked up in PATH.
  const resolved = command.includes('/') && !isAbsolute(command) ? resolve(baseDir, command) : command;
  return { apiVersion, command: resolved, args: rawArgs, env, interactiveMode, provideClusterInfo: bool(e, 'provideClusterInfo', path) ?? false };
}

function serverUrl(text: string, field: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KubeConfigError('invalid', field, `"${text}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new KubeConfigError('invalid', field, `"${text}" is not an http(s) URL`);
  return text.replace(/\/+$/, '');
}
