/**
 * The endpoint registry on disk: one JSON document, replaced atomically
 * (write a temp file, fsync, rename over, fsync the directory), so a crash
 * leaves either the old or the new registry, never a torn one. It lives under
 * the state dir, by default on /var/run (tmpfs): endpoints do not outlive a
 * reboot, and neither does the registry.
 *
 * A file that cannot be read back is an error naming the file and the
 * field, never silently replaced: forgetting endpoints would strip the
 * policy of running pods.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AgentError, asError, errnoCode } from '../errors.js';
import { validateEndpointRecord, type EndpointRecord } from './types.js';

export const STATE_VERSION = 1;

export interface EndpointState {
  /** The next endpoint id to try; ids are not reused right away. */
  readonly nextId: number;
  readonly endpoints: readonly EndpointRecord[];
}

export const EMPTY_STATE: EndpointState = { nextId: 1, endpoints: [] };

export interface EndpointStateStore {
  load(): Promise<EndpointState>;
  save(state: EndpointState): Promise<void>;
}

export class EndpointStateFile implements EndpointStateStore {
  constructor(readonly path: string) {}

  async load(): Promise<EndpointState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return EMPTY_STATE;
      throw new AgentError('io', `cannot read endpoint state ${this.path}: ${asError(e).message}`, undefined, { cause: e });
    }
    return parseState(text, this.path);
  }

  async save(state: EndpointState): Promise<void> {
    const dir = dirname(this.path);
    const tmp = `${this.path}.tmp-${process.pid}`;
    const doc = { version: STATE_VERSION, nextId: state.nextId, endpoints: state.endpoints };
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(doc, null, 1)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      const dh = await open(dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new AgentError('io', `cannot write endpoint state ${this.path}: ${asError(e).message}`, undefined, { cause: e });
    }
  }
}

/** Parses and checks a state document; errors name the file and the field ("endpoints[2].ip"). */
export function parseState(text: string, path: string): EndpointState {
  const fail = (field: string, message: string): AgentError =>
    new AgentError('state-corrupt', `endpoint state ${path}: ${field === '' ? '' : `${field}: `}${message}`, field);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw fail('', `not valid JSON (${asError(e).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('', 'must be a JSON object');
  const d = doc as Record<string, unknown>;
  if (d['version'] !== STATE_VERSION) throw fail('version', `unsupported version ${JSON.stringify(d['version'])} (want ${STATE_VERSION})`);
  const nextId = d['nextId'];
  if (typeof nextId !== 'number' || !Number.isInteger(nextId) || nextId < 1) throw fail('nextId', `must be an integer ≥ 1, got ${JSON.stringify(nextId)}`);
  const list = d['endpoints'];
  if (!Array.isArray(list)) throw fail('endpoints', 'must be a list');
  const endpoints: EndpointRecord[] = [];
  list.forEach((raw: unknown, i) => {
    const r = validateEndpointRecord(raw);
    if (!r.ok) {
      const first = r.problems[0];
      throw fail(`endpoints[${i}]${first !== undefined && first.field !== '' ? `.${first.field}` : ''}`, first?.message ?? 'invalid');
    }
    endpoints.push(r.value);
  });
  return { nextId, endpoints };
}
