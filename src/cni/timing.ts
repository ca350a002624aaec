/**
 * Phase timings for measuring where an invocation's time goes:
 * SLUICE_CNI_TIMING=1 writes one line to stderr at exit,
 * "sluice-cni timing: start=31.2 ipam=0.8 veth=3.1 …" (ms; start = process
 * start to the first line of our code). Off: one property read per phase.
 * Only the Node plugin's main.ts switches it on (from its own environment):
 * the agent runs the plugin in-process for many invocations and never does.
 */
let enabled = false;
const phases: string[] = [];
let last = 0;

export function startTiming(env: Readonly<Record<string, string | undefined>>): void {
  enabled = env['SLUICE_CNI_TIMING'] === '1';
}

export function mark(phase: string): void {
  if (!enabled) return;
  const now = performance.now();
  phases.push(`${phase}=${(now - last).toFixed(1)}`);
  last = now;
}

export function timingLine(): string {
  return enabled ? `sluice-cni timing: ${phases.join(' ')}\n` : '';
}
