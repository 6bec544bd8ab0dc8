import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The tenant migration runner's mirror keeps a digest of each tenant's ledger (sha256 over the
 * applied versions and checksums): a fleet run skips, without connecting, tenants whose digest
 * matches the migration files up to the target, and notices edited files without a fan-out.
 */
export class TenantSchemaLedgerDigest1732460000000 implements MigrationInterface {
  name = 'TenantSchemaLedgerDigest1732460000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenant_schema_versions ADD COLUMN IF NOT EXISTS ledger_digest text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenant_schema_versions DROP COLUMN IF EXISTS ledger_digest`);
  }
}
