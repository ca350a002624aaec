/**
 * Time as a dependency: informers, backoff and the sync loop take a Clock so
 * that tests drive timers deterministically instead of sleeping.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since an arbitrary origin; only differences matter. */
  now(): number;
  /** Runs fn once after ms; cancel() before it fires prevents it. */
  setTimer(ms: number, fn: () => void): TimerHandle;
}

/** The process clock: performance.now() and unref'd timers (a pending retry never keeps the process alive). */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolves after ms on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimer(ms, resolve);
  });
}
