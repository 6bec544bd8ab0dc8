import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { revokeAllApiKeys } from '../common/control-db/api-key-queries';
import { queryRows } from '../common/control-db/queryable';
import { findTenant } from '../common/control-db/tenant-queries';
import { ApiKeyRepository } from '../control-plane/api-keys/api-key.repository';
import { CONTROL_DB_ENTITIES } from '../control-plane/db/data-source';
import { TenantStorageRepository } from '../control-plane/tenants/tenant-storage.repository';
import { TenantRepository } from '../control-plane/tenants/tenant.repository';
import { SchemaMirrorRepository } from '../migrations/schema-mirror.repository';
import { createTestDatabase, TestDatabase } from './support/test-db';

/** The plain-SQL table owners (common/control-db/) and the repositories that now go through them, on a real control database. */
describe('control-database owners', () => {
  let db: TestDatabase;
  let pool: Pool;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDatabase('owners');
    pool = new Pool({ connectionString: db.url, max: 2 });
    ds = new DataSource({ type: 'postgres', url: db.url, entities: CONTROL_DB_ENTITIES, logging: false });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await pool?.end();
    await db?.drop();
  });

  const tenant = async (slug: string, status = 'active', createdAgo = '1 day') => {
    const id = randomUUID();
    await pool.query(
      `INSERT INTO tenants (id, slug, slug_source, name, status, tier, region, deleted_at, created_at)
       VALUES ($1, $2::text, 'admin', $2::text, $3::text, 'starter', 'local', CASE WHEN $3::text = 'deleted' THEN now() END, now() - $4::interval)`,
      [id, slug, status, createdAgo]);
    return id;
  };
  const key = async (tenantId: string, revoked = false) => {
    const id = randomUUID();
    await pool.query(`INSERT INTO api_keys (id, tenant_id, name, prefix, hash, revoked_at) VALUES ($1, $2, 'k', $3, 'h', CASE WHEN $4 THEN now() - interval '1 day' END)`,
      [id, tenantId, randomUUID().slice(0, 12), revoked]);
    return id;
  };
  const revokedAt = async (keyId: string) => (await pool.query<{ revoked_at: Date | null }>('SELECT revoked_at FROM api_keys WHERE id = $1', [keyId])).rows[0]?.revoked_at ?? null;

  describe('findTenant (silo provision plan, the api-keys admin API)', () => {
    it('prefers the id, then the live tenant of a slug, then its newest deleted one', async () => {
      const oldDeleted = await tenant('findme', 'deleted', '3 days');
      const live = await tenant('findme', 'active', '2 days');
      await tenant('findme', 'deleted', '1 hour');
      expect((await findTenant(pool, 'findme'))?.id).toBe(live);
      expect((await findTenant(pool, oldDeleted))?.id).toBe(oldDeleted);
      expect((await findTenant(pool, oldDeleted.toUpperCase()))?.id).toBe(oldDeleted);

      await tenant('gone', 'deleted', '3 days');
      const newest = await tenant('gone', 'deleted', '1 day');
      expect(await findTenant(pool, 'gone')).toMatchObject({ id: newest, slug: 'gone', status: 'deleted', tier: 'starter', region: 'local' });

      const target = await tenant('id-target', 'deleted');
      await tenant(target); // a live tenant whose slug spells the other's id: the id wins
      expect((await findTenant(pool, target))?.id).toBe(target);
    });

    it('answers null for an unknown id or slug, through a TypeORM DataSource as through a pg Pool', async () => {
      expect(await findTenant(ds, randomUUID())).toBeNull();
      expect(await findTenant(ds, 'no-such-tenant')).toBeNull();
      const id = await tenant('via-typeorm');
      expect((await new ApiKeyRepository(ds).findTenant({ slug: 'via-typeorm' }))?.id).toBe(id);
      expect((await new ApiKeyRepository(ds).findTenant({ id }))?.slug).toBe('via-typeorm');
    });
  });

  describe('revokeAllApiKeys (deprovisioning)', () => {
    it("revokes the tenant's live keys inside the caller's transaction, and only those", async () => {
      const t = await tenant('revoke-all');
      const other = await tenant('revoke-other');
      const [a, b, old, theirs] = [await key(t), await key(t), await key(t, true), await key(other)];
      const oldAt = await revokedAt(old);

      await expect(new TenantRepository(ds).transaction(async (m) => {
        await new TenantRepository(ds).revokeAllApiKeys(t, m);
        throw new Error('roll back');
      })).rejects.toThrow('roll back');
      expect(await revokedAt(a)).toBeNull(); // rolled back with the transaction

      await new TenantRepository(ds).transaction((m) => new TenantRepository(ds).revokeAllApiKeys(t, m));
      expect(await revokedAt(a)).not.toBeNull();
      expect(await revokedAt(b)).not.toBeNull();
      expect(await revokedAt(old)).toEqual(oldAt); // already revoked: its time is kept
      expect(await revokedAt(theirs)).toBeNull();

      await revokeAllApiKeys(pool, other); // a pg Pool works too
      expect(await revokedAt(theirs)).not.toBeNull();
    });
  });

  describe('audit rows through the audit_log owner', () => {
    it("api-key audit rows commit and roll back with the caller's transaction", async () => {
      const t = await tenant('audited');
      const keys = new ApiKeyRepository(ds);
      await expect(keys.transaction(async (m) => {
        await keys.audit(t, 'api_key_created', { keyId: 'rolled-back' }, m);
        throw new Error('roll back');
      })).rejects.toThrow('roll back');
      await keys.transaction((m) => keys.audit(t, 'api_key_revoked', { keyId: 'k1' }, m));
      const history = await new TenantRepository(ds).history(t, 10);
      expect(history.map((h) => [h.action, h.causeType, h.causeId, h.detail])).toEqual([['api_key_revoked', 'admin', 'admin-token', { keyId: 'k1' }]]);
    });
  });

  describe('TenantStorageRepository.counts (metrics)', () => {
    it('counts over-quota and frozen tenants that are live, not deleted ones', async () => {
      const before = await new TenantStorageRepository(ds).counts();
      const store = async (status: string, used: number, frozen: boolean) => {
        const id = await tenant(`st-${randomUUID().slice(0, 8)}`, status);
        await pool.query(`INSERT INTO tenant_storage (tenant_id, used_bytes, quota_bytes, measured_at, frozen) VALUES ($1, $2, 100, now(), $3)`, [id, used, frozen]);
      };
      await store('active', 150, true); // over and frozen
      await store('suspended', 150, false); // over
      await store('active', 50, false); // neither
      await store('deleted', 150, true); // not counted
      await store('failed', 150, true); // not counted
      expect(await new TenantStorageRepository(ds).counts()).toEqual({ overQuota: before.overQuota + 2, frozen: before.frozen + 1 });
    });
  });

  describe('TenantRepository.findSchemaVersion (admin API) reads the mirror through its owner', () => {
    it('returns the mirror row, or null before any run recorded it', async () => {
      const t = await tenant('mirrored');
      expect(await new TenantRepository(ds).findSchemaVersion(t)).toBeNull();
      await new SchemaMirrorRepository(pool).write([{ tenantId: t, ledger: { version: '0002_x', appliedCount: 2, digest: 'd', drift: null }, lastError: null }]);
      expect(await new TenantRepository(ds).findSchemaVersion(t)).toMatchObject({ tenantId: t, version: '0002_x', appliedCount: 2, lastError: null, drift: null, ledgerDigest: 'd' });
      const [listed] = await new SchemaMirrorRepository(pool).list({ slugs: ['mirrored'] });
      expect(listed?.mirror).toMatchObject({ version: '0002_x', appliedCount: 2, digest: 'd' });
    });
  });

  describe('queryRows', () => {
    it('returns the rows of an UPDATE … RETURNING through TypeORM (which answers [rows, count]) and through pg', async () => {
      const t = await tenant('rows-of');
      const viaTypeorm = await queryRows<{ id: string }>(ds.manager, 'UPDATE tenants SET name = name WHERE id = $1 RETURNING id', [t]);
      const viaPg = await queryRows<{ id: string }>(pool, 'UPDATE tenants SET name = name WHERE id = $1 RETURNING id', [t]);
      expect(viaTypeorm).toEqual([{ id: t }]);
      expect(viaPg).toEqual([{ id: t }]);
    });
  });
});
