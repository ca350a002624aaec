/**
 * The compiler's ids between agent processes: identities (by label set),
 * rule ids (by rule) and each local endpoint's policy revision, stored in
 * stateDir/compile-seed.json after every sync that reached the maps and
 * handed to the first compile of the next process (CompileSeed,
 * src/policy/compile.ts). With them a restarted agent gives every label set
 * and rule the id the pinned maps already carry, and its first plan is
 * empty when nothing changed while it was down.
 *
 * Not a source of truth: the first plan is still diffed against the maps as
 * read back, so a missing, stale or unreadable seed only makes that plan
 * bigger (ids reassigned and rewritten in an order that opens no hole). A
 * file that cannot be read back is therefore reported and ignored, unlike
 * endpoints.json.
 */
import { seedOf, type CompiledPolicy, type CompileSeed } from '../../policy/compile.js';
import { EMPTY_IDENTITY_TABLE, restoreIdentityTable, type LabelSet } from '../../policy/identity.js';
import type { RuleRef } from '../../policy/model.js';
import { EMPTY_RULE_TABLE, ruleKey, type RuleTable } from '../../policy/rule-ids.js';
import { parseStateObject, readStateText, stateCorrupt, writeStateText } from '../state-files.js';
import { asError } from '../errors.js';
import type { Logger } from '../logger.js';

export const COMPILE_SEED_FILE = 'compile-seed.json';
const VERSION = 1;

/** What is stored: a CompileSeed without the read-back datapath. */
export type StoredSeed = Required<Pick<CompileSeed, 'identityTable' | 'ruleTable' | 'revisions'>>;

interface SeedDocument {
  readonly version: number;
  readonly identities: { readonly next: number; readonly entries: readonly (readonly [number, string])[] };
  readonly rules: { readonly next: number; readonly entries: readonly (readonly [number, RuleRef])[] };
  /** endpoint id → policy revision. */
  readonly revisions: readonly (readonly [number, number])[];
}

/** seedOf(compiled) with every part present. */
export function storedSeedOf(compiled: CompiledPolicy): StoredSeed {
  const seed = seedOf(compiled);
  return { identityTable: seed.identityTable ?? EMPTY_IDENTITY_TABLE, ruleTable: seed.ruleTable ?? EMPTY_RULE_TABLE, revisions: seed.revisions ?? new Map() };
}

