/**
 * What `sluice lab policy apply` keeps between runs so that ids stay stable
 * (identities by label set, rule ids by rule): <stateDir>/<lab>.policy.json,
 * written atomically. It belongs to one incarnation of the lab (its
 * createdAt): a file left by an earlier lab of the same name is ignored.
 * The maps themselves are not stored: each apply diffs against the pinned
 * maps as read back.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { restoreIdentityTable, type IdentityTable, type LabelSet } from '../policy/identity.js';
import type { RuleRef } from '../policy/model.js';
import { ruleKey, type RuleTable } from '../policy/rule-ids.js';

const VERSION = 1;

export interface StoredIds {
  readonly identityTable: IdentityTable<LabelSet>;
  readonly ruleTable: RuleTable;
}

interface StoreFile {
  readonly version: number;
  readonly labCreatedAt: string;
  readonly identities: { readonly next: number; readonly entries: readonly (readonly [number, string])[] };
  readonly rules: { readonly next: number; readonly entries: readonly (readonly [number, RuleRef])[] };
}

/** The stored ids, or undefined (no file, another incarnation, unreadable: start afresh). */
export async function readStoredIds(path: string, labCreatedAt: string): Promise<StoredIds | undefined> {
  let file: StoreFile;
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as StoreFile;
  } catch {
    return undefined;
  }
  if (file.version !== VERSION || file.labCreatedAt !== labCreatedAt) return undefined;
  try {
    const identityTable = restoreIdentityTable<LabelSet>(
      file.identities.entries.map(([id, key]) => [id, { key, labels: JSON.parse(key) as string[] }] as const),
      file.identities.next,
    );
    const byId = new Map<number, RuleRef>();
    const byKey = new Map<string, number>();
    for (const [id, ref] of file.rules.entries) {
      const r: RuleRef = { policy: ref.policy, direction: ref.direction, index: ref.index };
      byId.set(id, r);
      byKey.set(ruleKey(r), id);
    }
    return { identityTable, ruleTable: { byId, byKey, next: file.rules.next } };
  } catch {
    return undefined;
  }
}

export async function writeStoredIds(path: string, labCreatedAt: string, ids: StoredIds): Promise<void> {
  const file: StoreFile = {
    version: VERSION,
    labCreatedAt,
    identities: { next: ids.identityTable.next, entries: [...ids.identityTable.byId].map(([id, s]) => [id, s.key] as const) },
    rules: { next: ids.ruleTable.next, entries: [...ids.ruleTable.byId] },
  };
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(file)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

export async function removeStoredIds(path: string): Promise<void> {
  await rm(path, { force: true });
}
