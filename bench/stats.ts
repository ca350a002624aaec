/** The benches' latency summaries. */

/** The q-quantile of xs (nearest rank); NaN for none. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

/** One table row: label, then p50, p99 and max in ms with one decimal. */
export function latencyRow(label: string, xs: readonly number[], labelWidth = 34): string {
  return `${label.padEnd(labelWidth)} ${quantile(xs, 0.5).toFixed(1).padStart(8)} ${quantile(xs, 0.99).toFixed(1).padStart(8)} ${Math.max(...xs).toFixed(1).padStart(8)}`;
}
