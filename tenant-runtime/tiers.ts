import { readFileSync } from 'node:fs';
import { DEFAULT_TIERS, TierSettings } from '../provisioning/tiers';

/** What the runtime needs from a tier. */
export type RuntimeTier = Pick<TierSettings, 'name' | 'connectionLimit' | 'statementTimeoutMs' | 'rateLimitPerSecond' | 'rateLimitBurst'>;

/**
 * Tier settings by name: the built-in tiers overlaid with TIERS_FILE's `tiers` (the file the
 * control plane reads; only the runtime's fields are used here). Unknown names get the default tier.
 */
export class RuntimeTiers {
  private readonly tiers: Record<string, RuntimeTier>;

  constructor(file: string | undefined, private readonly defaultTier: string, overrides: Record<string, RuntimeTier> = {}) {
    const fromFile = file ? ((JSON.parse(readFileSync(file, 'utf8')) as { tiers?: Record<string, Omit<RuntimeTier, 'name'>> }).tiers ?? {}) : {};
    this.tiers = { ...DEFAULT_TIERS };
    for (const [name, t] of Object.entries({ ...fromFile, ...overrides })) this.tiers[name] = { ...this.tiers[name], ...t, name };
    for (const [name, t] of Object.entries(this.tiers)) {
      for (const k of ['connectionLimit', 'statementTimeoutMs', 'rateLimitPerSecond', 'rateLimitBurst'] as const) {
        if (!(typeof t[k] === 'number' && t[k] > 0)) throw new Error(`tier ${name}: ${k} must be a positive number`);
      }
    }
    if (!this.tiers[defaultTier]) throw new Error(`DEFAULT_TIER ${defaultTier} is not a known tier`);
  }

  get(name: string): RuntimeTier {
    return this.tiers[name] ?? this.tiers[this.defaultTier];
  }
}
