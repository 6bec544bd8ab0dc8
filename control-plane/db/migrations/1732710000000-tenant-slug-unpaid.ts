import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A tenant billing created before its subscription was paid holds a random placeholder slug
 * (`slug_source = 'unpaid'`) until payment, so abandoned payments reserve no names (issue #15).
 */
export class TenantSlugUnpaid1732710000000 implements MigrationInterface {
  name = 'TenantSlugUnpaid1732710000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_slug_source_check`);
    await q.query(`ALTER TABLE tenants ADD CONSTRAINT tenants_slug_source_check CHECK (slug_source IN ('requested','name','email','customer','admin','unpaid'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`UPDATE tenants SET slug_source = 'customer' WHERE slug_source = 'unpaid'`);
    await q.query(`ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_slug_source_check`);
    await q.query(`ALTER TABLE tenants ADD CONSTRAINT tenants_slug_source_check CHECK (slug_source IN ('requested','name','email','customer','admin'))`);
  }
}
