import { spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Pool } from 'pg';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { DeprovisionOptions, DriverContext, ProvisioningDriver, TenantConnectionInfo } from '../provisioning-driver';
import { SecretStore } from '../secrets/secret-store';
import { ident, literal, TENANT_DB_PATTERN, tenantDbName } from './pg-names';
import { generatePassword, scramVerifier } from './scram';

export interface LocalDriverOptions {
  /** Superuser URL of the Postgres server that hosts tenant databases (its maintenance database). */
  adminUrl: string;
  /** Host/port tenant connections use; defaults to adminUrl's. */
  publicHost?: string;
  publicPort?: number;
  templateDatabase?: string;
  /** NOLOGIN role owning the template's schema objects (migrations run as it); REASSIGNed to each tenant role after cloning. */
  templateOwner?: string;
  secretStore: SecretStore;
  secretPrefix: string;
  /** Databases tenant roles must never connect to (the control database, the maintenance db). */
  protectDatabases?: string[];
  pgDumpBin?: string;
  secretRecoveryWindowDays?: number;
  /** Brings the template to the latest tenant schema (the migration runner). */
  prepareTemplate?: (templateUrl: string) => Promise<void>;
  /**
   * Marks every database and role this Silo creates (as a COMMENT), so the reconciler only ever
   * touches its own objects on a server shared with other instances. Default: `default`.
   */
  instanceId?: string;
}

type PgError = { code?: string };
const BUSY_TEMPLATE = '55006';
const DUPLICATE_OBJECT = '42710';
const DUPLICATE_DATABASE = '42P04';

/**
 * The default driver: a login role and a database per tenant on one Postgres server. Every
 * step is create-if-absent so a retried job converges after a crash at any point.
 */
export class LocalProvisioningDriver implements ProvisioningDriver {
  readonly name = 'local' as const;
  readonly templateDatabase: string;
  readonly templateOwner: string;
  private readonly admin: Pool;
  private readonly host: string;
  private readonly port: number;
  private ready: Promise<void> | null = null;
  private readonly marker: string;

  constructor(private readonly opts: LocalDriverOptions) {
    const u = new URL(opts.adminUrl);
    this.host = opts.publicHost ?? u.hostname;
    this.port = opts.publicPort ?? Number(u.port || 5432);
    this.templateDatabase = opts.templateDatabase ?? 'silo_tenant_template';
    this.templateOwner = opts.templateOwner ?? 'silo_template_owner';
    this.marker = `silo-instance:${opts.instanceId ?? 'default'}`;
    this.admin = new Pool({ connectionString: opts.adminUrl, max: 4, application_name: 'silo-provisioner' });
    this.admin.on('error', () => undefined);
  }

  /** URL of a database on the tenant server, with admin credentials (never handed to tenants). */
  adminUrlFor(database: string): string {
    const u = new URL(this.opts.adminUrl);
    u.pathname = `/${database}`;
    return u.toString();
  }

  /** Creates the template (and its owner role) and closes the server to tenant roles, once per process. */
  ensureReady(): Promise<void> {
    this.ready ??= this.prepare().catch((err) => {
      this.ready = null;
      throw err;
    });
    return this.ready;
  }

  async provision(ctx: DriverContext): Promise<TenantConnectionInfo> {
    await this.ensureReady();
    const name = tenantDbName(ctx.tenant.id);
    const secretRef = await ctx.step('secret', () =>
      this.opts.secretStore.create(this.secretName(ctx.tenant.id), { username: name, password: generatePassword() }, { tenantId: ctx.tenant.id }),
    );
    await ctx.step('role', async () => {
      const { password } = await this.opts.secretStore.get(secretRef);
      await this.ensureRole(name, password, ctx.tenant.tier.connectionLimit, ctx.tenant.tier.statementTimeoutMs);
      return true;
    });
    await ctx.step('database', async () => {
      await this.ensureDatabase(name);
      return true;
    });
    await ctx.step('ownership', async () => {
      await this.handOver(name);
      return true;
    });
    ctx.log(`database ${name} ready on ${this.host}:${this.port}`);
    return { host: this.host, port: this.port, database: name, username: name, secretRef };
  }

