/**
 * The agent's state files (endpoints.json, compile-seed.json): replaced so
 * that a crash leaves the old or the new content, never a torn file (write
 * a temp file beside it with mode 0600, fsync, rename over, fsync the
 * directory), read with "absent" as an answer rather than an error, and
 * parsed with errors that name the file and the field.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AgentError, asError, errnoCode } from './errors.js';

/** Writes `text` to `path` atomically; on failure the temp file is removed and the error rethrown. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** The file's text, or undefined when there is none; other failures are AgentError io naming `what` and the path. */
export async function readStateText(path: string, what: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw new AgentError('io', `cannot read ${what} ${path}: ${asError(e).message}`, undefined, { cause: e });
  }
}

/** writeFileAtomic; a failure is AgentError io naming `what` and the path. */
export async function writeStateText(path: string, what: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(path, text);
  } catch (e) {
    throw new AgentError('io', `cannot write ${what} ${path}: ${asError(e).message}`, undefined, { cause: e });
  }
}

/** The error maker for one state file: state-corrupt, naming the file and the field ("endpoints[2].ip"). */
export function stateCorrupt(what: string, path: string): (field: string, message: string) => AgentError {
  return (field, message) => new AgentError('state-corrupt', `${what} ${path}: ${field === '' ? '' : `${field}: `}${message}`, field);
}

/** The JSON object of a state file with `version`; anything else fails through `fail`. */
export function parseStateObject(text: string, version: number, fail: (field: string, message: string) => AgentError): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw fail('', `not valid JSON (${asError(e).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('', 'must be a JSON object');
  const d = doc as Record<string, unknown>;
  if (d['version'] !== version) throw fail('version', `unsupported version ${JSON.stringify(d['version'])} (want ${version})`);
  return d;
}
