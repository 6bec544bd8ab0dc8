import { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { ErrorCode } from '../common/error-codes';
import { SiloError } from '../common/errors';
import { redactUrl } from '../common/logger';
import type { ProvisioningDriver } from '../provisioning/provisioning-driver';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import { CliConfig, loadCliConfig, tenantMigrationsDir } from './config';
import type { CliIo } from './io';

/**
 * Adapters a command may need, each created on first use and closed by `close()`: commands that
 * need no database (`migrate create`, `--help`) never read DATABASE_URL.
 */
export class CliContext {
  private cfg: (CliConfig & { embedded: boolean }) | null = null;
  private pool: Promise<Pool> | null = null;
  private ds: Promise<DataSource> | null = null;
  private current: Promise<DataSource> | null = null;
  private secrets: Promise<SecretStore> | null = null;
  private drv: Promise<ProvisioningDriver> | null = null;

  constructor(private readonly io: CliIo) {}

  /** Parsed once; throws CONFIG_INVALID (exit 2) with every bad variable. */
  get config(): CliConfig & { embedded: boolean } {
    this.cfg ??= loadCliConfig(this.io.env, this.io.cwd);
    return this.cfg;
  }

  /** A pg pool on the control database, checked with a first query so a wrong DATABASE_URL is a config error. */
  controlPool(): Promise<Pool> {
    this.pool ??= (async () => {
      const { DATABASE_URL, DATABASE_POOL_SIZE } = this.config;
      const pool = new Pool({ connectionString: DATABASE_URL, max: DATABASE_POOL_SIZE, application_name: 'silo-cli', connectionTimeoutMillis: 5_000 });
      pool.on('error', () => undefined);
      try {
        await pool.query('SELECT 1');
      } catch (err) {
        await pool.end().catch(() => undefined);
        throw unreachable(DATABASE_URL, err, this.config.embedded);
      }
      return pool;
    })();
    return this.pool;
  }

  /** The TypeORM data source (control-db migrations, and commands built on the control plane's repositories). */
  dataSource(): Promise<DataSource> {
    this.ds ??= (async () => {
      const { createControlDataSource } = lazy<typeof import('../control-plane/db/data-source')>('../control-plane/db/data-source');
      const ds = createControlDataSource(this.config.DATABASE_URL, { poolSize: this.config.DATABASE_POOL_SIZE, applicationName: 'silo-cli' });
      try {
        await ds.initialize();
      } catch (err) {
        throw unreachable(this.config.DATABASE_URL, err, this.config.embedded);
      }
      return ds;
    })();
    return this.ds;
  }

  /**
   * The data source for commands that must not change the control database's schema (`silo
   * reconcile`): nothing is migrated, and a database behind this CLI's migrations is refused
   * (CONFIG_INVALID, exit 2) with the command that migrates it. Only `silo control-db migrate`
   * (and the control plane at start-up) migrates.
   */
  upToDateDataSource(): Promise<DataSource> {
    this.current ??= (async () => {
      const ds = await this.dataSource();
      const { MigrationExecutor } = lazy<typeof import('typeorm')>('typeorm');
      // Reads control_migrations only (showMigrations would create it).
      const pending = (await new MigrationExecutor(ds).getPendingMigrations()).map((m) => m.name);
      if (pending.length) {
        const names = pending.length > 3 ? `${pending.slice(0, 3).join(', ')} and ${pending.length - 3} more` : pending.join(', ');
        throw new SiloError(ErrorCode.CONFIG_INVALID, `The control database at ${redactUrl(this.config.DATABASE_URL)} is ${pending.length} migration${pending.length > 1 ? 's' : ''} behind this CLI (${names}): run \`silo control-db migrate\` first (this command never migrates).`, 500);
      }
      return ds;
    })();
    return this.current;
  }

  secretStore(): Promise<SecretStore> {
    this.secrets ??= (async () => {
      const pool = await this.controlPool();
      const { createSecretStore } = lazy<typeof import('../provisioning/secrets/create-secret-store')>('../provisioning/secrets/create-secret-store');
      return createSecretStore(this.config, pool);
    })();
    return this.secrets;
  }

  driver(): Promise<ProvisioningDriver> {
    this.drv ??= (async () => {
      const store = await this.secretStore();
      const { createProvisioningDriver } = lazy<typeof import('../provisioning/create-provisioning-driver')>('../provisioning/create-provisioning-driver');
      const { prepareTemplate } = lazy<typeof import('../migrations')>('../migrations');
      const dir = tenantMigrationsDir(this.io.env, this.io.cwd);
      // A template the driver creates from the CLI starts at the latest tenant migration too.
      return createProvisioningDriver(this.config, store, {
        prepareTemplate: (url) => prepareTemplate(url, undefined, { dir }),
      });
    })();
    return this.drv;
  }

  /** Closes whatever was opened; safe to call more than once. */
  async close(): Promise<void> {
    const settle = async <T>(p: Promise<T> | null, fn: (v: T) => Promise<unknown> | undefined) => {
      if (!p) return;
      const v = await p.catch(() => null);
      if (v !== null) await Promise.resolve(fn(v)).catch(() => undefined);
    };
    await settle(this.drv, (d) => d.close());
    await settle(this.ds, (ds) => (ds.isInitialized ? ds.destroy() : undefined));
    await settle(this.pool, (p) => p.end());
    this.drv = this.ds = this.current = this.pool = this.secrets = null;
  }
}

/**
 * Names where the URL came from: DATABASE_URL, or (embedded mode, DATABASE_URL unset) the
 * `npm start` whose .silo/state.json the CLI read, which is most likely just not running.
 */
function unreachable(url: string, err: unknown, embedded: boolean): SiloError {
  const e = err as { message?: string; code?: string; errors?: Array<{ code?: string }> };
  const reason = e.message || e.code || String(err);
  if (!embedded) return new SiloError(ErrorCode.CONFIG_INVALID, `Cannot use the control database at ${redactUrl(url)} (DATABASE_URL): ${reason}`, 500);
  const refused = e.code === 'ECONNREFUSED' || !!e.errors?.some((x) => x.code === 'ECONNREFUSED');
  return new SiloError(ErrorCode.CONFIG_INVALID, refused
    ? `Cannot reach the embedded control database at ${redactUrl(url)} (from .silo/state.json): is \`npm start\` running? Start it, or set DATABASE_URL.`
    : `Cannot use the embedded control database at ${redactUrl(url)} (from .silo/state.json): ${reason}`, 500);
}

/** CommonJS require for modules only some commands need (typeorm, the drivers): keeps `silo` start-up fast. */
function lazy<T>(id: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(id) as T;
}
