/**
 * Reports object problems from each snapshot without repeating itself: a
 * problem is logged when it appears or its message changes, and once more
 * when it is resolved, not on every recompile. The current set is exported
 * as a gauge per object (so a dashboard names the bad policy) and counted.
 */
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import type { ObjectProblem } from './snapshot.js';

function problemKey(p: ObjectProblem): string {
  return `${p.kind}\u0000${p.name}\u0000${p.severity}`;
}

export class ProblemReporter {
  private current = new Map<string, ObjectProblem>();

  constructor(
    private readonly log: Logger,
    private readonly metrics: AgentMetrics,
  ) {}

  /** The problems of the latest snapshot. */
  list(): ObjectProblem[] {
    return [...this.current.values()];
  }

  report(problems: readonly ObjectProblem[]): void {
    const next = new Map<string, ObjectProblem>();
    for (const p of problems) {
      const key = problemKey(p);
      const prev = next.get(key);
      // Two problems of one object and severity are reported as one line.
      next.set(key, prev === undefined ? p : { ...p, message: `${prev.message}; ${p.message}` });
    }
    for (const [key, p] of next) {
      const old = this.current.get(key);
      if (old !== undefined && old.message === p.message) continue;
      const fields = { object: `${p.kind} ${p.name}`, kind: p.kind, name: p.name, problem: p.message };
      const line = `${p.kind} ${p.name}: ${p.message}`;
      if (p.severity === 'error') this.log.error(fields, line);
      else this.log.warn(fields, line);
      if (old === undefined) this.metrics.objectProblemsTotal.inc({ kind: p.kind, severity: p.severity });
    }
    for (const [key, p] of this.current) {
      if (!next.has(key)) this.log.info({ object: `${p.kind} ${p.name}`, kind: p.kind, name: p.name }, `${p.kind} ${p.name}: problem resolved`);
    }
    this.current = next;
    this.metrics.objectProblems.reset();
    for (const p of next.values()) this.metrics.objectProblems.set({ kind: p.kind, object: p.name, severity: p.severity }, 1);
  }
}
