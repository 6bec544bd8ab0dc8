import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Billing names tenants from the best information about the purchase, whatever order Stripe
 * delivers it in (issue #15): `slug_source` records where the slug came from (`requested`, `name`,
 * `email`, `customer`, `admin`) so a later event with better information can rename a tenant whose
 * hostname is not live yet. A slug is unique among tenants that are not deleted: a purchase that
 * was never paid frees its slug once offboarded.
 */
export class TenantSlugSource1732680000000 implements MigrationInterface {
  name = 'TenantSlugSource1732680000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants ADD COLUMN slug_source text CHECK (slug_source IN ('requested','name','email','customer','admin'))`);
    await q.query(`UPDATE tenants SET slug_source = CASE WHEN stripe_subscription_id IS NULL THEN 'admin' ELSE 'customer' END`);
    await q.query(`ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_slug_key`);
    await q.query(`CREATE UNIQUE INDEX tenants_live_slug_idx ON tenants (slug) WHERE status <> 'deleted'`);
    await q.query(`CREATE INDEX tenants_slug_idx ON tenants (slug)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS tenants_slug_idx`);
    await q.query(`DROP INDEX IF EXISTS tenants_live_slug_idx`);
    await q.query(`ALTER TABLE tenants ADD CONSTRAINT tenants_slug_key UNIQUE (slug)`);
    await q.query(`ALTER TABLE tenants DROP COLUMN IF EXISTS slug_source`);
  }
}
