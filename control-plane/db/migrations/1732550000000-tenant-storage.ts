import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Storage quotas (issue #13 item 4): the last measurement of each tenant's database, the quota it
 * was judged against, and whether the sweep has write-frozen it (storage-quota.service.ts).
 */
export class TenantStorage1732550000000 implements MigrationInterface {
  name = 'TenantStorage1732550000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS tenant_storage (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
        used_bytes bigint NOT NULL CHECK (used_bytes >= 0),
        quota_bytes bigint NOT NULL CHECK (quota_bytes > 0),
        measured_at timestamptz NOT NULL,
        frozen boolean NOT NULL DEFAULT false,
        frozen_at timestamptz,
        warned_at timestamptz,
        last_error text
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS tenant_storage`);
  }
}
