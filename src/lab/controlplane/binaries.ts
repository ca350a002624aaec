/**
 * Where the control-plane binaries are. scripts/build-controlplane builds
 * them from the Go module proxy into a machine-wide cache keyed by version;
 * this module resolves the same paths from the same versions file, so the
 * two can never disagree about which build a test runs.
 *
 *   ${SLUICE_CACHE:-/var/cache/sluice}/k8s-bin/kubernetes-<v>/{kube-apiserver,kube-controller-manager,kubectl}
 *   ${SLUICE_CACHE:-/var/cache/sluice}/k8s-bin/kubernetes-<v>/kube-proxy   (--kube-proxy: the lab's peer proxy)
 *   ${SLUICE_CACHE:-/var/cache/sluice}/k8s-bin/etcd-<v>/etcd
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlaneError } from './errors.js';

export interface ControlPlaneVersions {
  /** k8s.io/kubernetes tag, e.g. "v1.34.4". */
  readonly kubernetes: string;
  /** go.etcd.io/etcd/server/v3 tag, e.g. "v3.5.35". */
  readonly etcd: string;
}

export interface ControlPlaneBinaries {
  readonly versions: ControlPlaneVersions;
  readonly etcd: string;
  readonly kubeApiserver: string;
  readonly kubeControllerManager: string;
  readonly kubectl: string;
}

export const DEFAULT_CACHE_ROOT = '/var/cache/sluice';
const VERSIONS_FILE = join('tools', 'k8s-bin', 'versions');
const BUILD_HINT = 'run `bash scripts/build-controlplane` (builds them from the Go module proxy; cold: ~20 min)';

/** The cache root: $SLUICE_CACHE, else /var/cache/sluice (shared by every clone on the machine). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.SLUICE_CACHE;
  return v !== undefined && v !== '' ? v : DEFAULT_CACHE_ROOT;
}

/**
 * Finds tools/k8s-bin/versions by walking up from this module, which works
 * both from src/ (ts source) and from dist/src/ (compiled).
 */
export function defaultVersionsFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, VERSIONS_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new ControlPlaneError('versions-file', `no ${VERSIONS_FILE} above ${fileURLToPath(import.meta.url)}`);
    }
    dir = parent;
  }
}

/** Parses the KEY=vX.Y.Z lines of the versions file (comments and blanks ignored). */
export function parseVersions(text: string, source = VERSIONS_FILE): ControlPlaneVersions {
  const values = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z_]+)=(v\d+\.\d+\.\d+)$/.exec(line);
    if (!m?.[1] || !m[2]) {
      throw new ControlPlaneError('versions-file', `${source}: malformed line ${JSON.stringify(line)}`);
    }
    values.set(m[1], m[2]);
  }
  const get = (key: string): string => {
    const v = values.get(key);
    if (v === undefined) throw new ControlPlaneError('versions-file', `${source}: no ${key}=vX.Y.Z line`);
    return v;
  };
  return { kubernetes: get('KUBERNETES_VERSION'), etcd: get('ETCD_VERSION') };
}

/** Paths of the binaries for these versions under this cache root (existence not checked). */
export function binaryPaths(versions: ControlPlaneVersions, root: string): ControlPlaneBinaries {
  const k8s = join(root, 'k8s-bin', `kubernetes-${versions.kubernetes}`);
  return {
    versions,
    etcd: join(root, 'k8s-bin', `etcd-${versions.etcd}`, 'etcd'),
    kubeApiserver: join(k8s, 'kube-apiserver'),
    kubeControllerManager: join(k8s, 'kube-controller-manager'),
    kubectl: join(k8s, 'kubectl'),
  };
}

/** Where kube-proxy of these versions is (built by `scripts/build-controlplane --kube-proxy`; existence not checked). */
export function kubeProxyPath(versions: ControlPlaneVersions, root: string): string {
  return join(root, 'k8s-bin', `kubernetes-${versions.kubernetes}`, 'kube-proxy');
}

export interface FindBinariesOptions {
  readonly versionsFile?: string;
  readonly cacheRoot?: string;
}

/**
 * Resolves the binaries and checks that each is an executable file. Missing
 * ones are an error that names them and says how to build them: tests must
 * fail loudly rather than skip when the control plane was never built.
 */
export function findBinaries(options: FindBinariesOptions = {}): ControlPlaneBinaries {
  const file = options.versionsFile ?? defaultVersionsFile();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ControlPlaneError('versions-file', `cannot read ${file}`, undefined, { cause: e });
  }
  const bins = binaryPaths(parseVersions(text, file), options.cacheRoot ?? cacheRoot());
  const missing = [bins.etcd, bins.kubeApiserver, bins.kubeControllerManager, bins.kubectl].filter((p) => !isExecutable(p));
  if (missing.length > 0) {
    throw new ControlPlaneError(
      'binaries-missing',
      `control-plane binaries missing: ${missing.join(', ')}; ${BUILD_HINT}`,
    );
  }
  return bins;
}

/**
 * kube-proxy of the versions file's Kubernetes, checked executable; with
 * `nft` set, also the `nft` binary its nftables mode runs (on $PATH). Missing
 * ones are an error that says how to get them.
 */
export function findKubeProxy(options: FindBinariesOptions & { readonly nft?: boolean } = {}): string {
  const file = options.versionsFile ?? defaultVersionsFile();
  const path = kubeProxyPath(parseVersions(readFileSync(file, 'utf8'), file), options.cacheRoot ?? cacheRoot());
  if (!isExecutable(path)) {
    throw new ControlPlaneError('binaries-missing', `kube-proxy missing: ${path}; run \`bash scripts/build-controlplane --kube-proxy\``);
  }
  if (options.nft === true && !(process.env.PATH ?? '').split(':').some((d) => d !== '' && isExecutable(join(d, 'nft')))) {
    throw new ControlPlaneError('binaries-missing', 'nft missing (kube-proxy\'s nftables mode runs it); run `bash scripts/build-controlplane --kube-proxy`, which installs nftables');
  }
  return path;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