export function encodeSeed(seed: StoredSeed): string {
  const doc: SeedDocument = {
    version: VERSION,
    identities: { next: seed.identityTable.next, entries: [...seed.identityTable.byId].map(([id, s]) => [id, s.key] as const) },
    rules: { next: seed.ruleTable.next, entries: [...seed.ruleTable.byId] },
    revisions: [...seed.revisions],
  };
  return `${JSON.stringify(doc)}\n`;
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** Parses a stored seed; throws AgentError state-corrupt naming the file and the field. */
export function decodeSeed(text: string, path: string): StoredSeed {
  const fail = stateCorrupt('compile seed', path);
  const doc = parseStateObject(text, VERSION, fail) as Partial<SeedDocument>;
  const pairs = (field: string, list: unknown, ok: (v: unknown) => boolean): (readonly [number, unknown])[] => {
    if (!Array.isArray(list)) throw fail(field, 'must be a list');
    return list.map((p: unknown, i) => {
      if (!Array.isArray(p) || p.length !== 2 || !isId(p[0]) || !ok(p[1])) throw fail(`${field}[${i}]`, 'must be [id, value]');
      return [p[0], p[1]] as const;
    });
  };
  const { identities, rules } = doc;
  if (identities === undefined || !isId(identities.next)) throw fail('identities.next', 'must be an id');
  if (rules === undefined || !isId(rules.next)) throw fail('rules.next', 'must be an id');
  const labelSets = pairs('identities.entries', identities.entries, (k) => typeof k === 'string');
  const ruleRefs = pairs('rules.entries', rules.entries, isRuleRef);
  const revisions = pairs('revisions', doc.revisions, isId);

  let identityTable;
  try {
    identityTable = restoreIdentityTable<LabelSet>(
      labelSets.map(([id, key]) => [id, { key: key as string, labels: JSON.parse(key as string) as string[] }] as const),
      identities.next,
    );
  } catch (e) {
    throw fail('identities', asError(e).message);
  }
  const byId = new Map<number, RuleRef>();
  const byKey = new Map<string, number>();
  for (const [id, value] of ruleRefs) {
    const r = value as RuleRef;
    const ref: RuleRef = { policy: r.policy, direction: r.direction, index: r.index };
    if (id >= rules.next || byId.has(id) || byKey.has(ruleKey(ref))) throw fail('rules.entries', `rule id ${id} is repeated or not below next`);
    byId.set(id, ref);
    byKey.set(ruleKey(ref), id);
  }
  const ruleTable: RuleTable = { byId, byKey, next: rules.next };
  return { identityTable, ruleTable, revisions: new Map(revisions as [number, number][]) };
}

function isRuleRef(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<RuleRef>;
  return typeof r.policy === 'string' && (r.direction === 'ingress' || r.direction === 'egress') && typeof r.index === 'number' && Number.isInteger(r.index);
}

export class CompileSeedFile {
  constructor(readonly path: string) {}

  /** The stored seed; undefined when there is none. Throws AgentError (state-corrupt, io) otherwise. */
  async load(): Promise<StoredSeed | undefined> {
    const text = await readStateText(this.path, 'compile seed');
    return text === undefined ? undefined : decodeSeed(text, this.path);
  }

  save(seed: StoredSeed): Promise<void> {
    return writeStateText(this.path, 'compile seed', encodeSeed(seed));
  }
}

/**
 * Saves the seed of each applied compile, off the sync's path: one write at
 * a time, only the newest pending seed is written next, and a compile with
 * the ids and revisions of the last one written is not written again. A failed write is logged; the next applied sync tries again.
 */
export class SeedKeeper {
  private written: StoredSeed | undefined;
  private pending: CompiledPolicy | undefined;
  private writing: Promise<void> | undefined;

  constructor(private readonly file: Pick<CompileSeedFile, 'save' | 'path'>, private readonly log: Logger, loaded?: StoredSeed) {
    this.written = loaded;
  }

  /** A compile that is now in the maps. */
  applied(compiled: CompiledPolicy): void {
    this.pending = compiled;
    this.writing ??= this.drain();
  }

  /** Resolves when every offered seed is written (or failed). */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  private async drain(): Promise<void> {
    // Yield first: the sync's waiters (CNI ADDs) answer before the seed is serialised.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.pending !== undefined) {
        const seed = storedSeedOf(this.pending);
        this.pending = undefined;
        if (this.written !== undefined && sameSeed(this.written, seed)) continue;
        try {
          await this.file.save(seed);
          this.written = seed;
        } catch (e) {
          this.log.warn({ err: asError(e), file: this.file.path }, `compile seed not saved (ids may change on restart): ${asError(e).message}`);
        }
      }
    } finally {
      this.writing = undefined;
    }
  }
}

/** Same ids (by content: a recompile may rebuild equal tables). */
function sameSeed(a: StoredSeed, b: StoredSeed): boolean {
  return sameIds(a.identityTable, b.identityTable, (x, y) => x.key === y.key) &&
    sameIds(a.ruleTable, b.ruleTable, (x, y) => ruleKey(x) === ruleKey(y)) &&
    sameIds({ next: 0, byId: a.revisions }, { next: 0, byId: b.revisions }, (x, y) => x === y);
}

function sameIds<V>(a: { next: number; byId: ReadonlyMap<number, V> }, b: typeof a, same: (x: V, y: V) => boolean): boolean {
  if (a === b) return true;
  if (a.next !== b.next || a.byId.size !== b.byId.size) return false;
  for (const [id, v] of a.byId) {
    const w = b.byId.get(id);
    if (w === undefined || !same(v, w)) return false;
  }
  return true;
}
