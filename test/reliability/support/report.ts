import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Figures a scenario measured (requests, faults injected, errors, data lost), written as JSON for
 * the figures reporter and docs/reliability.md. Written as soon as they are known, so a failed
 * assertion still leaves the numbers that explain it.
 */
export function recordFigures(scenario: string, figures: Record<string, unknown>): void {
  const dir = process.env.SILO_RELIABILITY_REPORT_DIR || join(tmpdir(), 'silo-reliability-last');
  mkdirSync(dir, { recursive: true });
  const file = scenario.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  writeFileSync(join(dir, `${file}.json`), JSON.stringify({ scenario, figures, at: new Date().toISOString() }, null, 2));
}

/** Deterministic pseudo-random numbers (mulberry32), so a failing run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The seed of this run: RELIABILITY_SEED, or a fresh one (printed in the figures). */
export function runSeed(): number {
  const fromEnv = Number(process.env.RELIABILITY_SEED);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : Math.floor(Math.random() * 2 ** 31);
}

export function shuffle<T>(items: readonly T[], rnd: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (!samples.length) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
