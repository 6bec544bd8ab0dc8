import { createHash, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import type { DirectorySigner } from '../common/directory-signer';
import type { KvStore } from '../common/kv-store';
import { ApiKeyRecord, directoryCodec, directoryKeys } from '../common/tenant-directory';
import { apiKeyPrefix } from '../common/api-key-format';
import { findApiKeyByPrefix } from '../common/control-db/api-key-queries';
import { CacheSource, TieredCache } from './tiered-cache';

type KeyRecord = ApiKeyRecord;

export interface ApiKeyVerifierOptions {
  control: Pool;
  kv: KvStore;
  /** Verifies key records read from the KvStore (a forged or unsigned one is a miss) and signs write-throughs. */
  signer: DirectorySigner;
  cacheSize: number;
  freshMs: () => number;
  negativeMs: number;
  staleIfErrorMs: number;
  onSource?: (source: CacheSource) => void;
  onError: (err: unknown, stage: string) => void;
}

// Compared against when the prefix is unknown, so every refusal costs the same hash and compare.
const DUMMY_HASH = createHash('sha256').update('silo:no-such-key').digest();

/**
 * Checks `Authorization: Bearer silo_<prefix>_<secret>` and says which tenant it belongs to. The
 * caller then compares that tenant with the one the request names, so a refusal (whatever the
 * reason) is the same answer after work that does not depend on whether the named tenant exists.
 */
export class ApiKeyVerifier {
  private readonly cache: TieredCache<KeyRecord>;

  constructor(o: ApiKeyVerifierOptions) {
    this.cache = new TieredCache<KeyRecord>({
      max: o.cacheSize, freshMs: o.freshMs, negativeMs: o.negativeMs, staleIfErrorMs: o.staleIfErrorMs,
      kv: o.kv, kvKey: directoryKeys.apiKey, kvTtlSeconds: 300, onSource: o.onSource,
      encode: (r, prefix) => directoryCodec.encodeApiKey(o.signer, prefix, r),
      decode: (raw, prefix) => directoryCodec.decodeApiKey(o.signer, prefix, raw),
      load: async (prefix) => {
        const row = await findApiKeyByPrefix(o.control, prefix);
        return row ? { tenantId: row.tenant_id, hash: row.hash, revoked: row.revoked_at !== null, expiresAt: row.expires_at?.getTime() ?? null } : null;
      },
      onError: (err, stage) => o.onError(err, `api key ${stage}`),
    });
  }

  /**
   * The tenant id of a live key, or null: malformed, unknown, revoked or expired, all refused after
   * the same hash and compare (a missing key is compared against a dummy hash). Nothing here
   * depends on the tenant a request names. Throws only when no source can answer (an outage).
   */
  async owner(key: string | null): Promise<string | null> {
    const prefix = key ? apiKeyPrefix(key) : null;
    const record = prefix ? await this.cache.get(prefix) : null;
    const given = createHash('sha256').update(key ?? '').digest();
    const expected = record && /^[0-9a-f]{64}$/.test(record.hash) ? Buffer.from(record.hash, 'hex') : DUMMY_HASH;
    const matches = timingSafeEqual(given, expected);
    const live = record !== null && !record.revoked && (record.expiresAt === null || record.expiresAt > Date.now());
    return matches && live ? record.tenantId : null;
  }

  invalidate(prefix: string): void {
    this.cache.invalidate(prefix);
  }

  clear(): void {
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }
}

/** The bearer token of an Authorization header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header || header.length > 512) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}
