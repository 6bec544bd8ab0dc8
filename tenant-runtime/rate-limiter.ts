import { LRUCache } from 'lru-cache';

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token bucket per tenant, per replica (the tier's rate is per replica: N replicas allow N× the
 * rate). Bounded: a bucket evicted from the LRU comes back full, which only ever errs on allowing.
 */
export class RateLimiter {
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(max: number, private readonly now: () => number = Date.now) {
    this.buckets = new LRUCache({ max });
  }

  /** 0 when allowed (a token is taken), else the seconds until one is available. */
  take(tenantId: string, perSecond: number, burst: number): number {
    const now = this.now();
    let b = this.buckets.get(tenantId);
    if (!b) {
      b = { tokens: burst, at: now };
      this.buckets.set(tenantId, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perSecond));
  }
}
