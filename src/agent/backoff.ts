/**
 * Exponential backoff with jitter for reconnecting to the API server and
 * retrying failed map updates. Jitter spreads the agents of a cluster apart
 * after an API-server outage, so they do not all relist at the same instant.
 *
 * delay(n) = base(n) × (1 − jitter × r), base(n) = min(max, initial × factor^n),
 * with r uniform in [0, 1): jitter 0 is plain exponential, 0.5 is "equal
 * jitter" (never less than half the base), 1 is "full jitter".
 */

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  /** Fraction of the delay that is randomised, 0..1. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

/** Returns a number in [0, 1); Math.random in production, a sequence in tests. */
export type RandomSource = () => number;

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy = DEFAULT_BACKOFF,
    private readonly random: RandomSource = Math.random,
  ) {}

  /** How many failures in a row this backoff has seen. */
  get failures(): number {
    return this.attempt;
  }

  /** The delay before the next try, in ms; each call counts one more failure. */
  next(): number {
    const { initialMs, maxMs, factor, jitter } = this.policy;
    // Cap the exponent so the power never overflows to Infinity on a long outage.
    const exp = Math.min(this.attempt, 64);
    const base = Math.min(maxMs, initialMs * factor ** exp);
    this.attempt++;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.round(base * (1 - jitter * r));
  }

  /** After a success: the next failure starts again from initialMs. */
  reset(): void {
    this.attempt = 0;
  }
}

/** A field-named problem with a policy, or undefined when it is usable. */
export function checkBackoffPolicy(p: BackoffPolicy, prefix: string): { field: string; message: string } | undefined {
  if (!(p.initialMs > 0)) return { field: `${prefix}.initialMs`, message: `must be > 0, got ${p.initialMs}` };
  if (!(p.maxMs >= p.initialMs)) return { field: `${prefix}.maxMs`, message: `must be ≥ initialMs (${p.initialMs}), got ${p.maxMs}` };
  if (!(p.factor >= 1)) return { field: `${prefix}.factor`, message: `must be ≥ 1, got ${p.factor}` };
  if (!(p.jitter >= 0 && p.jitter <= 1)) return { field: `${prefix}.jitter`, message: `must be within 0..1, got ${p.jitter}` };
  return undefined;
}
