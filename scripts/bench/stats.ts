/** Percentile helpers shared by the benchmarks (nearest-rank on a sorted copy). */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summary(values: number[]): { n: number; p50: number; p95: number; p99: number; mean: number } {
  const mean = values.reduce((a, b) => a + b, 0) / (values.length || 1);
  return { n: values.length, p50: percentile(values, 50), p95: percentile(values, 95), p99: percentile(values, 99), mean };
}

export const ms = (v: number) => `${v.toFixed(1)} ms`;
