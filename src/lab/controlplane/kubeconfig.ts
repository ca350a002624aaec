/**
 * The kubeconfig the harness hands to kubectl, kube-controller-manager and
 * @kubernetes/client-node: one cluster (server URL + CA data), one user
 * (bearer token), one context. Written as JSON, which is YAML, so every
 * kubeconfig reader accepts it without a YAML writer here.
 */
import { writeFileSync } from 'node:fs';

export interface KubeconfigSpec {
  readonly server: string;
  /** PEM bundle that verifies the server's certificate. */
  readonly caPem: string;
  readonly token: string;
  readonly user?: string;
  readonly cluster?: string;
}

export function renderKubeconfig(spec: KubeconfigSpec): string {
  const cluster = spec.cluster ?? 'sluice';
  const user = spec.user ?? 'admin';
  const context = `${user}@${cluster}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: cluster,
        cluster: { server: spec.server, 'certificate-authority-data': Buffer.from(spec.caPem).toString('base64') },
      },
    ],
    users: [{ name: user, user: { token: spec.token } }],
    contexts: [{ name: context, context: { cluster, user } }],
    'current-context': context,
    preferences: {},
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Writes the kubeconfig with mode 0600 (it holds a token). */
export function writeKubeconfig(path: string, spec: KubeconfigSpec): void {
  writeFileSync(path, renderKubeconfig(spec), { mode: 0o600 });
}
