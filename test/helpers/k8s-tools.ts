/**
 * Where scripts/build-k8s-tools puts helm and kind, and whether a Docker
 * engine answers: for the chart, image and kind tests.
 *
 *   ${SLUICE_CACHE:-/var/cache/sluice}/k8s-bin/helm-<HELM_VERSION>/helm
 *   ${SLUICE_CACHE:-/var/cache/sluice}/k8s-bin/kind-<KIND_VERSION>/kind
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheRoot, defaultVersionsFile } from '../../src/lab/controlplane/binaries.js';

const run = promisify(execFile);

export type K8sTool = 'helm' | 'kind';

/** The cached binary of a tool; throws naming the script that builds it when it is missing. */
export function k8sTool(tool: K8sTool): string {
  const key = tool === 'helm' ? 'HELM_VERSION' : 'KIND_VERSION';
  const text = readFileSync(defaultVersionsFile(), 'utf8');
  const version = new RegExp(`^${key}=(v\\d+\\.\\d+\\.\\d+)$`, 'm').exec(text)?.[1];
  if (version === undefined) throw new Error(`tools/k8s-bin/versions has no ${key}=vX.Y.Z line`);
  const path = join(cacheRoot(), 'k8s-bin', `${tool}-${version}`, tool);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing: run \`bash scripts/build-k8s-tools ${tool}\` (builds it from the Go module proxy)`);
  }
  return path;
}

/**
 * Why Docker cannot be used here, or undefined when an engine answers
 * `docker info`. Tests that need it are reported as not run with this reason.
 */
export async function dockerUnusable(): Promise<string | undefined> {
  try {
    await run(process.env['DOCKER'] ?? 'docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 10_000 });
    return undefined;
  } catch (e) {
    const err = e as { code?: unknown; stderr?: unknown };
    if (err.code === 'ENOENT') return 'not run: no docker CLI (install docker.io; see README, "Image and chart")';
    const detail = typeof err.stderr === 'string' ? err.stderr.trim().split('\n')[0] : '';
    return `not run: no Docker engine answers (bash scripts/docker-engine start)${detail ? `: ${detail}` : ''}`;
  }
}
