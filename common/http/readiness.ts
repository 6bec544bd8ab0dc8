export type Check = () => Promise<void>;

/** Runs each dependency check with a timeout; any failure makes the service not ready. */
export async function checkReadiness(checks: Record<string, Check>, timeoutMs = 2_000): Promise<{ ok: boolean; body: { status: string; checks: Record<string, string> } }> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([check(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)))]);
        return [name, 'up'] as const;
      } catch {
        return [name, 'down'] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const ok = entries.every(([, s]) => s === 'up');
  return { ok, body: { status: ok ? 'ready' : 'not_ready', checks: Object.fromEntries(entries) } };
}

/**
 * One readiness check at a time, its result reused for `ttlMs`: a flood of unauthenticated probes
 * costs the database and Redis at most one check per interval, not one per request.
 */
export function sharedCheck<T>(run: () => Promise<T>, ttlMs = 1_000, now: () => number = Date.now): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null;
  return () => {
    if (last && now() - last.at < ttlMs) return last.value;
    const value = run();
    last = { at: now(), value };
    // A check that throws is not reused past its own settling.
    value.catch(() => (last = null));
    return value;
  };
}