  async deprovision(ctx: DriverContext, opts: DeprovisionOptions): Promise<{ exportLocation: string | null }> {
    const name = tenantDbName(ctx.tenant.id);
    await ctx.step('block-logins', async () => {
      if (await this.roleExists(name)) await this.admin.query(`ALTER ROLE ${ident(name)} NOLOGIN`);
      await this.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      return true;
    });
    const exportLocation = await ctx.step('export', async () => {
      if (!(await this.databaseExists(name))) return null;
      return this.exportDatabase(name, opts.exportDir, ctx);
    });
    await ctx.step('drop-database', async () => {
      await this.admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
      return true;
    });
    await ctx.step('drop-role', async () => {
      await this.admin.query(`DROP ROLE IF EXISTS ${ident(name)}`);
      return true;
    });
    await ctx.step('delete-secret', async () => {
      const ref = opts.connection?.secretRef ?? `local:${this.secretName(ctx.tenant.id)}`;
      await this.opts.secretStore.delete(ref, { recoveryWindowDays: this.opts.secretRecoveryWindowDays ?? 7 });
      return true;
    });
    return { exportLocation };
  }

  async rotateCredentials(ctx: DriverContext, connection: TenantConnectionInfo): Promise<void> {
    await ctx.step('new-secret', async () => {
      await this.opts.secretStore.rotate(connection.secretRef, { username: connection.username, password: generatePassword() });
      return true;
    });
    await ctx.step('apply', async () => {
      // Re-read: after a crash between the steps, the stored secret is the truth.
      const { password } = await this.opts.secretStore.get(connection.secretRef);
      await this.admin.query(`ALTER ROLE ${ident(connection.username)} PASSWORD ${literal(await scramVerifier(password))}`);
      return true;
    });
  }

