import { createHash, timingSafeEqual } from 'node:crypto';
import type { Pool } from 'pg';
import type { DirectorySigner } from '../common/directory-signer';
import type { KvStore } from '../common/kv-store';
import { ApiKeyRecord, directoryCodec, directoryKeys } from '../common/tenant-directory';
import { apiKeyPrefix } from '../control-plane/api-keys';
import { runtimeErrors } from './runtime-errors';
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

const BY_PREFIX = 'SELECT tenant_id, hash, revoked_at, expires_at FROM api_keys WHERE prefix = $1';
// Compared against when the prefix is unknown, so every refusal costs the same hash and compare.
const DUMMY_HASH = createHash('sha256').update('silo:no-such-key').digest();

/**
 * Checks `Authorization: Bearer silo_<prefix>_<secret>` for one tenant. Whatever the reason
 * (malformed, unknown, revoked, expired, or another tenant's key) the refusal is the same
 * error after the same work, so a response never tells whether a key or tenant exists.
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
        const row = (await o.control.query<{ tenant_id: string; hash: string; revoked_at: Date | null; expires_at: Date | null }>(BY_PREFIX, [prefix])).rows[0];
        return row ? { tenantId: row.tenant_id, hash: row.hash, revoked: row.revoked_at !== null, expiresAt: row.expires_at?.getTime() ?? null } : null;
      },
      onError: (err, stage) => o.onError(err, `api key ${stage}`),
    });
  }

  /** Starts the lookup early (in parallel with the directory); `verify` awaits it. */
  lookup(key: string | null): Promise<KeyRecord | null> {
    const prefix = key ? apiKeyPrefix(key) : null;
    return prefix ? this.cache.get(prefix) : Promise.resolve(null);
  }

  /** Throws API_KEY_INVALID unless `key` is a live key of `tenantId` (null: no such tenant, always refused after the same work). */
  verify(key: string | null, record: KeyRecord | null, tenantId: string | null): void {
    const given = createHash('sha256').update(key ?? '').digest();
    const expected = record && /^[0-9a-f]{64}$/.test(record.hash) ? Buffer.from(record.hash, 'hex') : DUMMY_HASH;
    const matches = timingSafeEqual(given, expected);
    const live = record !== null && !record.revoked && (record.expiresAt === null || record.expiresAt > Date.now());
    if (!(matches && live && tenantId !== null && record.tenantId === tenantId)) throw runtimeErrors.apiKeyInvalid();
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
