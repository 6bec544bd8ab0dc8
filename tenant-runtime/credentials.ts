import { LRUCache } from 'lru-cache';
import type { SecretStore, TenantSecret } from '../provisioning/secrets/secret-store';

/**
 * Tenant database passwords, fetched from the secret store and kept in this process only (never
 * in Redis, logs or responses). Keyed by secret ref and tagged with the directory revision: a new
 * revision (credentials rotated) forces a fresh read. Concurrent misses share one read.
 */
export class CredentialCache {
  private readonly lru: LRUCache<string, { revision: string; secret: TenantSecret }>;
  private readonly inflight = new Map<string, Promise<TenantSecret>>();

  constructor(private readonly store: SecretStore, max: number, ttlMs = 15 * 60_000) {
    this.lru = new LRUCache({ max, ttl: ttlMs });
  }

  get(secretRef: string, revision: string): Promise<TenantSecret> {
    const hit = this.lru.get(secretRef);
    if (hit && hit.revision === revision) return Promise.resolve(hit.secret);
    const flightKey = `${secretRef}\u0000${revision}`;
    const running = this.inflight.get(flightKey);
    if (running) return running;
    const p = this.store.get(secretRef).then(
      (secret) => {
        this.inflight.delete(flightKey);
        this.lru.set(secretRef, { revision, secret });
        return secret;
      },
      (err: unknown) => {
        this.inflight.delete(flightKey);
        throw err;
      },
    );
    this.inflight.set(flightKey, p);
    return p;
  }

  /** After the database refused the cached password. */
  forget(secretRef: string): void {
    this.lru.delete(secretRef);
  }
}
