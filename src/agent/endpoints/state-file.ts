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
import { parseStateObject, readStateText, stateCorrupt, writeStateText } from '../state-files.js';
import { validateEndpointRecord, type EndpointRecord } from '../../endpoint/contract.js';

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
    const text = await readStateText(this.path, 'endpoint state');
    return text === undefined ? EMPTY_STATE : parseState(text, this.path);
  }

  save(state: EndpointState): Promise<void> {
    const doc = { version: STATE_VERSION, nextId: state.nextId, endpoints: state.endpoints };
    return writeStateText(this.path, 'endpoint state', `${JSON.stringify(doc, null, 1)}\n`);
  }
}

/** Parses and checks a state document; errors name the file and the field ("endpoints[2].ip"). */
export function parseState(text: string, path: string): EndpointState {
  const fail = stateCorrupt('endpoint state', path);
  const d = parseStateObject(text, STATE_VERSION, fail);
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
