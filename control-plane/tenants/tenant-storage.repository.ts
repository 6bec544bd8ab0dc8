import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { listConnectedTenants, tenantIdsWithStatus } from '../../common/control-db/tenant-queries';
import { DATA_SOURCE } from '../common/tokens';
import { TenantStatus } from './tenant-status';
import { TenantStorage } from './tenant-storage.entity';

/** A live tenant the storage sweep measures: where its database is, and what was last recorded. */
export interface StorageSweepTarget {
  tenantId: string;
  slug: string;
  tier: string;
  connection: { host: string; port: number; database: string; username: string; secretRef: string };
}

const SWEPT = [TenantStatus.Active, TenantStatus.Suspended];

/** The only code touching tenant_storage (owned by the tenants module). Tenants come from `common/control-db/tenant-queries.ts`. */
@Injectable()
export class TenantStorageRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  transaction<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction(fn);
  }

  find(tenantId: string): Promise<TenantStorage | null> {
    return this.ds.getRepository(TenantStorage).findOne({ where: { tenantId } });
  }

  /** Active and suspended tenants with a database. */
  async sweepTargets(): Promise<StorageSweepTarget[]> {
    const rows = await listConnectedTenants(this.ds, SWEPT);
    return rows.map((r) => ({ tenantId: r.id, slug: r.slug, tier: r.tier, connection: { host: r.host, port: r.port, database: r.database, username: r.username, secretRef: r.secret_ref } }));
  }

  /**
   * Records a measurement and row-locks it for the caller's transaction (another worker sweeping at
   * the same time waits, then sees what this one did). Null when a newer measurement is already
   * recorded: the caller's is stale and must not be acted on.
   */
  async record(tenantId: string, usedBytes: number, quotaBytes: number, measuredAt: Date, m: EntityManager): Promise<TenantStorage | null> {
    const rows: Array<{ tenant_id: string }> = await m.query(
      `INSERT INTO tenant_storage AS s (tenant_id, used_bytes, quota_bytes, measured_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id) DO UPDATE SET used_bytes = EXCLUDED.used_bytes, quota_bytes = EXCLUDED.quota_bytes, measured_at = EXCLUDED.measured_at
         WHERE s.measured_at <= EXCLUDED.measured_at
       RETURNING s.tenant_id`, [tenantId, usedBytes, quotaBytes, measuredAt]);
    if (!rows.length) return null;
    return m.getRepository(TenantStorage).findOne({ where: { tenantId } });
  }

  async update(tenantId: string, patch: Partial<Pick<TenantStorage, 'frozen' | 'frozenAt' | 'warnedAt' | 'lastError'>>, m: EntityManager): Promise<void> {
    await m.getRepository(TenantStorage).update({ tenantId }, patch);
  }

  /**
   * For the metrics: live tenants whose last measurement is past their quota, and those
   * write-frozen. The rows that count are few; which of them are live the tenants' owner says.
   */
  async counts(): Promise<{ overQuota: number; frozen: number }> {
    const flagged: Array<{ tenant_id: string; over: boolean; frozen: boolean }> = await this.ds.query(
      `SELECT tenant_id, used_bytes > quota_bytes AS over, frozen FROM tenant_storage WHERE used_bytes > quota_bytes OR frozen`);
    const live = await tenantIdsWithStatus(this.ds, flagged.map((r) => r.tenant_id), SWEPT);
    const counted = flagged.filter((r) => live.has(r.tenant_id));
    return { overQuota: counted.filter((r) => r.over).length, frozen: counted.filter((r) => r.frozen).length };
  }
}
