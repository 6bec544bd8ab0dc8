import { httpCall, HttpResult } from '../../support/http-call';
import { percentile, round } from './report';

export { httpCall, type HttpResult };

/** One finished request of a load run. */
export interface Sample {
  /** ms since the run started, at the request's start. */
  at: number;
  ms: number;
  tenant: number;
  op: string;
  status: number;
  code: string | null;
}

export interface LoadRun {
  samples: Sample[];
  durationMs: number;
}

/**
 * Closed-loop load: `clients` loops, each picking a tenant and an operation, awaiting it, and
 * going again until `durationMs` has passed (or `stop()` is called). Bounded by time, never by luck.
 */
export async function runLoad(o: {
  clients: number;
  durationMs: number;
  /** One request: returns the tenant index it addressed, the op name and the result. */
  step: (client: number) => Promise<{ tenant: number; op: string; result: HttpResult }>;
  signal?: { stopped: boolean };
  thinkMs?: () => number;
  /**
   * Each client thinks before its first request too, so the run starts the way a steady closed loop
   * looks at any instant (clients at random points of their cycle) instead of every client firing
   * at the same millisecond.
   */
  staggered?: boolean;
}): Promise<LoadRun> {
  const samples: Sample[] = [];
  const started = performance.now();
  const deadline = started + o.durationMs;
  await Promise.all(Array.from({ length: o.clients }, async (_, client) => {
    const first = o.staggered ? o.thinkMs?.() ?? 0 : 0;
    if (first > 0) await new Promise((r) => setTimeout(r, first));
    while (performance.now() < deadline && !o.signal?.stopped) {
      const t0 = performance.now();
      const { tenant, op, result } = await o.step(client);
      const t1 = performance.now();
      samples.push({ at: t0 - started, ms: t1 - t0, tenant, op, status: result.status, code: result.code });
      const think = o.thinkMs?.() ?? 0;
      if (think > 0) await new Promise((r) => setTimeout(r, think));
    }
  }));
  return { samples, durationMs: performance.now() - started };
}

export function summarize(samples: readonly Sample[], durationMs: number): {
  requests: number; errors: number; errorRate: number; rps: number; p50: number; p95: number; p99: number; max: number; byCode: Record<string, number>;
} {
  const errors = samples.filter((s) => s.code !== null);
  const byCode: Record<string, number> = {};
  for (const e of errors) byCode[e.code as string] = (byCode[e.code as string] ?? 0) + 1;
  const ms = samples.map((s) => s.ms);
  return {
    requests: samples.length,
    errors: errors.length,
    errorRate: samples.length ? round((errors.length / samples.length) * 100, 3) : 0,
    rps: round(samples.length / (durationMs / 1000), 0),
    p50: round(percentile(ms, 50)),
    p95: round(percentile(ms, 95)),
    p99: round(percentile(ms, 99)),
    max: round(ms.reduce((m, v) => (v > m ? v : m), 0)),
    byCode,
  };
}
