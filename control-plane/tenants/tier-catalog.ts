import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from '../../common/logger';
import { loadTierCatalogue } from '../../provisioning/tier-catalogue';
import type { TierSettings } from '../../provisioning/tiers';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, LOGGER } from '../common/tokens';

/** Plans → tiers, from the tier catalogue (provisioning/tier-catalogue.ts), loaded once at start-up. */
@Injectable()
export class TierCatalog {
  private readonly tiers: Readonly<Record<string, TierSettings>>;
  private readonly plans: Readonly<Record<string, string>>;
  readonly defaultTier: string;

  constructor(@Inject(CONFIG) config: Pick<ControlPlaneConfig, 'TIERS_FILE' | 'DEFAULT_TIER'>, @Inject(LOGGER) private readonly logger: Logger) {
    ({ tiers: this.tiers, plans: this.plans, defaultTier: this.defaultTier } = loadTierCatalogue(config.TIERS_FILE, config.DEFAULT_TIER));
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
