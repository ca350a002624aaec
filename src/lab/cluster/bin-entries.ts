/**
 * The project's own executables as package.json's "bin" names them
 * (sluice-agent, sluice-cni): the lab runs exactly what an installation
 * runs, and follows when a build moves an entry (e.g. to a bundled file).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabError } from '../errors.js';

export type BinName = 'sluice' | 'sluice-agent' | 'sluice-cni';

/** The package root: the first directory above this module with a package.json naming `sluice`. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && (JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown }).name === 'sluice') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new LabError('setup-failed', `no sluice package.json above ${fileURLToPath(import.meta.url)}`, 'bin');
    dir = parent;
  }
}

/** Absolute path of a bin entry; fails naming the entry when it is not built. */
export function binEntry(name: BinName): string {
  const root = packageRoot();
  const bin = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin?: Record<string, unknown> }).bin?.[name];
  if (typeof bin !== 'string') throw new LabError('setup-failed', `package.json has no bin entry "${name}"`, 'bin');
  const path = resolve(root, bin);
  if (!existsSync(path)) throw new LabError('setup-failed', `${name}: ${path} is missing; build first (npx tsc -p tsconfig.json)`, 'bin');
  return path;
}
