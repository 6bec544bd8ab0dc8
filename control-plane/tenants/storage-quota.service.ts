import { Inject, Injectable } from '@nestjs/common';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from '../../common/logger';
import type { ProvisioningDriver } from '../../provisioning/provisioning-driver';
import { CLOCK, LOGGER, METRICS, PROVISIONING_DRIVER } from '../common/tokens';
import { decideStorage, StorageDecision } from './storage-quota.policy';
import { StorageSweepTarget, TenantStorageRepository } from './tenant-storage.repository';
import { TenantRepository } from './tenant.repository';
import { TierCatalog } from './tier-catalog';

const MB = 1024 * 1024;
const CAUSE = { causeType: 'system' as const, causeId: 'storage-sweep' };

export interface StorageSweepResult {
  measured: number;
  decisions: Partial<Record<StorageDecision, number>>;
  errors: number;
  skipped?: 'driver_cannot_measure';
}

/**
 * The storage sweep (issue #13 item 4): measures every live tenant's database in one driver call,
 * records the figures and, past the tier's quota, write-freezes the tenant through the driver (a
 * mechanism the tenant's own SQL cannot undo: write-freeze.ts) and warns the operator; back under
 * the quota it unfreezes. The decision is decideStorage's. Run by every worker on its tick:
 * concurrent sweeps serialise per tenant on its tenant_storage row, so the second does nothing.
 */
@Injectable()
export class StorageQuotaService {
  private readonly failures: Counter;

  constructor(
    private readonly storage: TenantStorageRepository,
    private readonly tenants: TenantRepository,
    private readonly tiers: TierCatalog,
    @Inject(PROVISIONING_DRIVER) private readonly driver: ProvisioningDriver,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly now: () => Date,
    @Inject(METRICS) registry: Registry,
  ) {
    this.failures = new Counter({ name: 'silo_storage_sweep_failures_total', help: 'Tenants whose storage freeze or unfreeze failed in a sweep', registers: [registry] });
    const counts = () => this.storage.counts().catch(() => null);
    new Gauge({
      name: 'silo_tenants_over_storage_quota', help: 'Live tenants whose last storage measurement is past their quota', registers: [registry],
      async collect() {
        const c = await counts();
        if (c) this.set(c.overQuota);
      },
    });
    new Gauge({
      name: 'silo_tenants_write_frozen', help: 'Live tenants whose writes are frozen for their storage quota', registers: [registry],
      async collect() {
        const c = await counts();
        if (c) this.set(c.frozen);
      },
    });
  }

  quotaBytes(tier: string): number {
    return this.tiers.settings(tier).storageQuotaMb * MB;
  }

  /** One pass over every live tenant. Never throws; a tenant that fails is counted and retried next time. */
  async sweep(): Promise<StorageSweepResult> {
    const result: StorageSweepResult = { measured: 0, decisions: {}, errors: 0 };
    if (!this.driver.measureStorage) return { ...result, skipped: 'driver_cannot_measure' };
    let targets: StorageSweepTarget[];
    let sizes: Map<string, number>;
    try {
      targets = await this.storage.sweepTargets();
      sizes = await this.driver.measureStorage(targets.map((t) => t.connection.database));
    } catch (err) {
      this.logger.warn({ event: 'storage.sweep_failed', error: message(err) }, 'storage sweep could not measure tenants');
      return { ...result, errors: 1 };
    }
    const measuredAt = this.now();
    for (const target of targets) {
      const used = sizes.get(target.connection.database);
      if (used === undefined) continue; // no database (the reconciler reports it)
      result.measured++;
      try {
        const decision = await this.judge(target, used, measuredAt);
        if (decision) result.decisions[decision] = (result.decisions[decision] ?? 0) + 1;
      } catch (err) {
        result.errors++;
        this.failures.inc();
        this.logger.warn({ event: 'storage.tenant_failed', tenant: target.slug, tenantId: target.tenantId, error: message(err) }, 'storage sweep failed for a tenant');
      }
    }
    return result;
  }

  /** Records one measurement and acts on it, holding the tenant's storage row meanwhile. */
  private async judge(target: StorageSweepTarget, usedBytes: number, measuredAt: Date): Promise<StorageDecision | null> {
    const quotaBytes = this.quotaBytes(target.tier);
    const log = { tenant: target.slug, tenantId: target.tenantId, usedBytes, quotaBytes };
    let failure: unknown = null;
    const decision = await this.storage.transaction(async (m) => {
      const row = await this.storage.record(target.tenantId, usedBytes, quotaBytes, measuredAt, m);
      if (!row) return null; // another sweep recorded a newer measurement
      const d = decideStorage({ usedBytes, quotaBytes, frozen: row.frozen, warned: row.warnedAt !== null });
      const detail = { usedBytes, quotaBytes, tier: target.tier };
      try {
        switch (d) {
          case StorageDecision.Freeze:
            await this.driver.setWriteFreeze(target.connection, true);
            await this.storage.update(target.tenantId, { frozen: true, frozenAt: measuredAt, warnedAt: row.warnedAt ?? measuredAt, lastError: null }, m);
            await this.tenants.audit({ tenantId: target.tenantId, action: 'storage_quota_exceeded', ...CAUSE, detail }, m);
            break;
          case StorageDecision.Unfreeze:
            await this.driver.setWriteFreeze(target.connection, false);
            await this.storage.update(target.tenantId, { frozen: false, frozenAt: null, lastError: null }, m);
            await this.tenants.audit({ tenantId: target.tenantId, action: 'storage_writes_restored', ...CAUSE, detail }, m);
            break;
          case StorageDecision.Warn:
            await this.storage.update(target.tenantId, { warnedAt: measuredAt }, m);
            await this.tenants.audit({ tenantId: target.tenantId, action: 'storage_quota_warning', ...CAUSE, detail }, m);
            break;
          case StorageDecision.Rearm:
            await this.storage.update(target.tenantId, { warnedAt: null }, m);
            break;
          case StorageDecision.None:
            break;
        }
      } catch (err) {
        failure = err;
        await this.storage.update(target.tenantId, { lastError: message(err).slice(0, 500) }, m);
      }
      return d;
    });
    if (failure) throw failure;
    if (decision === StorageDecision.Freeze) this.logger.warn({ event: 'storage.quota_exceeded', ...log }, 'tenant past its storage quota: writes frozen');
    if (decision === StorageDecision.Unfreeze) this.logger.info({ event: 'storage.writes_restored', ...log }, 'tenant back under its storage quota: writes allowed again');
    if (decision === StorageDecision.Warn) this.logger.warn({ event: 'storage.quota_warning', ...log }, 'tenant near its storage quota');
    return decision;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
