/** What a billing tier buys: drives the tenant stack, the local role and the runtime. */
export interface TierSettings {
  name: string;
  /** Aurora Serverless v2 capacity range. */
  minAcu: number;
  maxAcu: number;
  /** Aurora instances (writer + readers). */
  instanceCount: number;
  /** Point-in-time recovery window. */
  backupRetentionDays: number;
  deletionProtection: boolean;
  /** Max connections for the tenant's role, and the runtime pool ceiling per replica. */
  connectionLimit: number;
  /**
   * Set on the tenant's role. A default only: PostgreSQL lets any role change statement_timeout
   * for its own sessions, so the runtime enforces this itself as well.
   */
  statementTimeoutMs: number;
  /**
   * Cap on temporary file space per session of the tenant's role (`temp_file_limit`, MB). Set by
   * the superuser on the role: the parameter is superuser-only, so the tenant's SQL cannot lift it.
   */
  tempFileLimitMb: number;
  /**
   * Storage quota (MB) of the tenant's database, measured on a schedule (pg_database_size). Past
   * it, writes by the tenant's SQL are refused until usage is back under (storage-quota.service.ts).
   */
  storageQuotaMb: number;
  /** Runtime token bucket: sustained requests/s and burst. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
}

/** Storage quota for a tier defined in TIERS_FILE without `storageQuotaMb`. */
export const DEFAULT_STORAGE_QUOTA_MB = 10_240;

/** temp_file_limit for a tier defined in TIERS_FILE without `tempFileLimitMb`. */
export const DEFAULT_TEMP_FILE_LIMIT_MB = 1_024;

export const DEFAULT_TIERS: Record<string, TierSettings> = {
  starter: {
    name: 'starter', minAcu: 0.5, maxAcu: 2, instanceCount: 1, backupRetentionDays: 7,
    deletionProtection: false, connectionLimit: 10, statementTimeoutMs: 5_000, tempFileLimitMb: 1_024, storageQuotaMb: 10_240,
    rateLimitPerSecond: 200, rateLimitBurst: 400,
  },
  pro: {
    name: 'pro', minAcu: 1, maxAcu: 8, instanceCount: 2, backupRetentionDays: 14,
    deletionProtection: true, connectionLimit: 25, statementTimeoutMs: 15_000, tempFileLimitMb: 8_192, storageQuotaMb: 102_400,
    rateLimitPerSecond: 1_000, rateLimitBurst: 2_000,
  },
  enterprise: {
    name: 'enterprise', minAcu: 2, maxAcu: 64, instanceCount: 3, backupRetentionDays: 35,
    deletionProtection: true, connectionLimit: 50, statementTimeoutMs: 30_000, tempFileLimitMb: 32_768, storageQuotaMb: 1_048_576,
    rateLimitPerSecond: 5_000, rateLimitBurst: 10_000,
  },
};
