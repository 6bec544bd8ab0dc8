import { loadTierCatalogue } from '../provisioning/tier-catalogue';
import type { TierSettings } from '../provisioning/tiers';

/** What the runtime needs from a tier. */
export type RuntimeTier = Pick<TierSettings, 'name' | 'connectionLimit' | 'statementTimeoutMs' | 'rateLimitPerSecond' | 'rateLimitBurst'>;

/**
 * Tier settings by name, from the same tier catalogue the control plane reads (built-in tiers
 * overlaid with TIERS_FILE, one schema: provisioning/tier-catalogue.ts). `overrides` (tests) go on
 * top. Unknown names get the default tier.
 */
export class RuntimeTiers {
  private readonly tiers: Record<string, RuntimeTier>;

  constructor(file: string | undefined, private readonly defaultTier: string, overrides: Record<string, RuntimeTier> = {}) {
    this.tiers = { ...loadTierCatalogue(file, defaultTier).tiers };
    for (const [name, t] of Object.entries(overrides)) this.tiers[name] = { ...this.tiers[name], ...t, name };
  }

  get(name: string): RuntimeTier {
    return this.tiers[name] ?? this.tiers[this.defaultTier];
  }
}
