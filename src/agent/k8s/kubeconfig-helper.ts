/**
 * A short-lived helper process of the agent (kubeconfig.ts): loads the
 * kubeconfig, or the in-cluster config, with @kubernetes/client-node's
 * KubeConfig — every kubeconfig form and auth plugin client-node supports
 * (client certificates, tokens and token files, exec and auth-provider
 * plugins) — and prints what one request to the current context's server
 * needs: {server, headers, ca, cert, key, rejectUnauthorized, servername},
 * binary fields in base64. Exits 2 with the reason on stderr when the
 * config cannot be used.
 *
 *   node kubeconfig-helper.js --kubeconfig PATH
 *   node kubeconfig-helper.js --in-cluster
 */
import type { RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { ResolvedAccess } from './kubeconfig.js';

function text(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (typeof v === 'string') return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return Buffer.concat(v.map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(String(x))))).toString('base64');
  return undefined;
}

async function main(argv: readonly string[]): Promise<ResolvedAccess> {
  const kc = new KubeConfig();
  if (argv[0] === '--kubeconfig' && argv[1] !== undefined) kc.loadFromFile(argv[1]);
  else if (argv[0] === '--in-cluster') kc.loadFromCluster();
  else throw new Error('usage: kubeconfig-helper --kubeconfig PATH | --in-cluster');
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error(`the current context ${JSON.stringify(kc.getCurrentContext())} names no cluster`);
  if (cluster.proxyUrl !== undefined) throw new Error(`cluster ${cluster.name}: proxy-url is not supported by the agent`);
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) if (typeof v === 'string') headers[k.toLowerCase()] = v;
  const out: ResolvedAccess = {
    server: cluster.server.replace(/\/+$/, ''),
    headers,
    rejectUnauthorized: opts.rejectUnauthorized !== false,
  };
  const ca = text(opts.ca);
  const cert = text(opts.cert);
  const key = text(opts.key);
  return {
    ...out,
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(cluster.tlsServerName !== undefined ? { servername: cluster.tlsServerName } : {}),
  };
}

main(process.argv.slice(2)).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
