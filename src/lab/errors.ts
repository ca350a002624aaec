/**
 * Lab errors as data: a code the CLI and tests can branch on, the spec field
 * or object at fault, and a message that names it.
 */

export type LabErrorCode =
  | 'invalid-spec' // a field of the lab spec is malformed; `field` names it
  | 'exists' // `sluice lab up` found objects of a lab with this name
  | 'not-found' // no lab (state file) with this name
  | 'unknown-pod' // exec/reload named a pod the lab does not have
  | 'setup-failed'; // creating the lab failed half-way; everything was rolled back

export class LabError extends Error {
  override readonly name = 'LabError';
  constructor(
    readonly code: LabErrorCode,
    message: string,
    /** The spec field (e.g. "pods[1]", "cidr") or object the error is about. */
    readonly field?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Narrows an unknown thrown value to an Error for messages. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
