/**
 * Policy errors as data. Validation collects every problem of an object (as
 * the API server's field.ErrorList does) rather than stopping at the first, so
 * that a user fixes a manifest in one round; each issue names the field path
 * (`spec.ingress[0].ports[1].endPort`) and, once attached to an object, the
 * object (`NetworkPolicy x/allow-b`).
 */

export type PolicyIssueCode =
  | 'required' // a required field is missing or empty
  | 'invalid' // the value is malformed or out of range
  | 'unknown-field' // a field the API does not define (a typo, or a newer API)
  | 'unsupported' // valid Kubernetes that Sluice cannot enforce
  | 'duplicate' // a second object or entry with the same name
  | 'not-found' // a reference (namespace, pod) to nothing
  | 'exhausted'; // no identity left to allocate

export interface PolicyIssue {
  readonly code: PolicyIssueCode;
  /** Field path inside the object, e.g. "spec.ingress[0].from[1].ipBlock.cidr"; "" for the object itself. */
  readonly path: string;
  readonly message: string;
  /** "Kind namespace/name" of the object, when known. */
  readonly object?: string;
}

/** Not an error, but something the user probably did not mean (never silent). */
export interface PolicyWarning {
  readonly path: string;
  readonly message: string;
  readonly object?: string;
}

export type Checked<T> =
  | { readonly ok: true; readonly value: T; readonly warnings: readonly PolicyWarning[] }
  | { readonly ok: false; readonly errors: readonly PolicyIssue[]; readonly warnings: readonly PolicyWarning[] };

/** "NetworkPolicy x/deny: spec.ingress[0].ports[1].endPort: must be ≥ port (80), got 79". */
export function formatIssue(issue: PolicyIssue | PolicyWarning): string {
  const where = [issue.object, issue.path].filter((s) => s !== undefined && s !== '').join(': ');
  return where === '' ? issue.message : `${where}: ${issue.message}`;
}

/** Thrown by the evaluator for arguments it cannot answer (an unknown pod, a port out of range). */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(
    readonly code: PolicyIssueCode,
    message: string,
    /** The argument or field at fault. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/**
 * Accumulates issues while a validator walks a tree. The object's name is
 * often known only after its metadata has been read, so it is stamped onto
 * every issue when the result is taken.
 */
export class IssueList {
  private readonly errorList: PolicyIssue[] = [];
  private readonly warningList: PolicyWarning[] = [];
  /** "Kind namespace/name"; set it once known. */
  object: string | undefined;

  constructor(object?: string) {
    this.object = object;
  }

  get errorCount(): number {
    return this.errorList.length;
  }

  /** Records an error; `object` names it when the list spans several objects. */
  error(code: PolicyIssueCode, path: string, message: string, object?: string): void {
    this.errorList.push(object === undefined ? { code, path, message } : { code, path, message, object });
  }

  warn(path: string, message: string): void {
    this.warningList.push({ path, message });
  }

  get errors(): PolicyIssue[] {
    return this.errorList.map((e) => this.stamp(e));
  }

  get warnings(): PolicyWarning[] {
    return this.warningList.map((w) => this.stamp(w));
  }

  /** Wraps a value built alongside the checks into a Checked result. */
  result<T>(value: T): Checked<T> {
    return this.errorList.length > 0
      ? { ok: false, errors: this.errors, warnings: this.warnings }
      : { ok: true, value, warnings: this.warnings };
  }

  /** The result of a walk that could not build its value; the reasons must have been recorded. */
  fail(): Checked<never> {
    if (this.errorList.length === 0) throw new Error('IssueList.fail() without a recorded error');
    return { ok: false, errors: this.errors, warnings: this.warnings };
  }

  private stamp<I extends PolicyIssue | PolicyWarning>(issue: I): I {
    return this.object === undefined || issue.object !== undefined ? issue : { ...issue, object: this.object };
  }
}
