import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultMigrationsDir, parseMigration, TenantMigration } from '../../migrations/tenant-migration';

/**
 * The tenant migrations Silo itself ships in `migrations/tenant`, by name. Tests use only these
 * (copied into a folder of their own), never whatever else is in that folder: it is where users
 * add their own migrations, and `npm test` must not depend on them. Add a name here when Silo
 * ships a new tenant migration.
 */
export const SHIPPED_TENANT_MIGRATIONS = ['0001_silo_baseline.sql'] as const;

/** Copies Silo's shipped tenant migrations into `dir` (created if missing); returns `dir`. */
export function copyShippedMigrations(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const name of SHIPPED_TENANT_MIGRATIONS) copyFileSync(join(defaultMigrationsDir(), name), join(dir, name));
  return dir;
}

/** Silo's shipped tenant migrations, parsed (what a test control plane's template is migrated to). */
export function shippedTenantMigrations(): TenantMigration[] {
  return SHIPPED_TENANT_MIGRATIONS.map((name) => parseMigration(name, readFileSync(join(defaultMigrationsDir(), name), 'utf8'), join(defaultMigrationsDir(), name)));
}
