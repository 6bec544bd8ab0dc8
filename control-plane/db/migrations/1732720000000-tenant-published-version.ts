import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The version of each tenant last written to the directory (Redis). A process killed between a
 * commit and its directory write leaves `published_version` behind `version`; the directory-repair
 * periodic task republishes such tenants within seconds instead of waiting for the reconciler.
 * Existing rows count as published (the reconciler checks them as before).
 */
export class TenantPublishedVersion1732720000000 implements MigrationInterface {
  name = 'TenantPublishedVersion1732720000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants ADD COLUMN published_version integer`);
    await q.query(`UPDATE tenants SET published_version = version`);
    await q.query(`CREATE INDEX tenants_unpublished_idx ON tenants (updated_at) WHERE published_version IS DISTINCT FROM version`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS tenants_unpublished_idx`);
    await q.query(`ALTER TABLE tenants DROP COLUMN IF EXISTS published_version`);
  }
}
