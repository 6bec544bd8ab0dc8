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
  statementTimeoutMs: number;
  /** Runtime token bucket: sustained requests/s and burst. */
  rateLimitPerSecond: number;
  rateLimitBurst: number;
}

export const DEFAULT_TIERS: Record<string, TierSettings> = {
  starter: {
    name: 'starter', minAcu: 0.5, maxAcu: 2, instanceCount: 1, backupRetentionDays: 7,
    deletionProtection: false, connectionLimit: 10, statementTimeoutMs: 5_000,
    rateLimitPerSecond: 200, rateLimitBurst: 400,
  },
  pro: {
    name: 'pro', minAcu: 1, maxAcu: 8, instanceCount: 2, backupRetentionDays: 14,
    deletionProtection: true, connectionLimit: 25, statementTimeoutMs: 15_000,
    rateLimitPerSecond: 1_000, rateLimitBurst: 2_000,
  },
  enterprise: {
    name: 'enterprise', minAcu: 2, maxAcu: 64, instanceCount: 3, backupRetentionDays: 35,
    deletionProtection: true, connectionLimit: 50, statementTimeoutMs: 30_000,
    rateLimitPerSecond: 5_000, rateLimitBurst: 10_000,
  },
};