  /** Tenant databases and roles of this Silo instance (by marker) that exist on the server, for the reconciler. */
  async inventory(): Promise<{ databases: string[]; roles: string[] }> {
    const dbs = await this.admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9a-f]{32}$' AND shobj_description(oid, 'pg_database') = $1`, [this.marker]);
    const roles = await this.admin.query<{ rolname: string }>(
      `SELECT rolname FROM pg_roles WHERE rolname ~ '^t_[0-9a-f]{32}$' AND shobj_description(oid, 'pg_authid') = $1`, [this.marker]);
    return { databases: dbs.rows.map((r) => r.datname).filter((n) => TENANT_DB_PATTERN.test(n)), roles: roles.rows.map((r) => r.rolname) };
  }

  /** Drops a tenant database and role, but only if they carry this instance's marker. */
  async dropOrphan(name: string): Promise<void> {
    if (!TENANT_DB_PATTERN.test(name)) throw new Error(`refusing to drop non-tenant object ${name}`);
    const owned = await this.admin.query(
      `SELECT 1 FROM pg_database WHERE datname = $1 AND shobj_description(oid, 'pg_database') = $2
       UNION ALL SELECT 1 FROM pg_roles WHERE rolname = $1 AND shobj_description(oid, 'pg_authid') = $2`, [name, this.marker]);
    if (owned.rowCount === 0) throw new Error(`refusing to drop ${name}: not created by this Silo instance`);
    await this.admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
    await this.admin.query(`DROP ROLE IF EXISTS ${ident(name)}`);
  }

  async close(): Promise<void> {
    await this.admin.end();
  }

  secretName(tenantId: string): string {
    return `${this.opts.secretPrefix}${tenantId}`;
  }

  private async prepare(): Promise<void> {
    await this.admin.query(`CREATE ROLE ${ident(this.templateOwner)} NOLOGIN`).catch(ignore(DUPLICATE_OBJECT, '23505'));
    if (!(await this.databaseExists(this.templateDatabase))) {
      // The database itself stays owned by the admin: REASSIGN OWNED (in handOver) also moves shared
      // objects, so a template owned by the template role would be handed to the first tenant.
      await this.admin.query(`CREATE DATABASE ${ident(this.templateDatabase)}`).catch(ignore(DUPLICATE_DATABASE, '23505'));
    }
    // Granted on every start (idempotent): a process killed right after CREATE DATABASE left a
    // template its owner cannot migrate, and no tenant could be provisioned any more.
    const c = new Client({ connectionString: this.adminUrlFor(this.templateDatabase) });
    await c.connect();
    try {
      await c.query(`GRANT ALL ON SCHEMA public TO ${ident(this.templateOwner)}`);
    } finally {
      await c.end();
    }
    const maintenance = new URL(this.opts.adminUrl).pathname.slice(1) || 'postgres';
    for (const db of new Set([this.templateDatabase, maintenance, ...(this.opts.protectDatabases ?? [])])) {
      if (await this.databaseExists(db)) await this.admin.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${ident(db)} FROM PUBLIC`);
    }
    if (this.opts.prepareTemplate) await this.opts.prepareTemplate(this.adminUrlFor(this.templateDatabase));
  }

  private async ensureRole(name: string, password: string, connectionLimit: number, statementTimeoutMs: number): Promise<void> {
    const attrs = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${Math.floor(connectionLimit)}`;
    const verifier = literal(await scramVerifier(password));
    // One round trip (simple protocol, one implicit transaction): everything here is generated, not user input.
    const settings = [
      `COMMENT ON ROLE ${ident(name)} IS ${literal(this.marker)}`,
      `ALTER ROLE ${ident(name)} SET statement_timeout = ${Math.floor(statementTimeoutMs)}`,
      `ALTER ROLE ${ident(name)} SET idle_in_transaction_session_timeout = 60000`,
    ].join('; ');
    if (await this.roleExists(name)) {
      await this.admin.query(`ALTER ROLE ${ident(name)} WITH ${attrs} PASSWORD ${verifier}; ${settings}`);
      return;
    }
    try {
      await this.admin.query(`CREATE ROLE ${ident(name)} WITH ${attrs} PASSWORD ${verifier}; ${settings}`);
    } catch (err) {
      ignore(DUPLICATE_OBJECT, '23505')(err);
      await this.admin.query(`ALTER ROLE ${ident(name)} WITH ${attrs} PASSWORD ${verifier}; ${settings}`); // lost a race: converge
    }
  }

  private async ensureDatabase(name: string): Promise<void> {
    if (!(await this.databaseExists(name))) await this.createDatabase(name);
    // Always (re)applied, they are idempotent: a CREATE DATABASE whose client was killed still
    // completes on the server, leaving a database open to PUBLIC and without the marker.
    await this.admin.query(
      `REVOKE ALL ON DATABASE ${ident(name)} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE ${ident(name)} TO ${ident(name)}; ` +
        `COMMENT ON DATABASE ${ident(name)} IS ${literal(this.marker)}`,
    );
  }

  private async createDatabase(name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.admin.query(`CREATE DATABASE ${ident(name)} OWNER ${ident(name)} TEMPLATE ${ident(this.templateDatabase)}`);
        return;
      } catch (err) {
        const code = (err as PgError).code;
        if (code === DUPLICATE_DATABASE) return;
        // The template is briefly busy while the migration runner (or a clone) has it open.
        if (code !== BUSY_TEMPLATE || attempt >= 100) throw err;
        await sleep(100 + Math.random() * 200);
      }
    }
  }

  /** Objects cloned from the template belong to the template owner: give them to the tenant role. */
  private async handOver(name: string): Promise<void> {
    const c = new Client({ connectionString: this.adminUrlFor(name) });
    await c.connect();
    try {
      await c.query(`REASSIGN OWNED BY ${ident(this.templateOwner)} TO ${ident(name)}; REVOKE ALL ON SCHEMA public FROM PUBLIC; GRANT ALL ON SCHEMA public TO ${ident(name)}`);
    } finally {
      await c.end();
    }
  }

  private async exportDatabase(name: string, dir: string, ctx: DriverContext): Promise<string> {
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${ctx.tenant.id}-${new Date().toISOString().replace(/[:.]/g, '-')}.dump`);
    const bin = this.opts.pgDumpBin ?? 'pg_dump';
    const u = new URL(this.adminUrlFor(name));
    // Credentials go through the environment, never argv (visible in ps).
    const env = { ...process.env, PGHOST: u.hostname, PGPORT: u.port || '5432', PGUSER: decodeURIComponent(u.username || 'postgres'), PGPASSWORD: decodeURIComponent(u.password), PGDATABASE: name };
    const stderr: string[] = [];
    const code = await new Promise<number | 'missing'>((resolve) => {
      const child = spawn(bin, ['--format=custom', '--no-password', `--file=${file}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
      child.on('error', () => resolve('missing'));
      child.on('close', (c) => resolve(c ?? 1));
    });
    if (code === 'missing') {
      throw new SiloError(ErrorCode.EXPORT_TOOL_UNAVAILABLE, `pg_dump not found (${bin}); set PG_DUMP_BIN. The tenant's data was kept.`, 500);
    }
    const tail = stderr.join('').trim().split('\n').slice(-3).join(' | ');
    if (code !== 0) {
      const versionMismatch = /server version mismatch/i.test(tail);
      throw new SiloError(versionMismatch ? ErrorCode.EXPORT_TOOL_UNAVAILABLE : ErrorCode.EXPORT_FAILED, `pg_dump failed (exit ${code}): ${tail}. The tenant's data was kept.`, 500);
    }
    ctx.log(`exported ${name} to ${file} (${(await stat(file)).size} bytes)`);
    return file;
  }

  private async databaseExists(name: string): Promise<boolean> {
    return (await this.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  }

  private async roleExists(name: string): Promise<boolean> {
    return (await this.admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
  }
}

function ignore(...codes: string[]) {
  return (err: unknown) => {
    if (!codes.includes((err as PgError).code ?? '')) throw err;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
