import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, IsNull } from 'typeorm';
import { findTenant, TenantRefRow } from '../../common/control-db/tenant-queries';
import { DATA_SOURCE } from '../common/tokens';
import { appendAudit } from '../tenants/audit-log.repository';
import { ApiKey } from './api-key.entity';

/**
 * The control plane's half of the `api_keys` owner: key management through the `ApiKey` entity.
 * The plain-SQL half (the runtime's lookup, revoking a tenant's keys) is
 * `common/control-db/api-key-queries.ts`; tenants and audit rows come from their owners.
 */
@Injectable()
export class ApiKeyRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  transaction<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction(fn);
  }

  /** By id, else the slug's live tenant, else its most recently deleted one. */
  findTenant(ref: { id?: string; slug?: string }): Promise<Pick<TenantRefRow, 'id' | 'slug' | 'status'> | null> {
    return findTenant(this.ds, ref.id ?? ref.slug ?? '');
  }

  list(tenantId: string): Promise<ApiKey[]> {
    return this.ds.getRepository(ApiKey).find({ where: { tenantId }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  /** Locked, so a rotate and a revoke of the same key serialise. */
  findForUpdate(tenantId: string, id: string, m: EntityManager): Promise<ApiKey | null> {
    return m.getRepository(ApiKey).createQueryBuilder('k').where('k.id = :id AND k.tenant_id = :tenantId', { id, tenantId }).setLock('pessimistic_write').getOne();
  }

  countActive(tenantId: string, now: Date, m: EntityManager = this.ds.manager): Promise<number> {
    return m.getRepository(ApiKey).createQueryBuilder('k')
      .where('k.tenant_id = :tenantId AND k.revoked_at IS NULL', { tenantId })
      .andWhere('(k.expires_at IS NULL OR k.expires_at > :now)', { now })
      .getCount();
  }

  async insert(key: Omit<ApiKey, 'createdAt' | 'lastUsedAt' | 'revokedAt'>, m: EntityManager = this.ds.manager): Promise<ApiKey> {
    await m.getRepository(ApiKey).insert(key);
    return (await m.getRepository(ApiKey).findOneByOrFail({ id: key.id }));
  }

  async revoke(id: string, at: Date, m: EntityManager): Promise<void> {
    await m.getRepository(ApiKey).update({ id, revokedAt: IsNull() }, { revokedAt: at });
  }

  async expire(id: string, at: Date, m: EntityManager): Promise<void> {
    await m.getRepository(ApiKey).update({ id }, { expiresAt: at });
  }

  async audit(tenantId: string, action: string, detail: Record<string, unknown>, m: EntityManager = this.ds.manager): Promise<void> {
    await appendAudit(m, { tenantId, action, causeType: 'admin', causeId: 'admin-token', detail });
  }
}
