/**
 * At most one log line per `everyMs` for a noisy condition (an outage, overload). `take()` returns
 * how many lines were skipped since the last one when this one may be written, or null when not.
 */
export function logThrottle(everyMs: number): { take: () => number | null } {
  let last = 0;
  let skipped = 0;
  return {
    take: () => {
      const now = Date.now();
      if (now - last < everyMs) {
        skipped++;
        return null;
      }
      last = now;
      const n = skipped;
      skipped = 0;
      return n;
    },
  };
}
