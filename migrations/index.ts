import { ErrorCode } from '../common/error-codes';
import { SiloError } from '../common/errors';
import type { TenantConnectionInfo } from '../provisioning/provisioning-driver';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import { DatabaseRunResult, migrateDatabase } from './database-migrator';
import { describeFailure, mirrorUpdate } from './fleet-runner';
import { templateSession, tenantSession } from './migration-sessions';
import { SchemaMirrorRepository, SqlClient } from './schema-mirror.repository';
import { defaultMigrationsDir, loadMigrations, resolveTarget, TenantMigration } from './tenant-migration';

export { LEDGER_TABLE, migrateDatabase, TENANT_MIGRATION_LOCK_KEY } from './database-migrator';
export type { DatabaseRunResult, MigrationRequest } from './database-migrator';
export { FleetRunner } from './fleet-runner';
export type { FleetReport, FleetRunOptions, TemplateReport, TemplateTarget, TenantReport } from './fleet-runner';
export { SchemaMirrorRepository } from './schema-mirror.repository';
export type { SqlClient, TenantSelection } from './schema-mirror.repository';
export { createMigrationFile, defaultMigrationsDir, ledgerDigest, loadMigrations } from './tenant-migration';
export type { TenantMigration } from './tenant-migration';

/** LocalProvisioningDriver's default template owner role. */
export const DEFAULT_TEMPLATE_OWNER = 'silo_template_owner';

/** Where the migrations come from: a directory (default `migrations/tenant`) or an already loaded list. */
export interface MigrationSource {
  dir?: string;
  migrations?: readonly TenantMigration[];
}

export interface MigrateOptions extends MigrationSource {
  /** Highest version to apply (default: the newest file). */
  to?: string;
  /** How long to wait for another runner's lock on this database (default 60 s). */
  lockWaitMs?: number;
  /** Default 0 (none): overrides the tenant role's statement_timeout. */
  statementTimeoutMs?: number;
  /** Default 10 s: give up on a table the application keeps locked, instead of queueing every query behind us. */
  lockTimeoutMs?: number;
}

/**
 * Brings the tenant template database to the latest tenant migration, running as `templateOwner`
 * (SET ROLE) so cloned tenants receive objects they can be handed with REASSIGN OWNED. Holds one
 * short connection: CREATE DATABASE ... TEMPLATE fails while it is open. Throws SiloError
 * (MIGRATION_FAILED, MIGRATION_DRIFT, MIGRATION_LOCKED) when the template is not at the target.
 * Fits LocalDriverOptions.prepareTemplate / DriverExtras.prepareTemplate as is.
 */
export async function prepareTemplate(templateAdminUrl: string, templateOwner: string = DEFAULT_TEMPLATE_OWNER, opts: MigrateOptions = {}): Promise<void> {
  await migrateTemplate(templateAdminUrl, templateOwner, opts);
}

/** prepareTemplate, returning what was applied. */
export async function migrateTemplate(templateAdminUrl: string, templateOwner: string = DEFAULT_TEMPLATE_OWNER, opts: MigrateOptions = {}): Promise<DatabaseRunResult> {
  const migrations = source(opts);
  const req = request(migrations, opts);
  const result = await migrateDatabase(templateSession(templateAdminUrl, templateOwner, req), req);
  return orThrow(result, 'the tenant template database');
}

/**
 * Brings one tenant's database to the target (default: latest) as the tenant's own role, and
 * records the result in the control database's mirror when `control` is given. For the
 * provisioning job, right after provisioning. Waits for a fleet run holding the tenant's lock.
 * Throws SiloError when the tenant is not at the target afterwards (it stays at its last good version).
 */
export async function migrateTenant(
  tenant: { id: string; slug?: string; connection: TenantConnectionInfo },
  deps: { secretStore: SecretStore; control?: SqlClient },
  opts: MigrateOptions = {},
): Promise<DatabaseRunResult> {
  const migrations = source(opts);
  const req = request(migrations, opts);
  const result = await migrateDatabase(tenantSession(tenant.connection, deps.secretStore, req), req);
  if (deps.control && result.outcome !== 'locked') await new SchemaMirrorRepository(deps.control).write([mirrorUpdate(tenant.id, result)]);
  return orThrow(result, `tenant ${tenant.slug ?? tenant.id}`);
}

function source(opts: MigrationSource): readonly TenantMigration[] {
  return opts.migrations ?? loadMigrations(opts.dir ?? defaultMigrationsDir());
}

function request(migrations: readonly TenantMigration[], opts: MigrateOptions) {
  return {
    direction: 'up' as const, migrations, target: resolveTarget(migrations, opts.to),
    lockWaitMs: opts.lockWaitMs ?? 60_000, statementTimeoutMs: opts.statementTimeoutMs ?? 0, lockTimeoutMs: opts.lockTimeoutMs ?? 10_000,
  };
}

function orThrow(result: DatabaseRunResult, what: string): DatabaseRunResult {
  if (result.outcome === 'migrated' || result.outcome === 'up-to-date') return result;
  const code = result.outcome === 'drift' ? ErrorCode.MIGRATION_DRIFT : result.outcome === 'locked' ? ErrorCode.MIGRATION_LOCKED : ErrorCode.MIGRATION_FAILED;
  throw new SiloError(code, `Migrating ${what} failed: ${describeFailure(result)}`, 500, { from: result.from, to: result.to, error: result.error, problems: result.problems });
}
