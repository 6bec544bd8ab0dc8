import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager, In, IsNull, Not } from 'typeorm';
import { revokeAllApiKeys } from '../../common/control-db/api-key-queries';
import { SchemaMirrorRepository } from '../../migrations/schema-mirror.repository';
import { DATA_SOURCE } from '../common/tokens';
import { changedColumns, hydrate, insertableColumns, remember } from '../db/entity-rows';
import { pipelinedTxOf, send, write } from '../db/pipelined-transaction';
import type { AuditEntry } from './audit-entry.entity';
import { appendAudit, AuditInput, auditHistory } from './audit-log.repository';
import { TenantConnection } from './tenant-connection.entity';
import type { TenantSchemaVersion } from './tenant-schema-version.entity';
import { FailedDuring, OFFBOARDABLE_BY_SWEEP, TenantStatus } from './tenant-status';
import { Tenant } from './tenant.entity';

/**
 * The control plane's half of the tenant aggregate's owner (`tenants`, `tenant_connections`): its
 * writes and reads, pipelined ones included; the reads other deployables need are in
 * `common/control-db/tenant-queries.ts`. Methods take an EntityManager to join a caller's
 * transaction. Audit rows, API keys and schema mirrors go through their own owners.
 */
@Injectable()
export class TenantRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  transaction<T>(fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction(fn);
  }

  /** `lock`: true for FOR UPDATE (to change it), 'share' for FOR SHARE (to keep it unchanged meanwhile). */
  findById(id: string, m: EntityManager = this.ds.manager, lock: boolean | 'share' = false): Promise<Tenant | null> {
    const qb = m.getRepository(Tenant).createQueryBuilder('t').where('t.id = :id', { id });
    if (lock) qb.setLock(lock === 'share' ? 'pessimistic_read' : 'pessimistic_write');
    return qb.getOne().then((t) => t && remember(m, Tenant, t));
  }

  /** The live tenant with this slug, else the newest deleted one (deleted tenants free their slug). */
  findBySlug(slug: string, m: EntityManager = this.ds.manager): Promise<Tenant | null> {
    return m.getRepository(Tenant).createQueryBuilder('t').where('t.slug = :slug', { slug })
      .orderBy(`(t.status = 'deleted')`, 'ASC').addOrderBy('t.created_at', 'DESC').getOne();
  }

  findBySubscription(subscriptionId: string, m: EntityManager = this.ds.manager, lock = false): Promise<Tenant | null> {
    const qb = m.getRepository(Tenant).createQueryBuilder('t').where('t.stripe_subscription_id = :s', { s: subscriptionId });
    if (lock) qb.setLock('pessimistic_write');
    return qb.getOne().then((t) => t && remember(m, Tenant, t));
  }

  /**
   * The subscription's tenant, row-locked, and its connection, as two statements sent at once (in a
   * pipelined transaction they share the round trip of whatever was sent before them, e.g. the
   * event insert that takes the subscription lock; each runs after it, with a fresh snapshot).
   */
  findBySubscriptionForUpdate(subscriptionId: string, m: EntityManager): Promise<{ tenant: Tenant | null; connection: TenantConnection | null }> {
    const tenant = send(m, 'SELECT * FROM tenants WHERE stripe_subscription_id = $1 FOR UPDATE', [subscriptionId]);
    const connection = send(m, 'SELECT c.* FROM tenant_connections c JOIN tenants t ON t.id = c.tenant_id WHERE t.stripe_subscription_id = $1', [subscriptionId]);
    return Promise.all([tenant, connection]).then(([t, c]) => ({
      tenant: t[0] ? hydrate(m, Tenant, t[0]) : null,
      connection: c[0] ? hydrate(m, TenantConnection, c[0]) : null,
    }));
  }

  /** Tenants billed through a Stripe subscription, deleted ones included (the billing reconciler compares them with Stripe). */
  withSubscription(): Promise<Tenant[]> {
    return this.ds.getRepository(Tenant).find({ where: { stripeSubscriptionId: Not(IsNull()) }, order: { createdAt: 'ASC', id: 'ASC' } });
  }

  async slugExists(slug: string, m: EntityManager = this.ds.manager): Promise<boolean> {
    return (await m.getRepository(Tenant).count({ where: { slug, status: Not(TenantStatus.Deleted) } })) > 0;
  }

  async list(filter: { status?: TenantStatus[]; tier?: string; limit: number; offset: number }): Promise<{ items: Tenant[]; total: number }> {
    const where = { ...(filter.status?.length ? { status: In(filter.status) } : {}), ...(filter.tier ? { tier: filter.tier } : {}) };
    const [items, total] = await this.ds.getRepository(Tenant).findAndCount({ where, order: { createdAt: 'ASC', id: 'ASC' }, take: filter.limit, skip: filter.offset });
    return { items, total };
  }

  /**
   * Inserts; returns the row as stored (defaults filled in), or null (nothing written) when the slug
   * or subscription id already exists.
   */
  async insert(tenant: Tenant, m: EntityManager): Promise<Tenant | null> {
    // Plain SQL from the entity's columns: TypeORM's insert builder was a tenth of a webhook's CPU.
    const values = insertableColumns(m, Tenant, tenant);
    const rows = await send(
      m,
      `INSERT INTO tenants (${values.map((v) => `"${v.column.databaseName}"`).join(', ')}) VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING RETURNING *`,
      values.map((v) => v.value),
    );
    return rows[0] ? hydrate(m, Tenant, rows[0]) : null;
  }

  /**
   * Writes the columns changed since the tenant was loaded, in one UPDATE (none: no statement), the
   * version bumped; deferred inside a pipelined transaction. A tenant not loaded by this repository
   * goes through TypeORM's save.
   */
  async save(tenant: Tenant, m: EntityManager): Promise<Tenant> {
    const changes = changedColumns(m, Tenant, tenant);
    if (!changes) return m.getRepository(Tenant).save(tenant);
    if (!changes.length) return tenant;
    const sets = changes.map((c, i) => `"${c.column.databaseName}" = $${i + 1}`).join(', ');
    remember(m, Tenant, tenant);
    // In a pipelined transaction the UPDATE is held until the next statement; its callers hold the row
    // (read FOR UPDATE or inserted it), so the version it will return is known now.
    if (pipelinedTxOf(m)) tenant.version += 1;
    await write(m, `UPDATE tenants SET ${sets}, version = version + 1, updated_at = now() WHERE id = $${changes.length + 1} RETURNING version, updated_at`, [...changes.map((c) => c.value), tenant.id], (rows) => {
      if (!rows[0]) return;
      tenant.version = Number(rows[0].version);
      tenant.updatedAt = rows[0].updated_at as Date;
    });
    return tenant;
  }

  /** Tenants whose offboarding is due and may start (sweepMayOffboard: never one whose offboarding failed). */
  async dueForOffboarding(now: Date, limit = 50): Promise<Tenant[]> {
    return this.ds.getRepository(Tenant).createQueryBuilder('t')
      .where('t.offboard_at <= :now', { now }).andWhere('t.status IN (:...s)', { s: OFFBOARDABLE_BY_SWEEP })
      .andWhere('NOT (t.status = :failed AND t.failed_during IS NOT DISTINCT FROM :offboarding)', { failed: TenantStatus.Failed, offboarding: FailedDuring.Offboarding })
      .orderBy('t.offboard_at').limit(limit).getMany();
  }

  async dueForGraceSuspension(cutoff: Date, limit = 50): Promise<Tenant[]> {
    return this.ds.getRepository(Tenant).createQueryBuilder('t')
      .where('t.past_due_since <= :cutoff', { cutoff }).andWhere('t.status IN (:...s)', { s: [TenantStatus.Active, TenantStatus.Provisioning, TenantStatus.Pending] })
      .andWhere('t.billing_status IN (:...b)', { b: ['past_due', 'unpaid'] })
      .limit(limit).getMany();
  }

  findConnection(tenantId: string, m: EntityManager = this.ds.manager): Promise<TenantConnection | null> {
    return m.getRepository(TenantConnection).findOne({ where: { tenantId } });
  }

  async upsertConnection(conn: Omit<TenantConnection, 'createdAt' | 'rotatedAt'>, m: EntityManager): Promise<void> {
    await m.createQueryBuilder().insert().into(TenantConnection).values(conn)
      .orUpdate(['driver', 'host', 'port', 'database', 'username', 'secret_ref'], ['tenant_id']).execute();
  }

  async markRotated(tenantId: string, m: EntityManager = this.ds.manager): Promise<void> {
    await m.getRepository(TenantConnection).update({ tenantId }, { rotatedAt: new Date() });
  }

  async deleteConnection(tenantId: string, m: EntityManager): Promise<void> {
    await m.getRepository(TenantConnection).delete({ tenantId });
  }

  /** Through the `api_keys` owner, in the caller's transaction. */
  async revokeAllApiKeys(tenantId: string, m: EntityManager): Promise<void> {
    await revokeAllApiKeys(m, tenantId);
  }

  /** The tenant's schema mirror, from its owner (`migrations/schema-mirror.repository.ts`). */
  async findSchemaVersion(tenantId: string): Promise<TenantSchemaVersion | null> {
    const mirror = await new SchemaMirrorRepository(this.ds).find(tenantId);
    return mirror && { tenantId, version: mirror.version, appliedCount: mirror.appliedCount, lastError: mirror.lastError, drift: mirror.drift, ledgerDigest: mirror.digest, updatedAt: mirror.updatedAt };
  }

  /** Records that `version` is what the directory holds (deferred inside a pipelined transaction). */
  async markPublished(id: string, version: number, m: EntityManager): Promise<void> {
    await write(m, 'UPDATE tenants SET published_version = $2 WHERE id = $1', [id, version]);
  }

  /** Tenants changed more than `graceSeconds` ago whose current version never reached the directory, oldest first. */
  async unpublished(graceSeconds: number, limit: number): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.ds.query(
      `SELECT id FROM tenants WHERE published_version IS DISTINCT FROM version AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2`,
      [graceSeconds, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Through the `audit_log` owner; deferred inside a pipelined transaction, as before. */
  async audit(entry: AuditInput, m: EntityManager = this.ds.manager): Promise<void> {
    await appendAudit(m, entry);
  }

  history(tenantId: string, limit: number, beforeId?: string): Promise<AuditEntry[]> {
    return auditHistory(this.ds.manager, tenantId, limit, beforeId);
  }
}
