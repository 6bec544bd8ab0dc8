import { Inject, Injectable } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../../common/logger';
import { DEFAULT_STORAGE_QUOTA_MB, DEFAULT_TEMP_FILE_LIMIT_MB, DEFAULT_TIERS, TierSettings } from '../../provisioning/tiers';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, LOGGER } from '../common/tokens';

const tierSchema = z.object({
  minAcu: z.number().min(0.5), maxAcu: z.number().max(256), instanceCount: z.number().int().min(1).max(15),
  backupRetentionDays: z.number().int().min(1).max(35), deletionProtection: z.boolean(),
  connectionLimit: z.number().int().min(1), statementTimeoutMs: z.number().int().min(100),
  // temp_file_limit is an int in kB on the server: at most 2^31-1 kB. No "unlimited" on purpose.
  tempFileLimitMb: z.number().int().min(1).max(2_097_151).default(DEFAULT_TEMP_FILE_LIMIT_MB),
  storageQuotaMb: z.number().int().min(1).default(DEFAULT_STORAGE_QUOTA_MB),
  rateLimitPerSecond: z.number().positive(), rateLimitBurst: z.number().positive(),
});
const fileSchema = z.object({
  tiers: z.record(z.string(), tierSchema).optional(),
  /** Stripe price id or lookup_key → tier name. */
  plans: z.record(z.string(), z.string()).default({}),
});

/** Plans → tiers, from TIERS_FILE (JSON) over the built-in tiers. Parsed once at start-up. */
@Injectable()
export class TierCatalog {
  private readonly tiers: Record<string, TierSettings>;
  private readonly plans: Record<string, string>;
  readonly defaultTier: string;

  constructor(@Inject(CONFIG) config: Pick<ControlPlaneConfig, 'TIERS_FILE' | 'DEFAULT_TIER'>, @Inject(LOGGER) private readonly logger: Logger) {
    const file = config.TIERS_FILE ? fileSchema.parse(JSON.parse(readFileSync(config.TIERS_FILE, 'utf8'))) : { plans: {} };
    this.tiers = { ...DEFAULT_TIERS, ...Object.fromEntries(Object.entries(file.tiers ?? {}).map(([name, t]) => [name, { ...t, name }])) };
    this.plans = file.plans;
    for (const [plan, tier] of Object.entries(this.plans)) if (!this.tiers[tier]) throw new Error(`TIERS_FILE: plan ${plan} maps to unknown tier ${tier}`);
    if (!this.tiers[config.DEFAULT_TIER]) throw new Error(`DEFAULT_TIER ${config.DEFAULT_TIER} is not a known tier (${Object.keys(this.tiers).join(', ')})`);
    this.defaultTier = config.DEFAULT_TIER;
  }

  names(): string[] {
    return Object.keys(this.tiers);
  }

  settings(name: string): TierSettings {
    return this.tiers[name] ?? this.tiers[this.defaultTier];
  }

  resolveTierName(name: string | null | undefined): string {
    return name && this.tiers[name] ? name : this.defaultTier;
  }

  /** The tier a Stripe price buys; unknown prices get the default tier and a warning. */
  tierForPrice(priceId: string | null | undefined, lookupKey: string | null | undefined): string {
    const byKey = (lookupKey && this.plans[lookupKey]) || (priceId && this.plans[priceId]);
    if (byKey) return byKey;
    if (lookupKey && this.tiers[lookupKey]) return lookupKey;
    this.logger.warn({ priceId, lookupKey, tier: this.defaultTier }, 'unknown Stripe price: using the default tier');
    return this.defaultTier;
  }
}
