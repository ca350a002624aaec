/**
 * Reads `-f FILE_OR_DIR` arguments into manifest sources: a file as is, a
 * directory's *.yaml / *.yml / *.json files (not recursive, sorted, as
 * `kubectl apply -f DIR` does), "-" for stdin. Then loads them into a
 * cluster; any problem becomes a CliInputError (exit code 2) whose message
 * names the file and the field.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '../policy/cluster.js';
import { loadManifests, type ManifestOptions, type ManifestSource } from '../policy/manifests.js';

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

/** Bad input: the user's to fix; the CLI exits 2. */
export class CliInputError extends Error {
  override readonly name = 'CliInputError';
  readonly exitCode = 2;
}

export function readSources(paths: readonly string[]): ManifestSource[] {
  if (paths.length === 0) throw new CliInputError('-f: at least one file or directory is required');
  const out: ManifestSource[] = [];
  for (const path of paths) {
    if (path === '-') {
      out.push({ file: '<stdin>', text: readText(0, '<stdin>') });
      continue;
    }
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (e) {
      throw new CliInputError(`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (!isDir) {
      out.push({ file: path, text: readText(path, path) });
      continue;
    }
    const files = readdirSync(path)
      .filter((f) => MANIFEST_EXTENSIONS.some((ext) => f.endsWith(ext)))
      .sort();
    if (files.length === 0) throw new CliInputError(`${path}: no ${MANIFEST_EXTENSIONS.join(', ')} files in this directory`);
    for (const f of files) out.push({ file: join(path, f), text: readText(join(path, f), join(path, f)) });
  }
  return out;
}

/** The cluster of the manifests; warnings go to `warn` (one line each). */
export function loadCluster(paths: readonly string[], warn: (line: string) => void, options: ManifestOptions = {}): Cluster {
  const result = loadManifests(readSources(paths), options);
  for (const w of result.warnings) warn(`warning: ${w}`);
  if (!result.ok) throw new CliInputError(result.errors.join('\n'));
  return result.value.cluster;
}

function readText(fileOrFd: string | number, name: string): string {
  try {
    return readFileSync(fileOrFd, 'utf8');
  } catch (e) {
    throw new CliInputError(`${name}: cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}
