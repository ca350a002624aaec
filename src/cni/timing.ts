/**
 * Phase timings for measuring where an invocation's time goes:
 * SLUICE_CNI_TIMING=1 writes one line to stderr at exit,
 * "sluice-cni timing: start=31.2 ipam=0.8 veth=3.1 …" (ms; start = process
 * start to the first line of our code). Off: one property read per phase.
 */
const enabled = process.env['SLUICE_CNI_TIMING'] === '1';
const phases: string[] = [];
let last = 0;

export function mark(phase: string): void {
  if (!enabled) return;
  const now = performance.now();
  phases.push(`${phase}=${(now - last).toFixed(1)}`);
  last = now;
}

export function timingLine(): string {
  return enabled ? `sluice-cni timing: ${phases.join(' ')}\n` : '';
}
