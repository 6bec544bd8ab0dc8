import { Client } from 'pg';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { DEFAULT_TEMPLATE_OWNER } from '../../migrations';
import type { TemplateTarget } from '../../migrations/fleet-runner';
import { SchemaMirrorRepository, TenantSelection } from '../../migrations/schema-mirror.repository';
import { loadMigrations, TenantMigration } from '../../migrations/tenant-migration';
import type { SecretStore } from '../../provisioning/secrets/secret-store';
import { loadTierCatalogue, TierFileError } from '../../provisioning/tier-catalogue';
import type { CommandDeps } from '../command';
import { tenantMigrationsDir } from '../config';
import { UsageError } from '../errors';

export interface SelectionFlags {
  all?: boolean;
  tenant?: string[];
  tier?: string;
}

/** Exactly one of --all, --tenant, --tier; a --tier must be in the tier catalogue (built-in tiers and TIERS_FILE). */
export function parseSelection(flags: SelectionFlags, required = true, deps?: CommandDeps): TenantSelection | null {
  const given = [flags.all ? 1 : 0, flags.tenant?.length ? 1 : 0, flags.tier ? 1 : 0].reduce((a, b) => a + b, 0);
  if (given > 1) throw new UsageError('choose one of --all, --tenant <slug> or --tier <tier>');
  if (flags.all) return { all: true };
  if (flags.tenant?.length) return { slugs: [...new Set(flags.tenant)] };
  if (flags.tier) {
    if (deps) {
      const known = tierNames(deps);
      if (!known.includes(flags.tier)) throw new UsageError(`unknown tier: ${flags.tier} (known tiers: ${known.join(', ')})`);
    }
    return { tier: flags.tier };
  }
  if (required) throw new UsageError('choose the tenants: --all, --tenant <slug> (repeatable) or --tier <tier>');
  return null;
}

/** The tier catalogue's names, as the control plane reads them (the built-in tiers overlaid with TIERS_FILE). */
function tierNames({ context }: CommandDeps): string[] {
  const { TIERS_FILE, DEFAULT_TIER } = context.config;
  try {
    return Object.keys(loadTierCatalogue(TIERS_FILE, DEFAULT_TIER).tiers);
  } catch (err) {
    if (err instanceof TierFileError) throw new SiloError(ErrorCode.CONFIG_INVALID, err.message, 500);
    throw err;
  }
}

/** The same refusal as `migrate up`: every slug named with --tenant must be a tenant. */
export async function assertTenantsExist(repo: SchemaMirrorRepository, selection: TenantSelection): Promise<void> {
  if (!('slugs' in selection)) return;
  const found = new Set((await repo.list(selection)).map((r) => r.slug));
  const missing = selection.slugs.filter((s) => !found.has(s));
  if (missing.length) throw new SiloError(ErrorCode.TENANT_NOT_FOUND, `Unknown tenant${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`, 404, { missing });
}

export function loadTenantMigrations({ io }: CommandDeps, dirFlag?: string): { dir: string; migrations: TenantMigration[] } {
  const dir = tenantMigrationsDir(io.env, io.cwd, dirFlag);
  return { dir, migrations: loadMigrations(dir) };
}

/** The control database (schema checked: it must be migrated) and the secret store. */
export async function migrationServices({ context }: CommandDeps): Promise<{ repo: SchemaMirrorRepository; secrets: SecretStore }> {
  const pool = await context.controlPool();
  const { rows } = await pool.query<{ ready: boolean }>(
    `SELECT to_regclass('public.tenants') IS NOT NULL AND EXISTS (
       SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'tenant_schema_versions' AND column_name = 'ledger_digest') AS ready`,
  );
  if (!rows[0].ready) throw new SiloError(ErrorCode.CONFIG_INVALID, 'The control database schema is missing or out of date: run `silo control-db migrate` first.', 500);
  return { repo: new SchemaMirrorRepository(pool), secrets: await context.secretStore() };
}

/**
 * The template database fleet runs migrate first (local driver only), or why not. Only `--all`
 * runs touch it: new tenants must not get a schema the rest of the fleet does not have yet.
 */
export async function templateTarget(deps: CommandDeps, selection: TenantSelection, enabled: boolean): Promise<TemplateTarget | { skip: string }> {
  if (!enabled) return { skip: '--no-template' };
  if (!('all' in selection)) return { skip: 'only --all runs migrate the template' };
  if (deps.context.config.PROVISIONING_DRIVER !== 'local') return { skip: `the ${deps.context.config.PROVISIONING_DRIVER} driver has no template database` };
  const driver = await deps.context.driver();
  const template = driver.templateInfo();
  if (!template) return { skip: 'the driver has no template database' };
  if (!(await databaseExists(template.adminUrl))) return { skip: `${template.database} does not exist yet: the driver creates and migrates it on the first provisioning` };
  return { adminUrl: template.adminUrl, owner: template.owner || DEFAULT_TEMPLATE_OWNER, database: template.database };
}

async function databaseExists(url: string): Promise<boolean> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: 'silo-migrate' });
  try {
    await c.connect();
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '3D000') return false;
    throw err;
  } finally {
    await c.end().catch(() => undefined);
  }
}

