/**
 * Narrowing thrown values, for every part of Sluice (agent, CNI, lab): a
 * dependency-free module, so that importing it never pulls a part in.
 */

/** Narrows an unknown thrown value to an Error, for messages and causes. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** The errno code of a Node system error ("ENOENT"), if it has one. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null || !('code' in e)) return undefined;
  const code = e.code;
  return typeof code === 'string' ? code : undefined;
}
