import { spawn } from 'node:child_process';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, Pool } from 'pg';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { DeprovisionOptions, DriverContext, DriverInventory, ProvisioningDriver, TemplateDatabase, TenantConnectionInfo } from '../provisioning-driver';
import { TierSettings } from '../tiers';
import { SecretStore } from '../secrets/secret-store';
import { ADMIN_SESSION_OPTIONS, ident, literal, TENANT_DB_PATTERN, tenantDbName, tenantIdFromDbName } from './pg-names';
import { inTransaction } from './pg-transaction';
import { generatePassword, scramVerifier } from './scram';
import { ensureTenantGroup, grantTenantGroup, TenantCertIssuer } from './tenant-certs';
import { certSerial } from './tenant-crl';
import { ensureTerminatorRole } from './terminator-role';
import { childEnv } from '../child-env';
import { BUNDLED_PG_DUMP, BUNDLED_PG_DUMP_MAJOR, bundledPgDump, PG_DUMP_AUTO } from './bundled-pg-dump';
import { libpqTlsEnv, urlTls } from './libpq-url';
import { freezeWrites, frozenRoleName, isWriteFrozen, measureDatabaseSizes, reassertWriteFreeze, unfreezeWrites } from './write-freeze';
import { resetRoleSelfSettings } from '../role-settings';
import { ensureSiloSchema, SiloSchemaResult } from './silo-schema';
import { ConnectionBudget, roleConnectionLimit } from '../connection-budget';

export interface LocalDriverOptions {
  /** Superuser URL of the Postgres server that hosts tenant databases (its maintenance database). */
  adminUrl: string;
  /** Host/port tenant connections use; defaults to adminUrl's. */
  publicHost?: string;
  publicPort?: number;
  templateDatabase?: string;
  /** NOLOGIN role owning the template's schema objects (migrations run as it); REASSIGNed to each tenant role after cloning. */
  templateOwner?: string;
  /**
   * NOLOGIN role that owns every tenant database (default `silo_tenant_db_owner`). Not the tenant's
   * role: a database owner can ALTER DATABASE (IS_TEMPLATE, ALLOW_CONNECTIONS, SET …, COMMENT), which
   * let a tenant block its own offboarding and rewrite the reconciler's marker. The tenant gets
   * CONNECT, TEMPORARY and CREATE on its database and owns what it creates in it.
   */
  databaseOwner?: string;
  secretStore: SecretStore;
  secretPrefix: string;
  /** Databases tenant roles must never connect to (the control database, the maintenance db). */
  protectDatabases?: string[];
  /**
   * pg_dump for offboarding exports: `auto` (default) the one on PATH, or the bundled WebAssembly
   * pg_dump 18 when PATH has none or one older than the server; `bundled` that one only; else a path.
   */
  pgDumpBin?: string;
  /** Environment pg_dump's is filtered from (childEnv: OS basics only). Default: this process's. */
  parentEnv?: NodeJS.ProcessEnv;
  secretRecoveryWindowDays?: number;
  /** Brings the template to the latest tenant schema (the migration runner). */
  prepareTemplate?: (templateUrl: string) => Promise<void>;
  /**
   * Marks every database and role this Silo creates (as a COMMENT), so the reconciler only ever
   * touches its own objects on a server shared with other instances. Default: `default`.
   */
  instanceId?: string;
  /**
   * On a tenant server Silo runs (its pg_hba.conf accepts tenant roles by client certificate only,
   * tenant-server.ts): issues each tenant's certificate, kept in its secret with the password.
   */
  tenantCerts?: TenantCertIssuer;
  /** Sizes each tenant role's CONNECTION LIMIT from the tier's per-replica cap (connection-budget.ts). Default: 1 replica, reserve 2. */
  connectionBudget?: ConnectionBudget;
}

type PgError = { code?: string };
const BUSY_TEMPLATE = '55006';
const DUPLICATE_OBJECT = '42710';
const DUPLICATE_DATABASE = '42P04';
const NOT_ENFORCED = (serial: string) =>
  `certificate ${serial} revoked in the tenant CA's CRL, but the tenant server has no ssl_crl_file and still accepts it (a server Silo runs gets the CRL at its next restart)`;
/** Silo's default on every tenant role (the tenant may lower or lift it in its own sessions: it is userset). */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

/**
 * The default driver: a login role and a database per tenant on one Postgres server. Every
 * step is create-if-absent so a retried job converges after a crash at any point.
 */
export class LocalProvisioningDriver implements ProvisioningDriver {
  readonly name = 'local' as const;
  readonly templateDatabase: string;
  readonly templateOwner: string;
  readonly databaseOwner: string;
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
    this.databaseOwner = opts.databaseOwner ?? 'silo_tenant_db_owner';
    // REASSIGN OWNED BY the template owner (handOver) would give the database itself to the tenant.
    if (this.databaseOwner === this.templateOwner || TENANT_DB_PATTERN.test(this.databaseOwner)) throw new Error(`databaseOwner ${this.databaseOwner} must be a role of its own`);
    this.marker = `silo-instance:${opts.instanceId ?? 'default'}`;
    this.admin = new Pool({ connectionString: opts.adminUrl, max: 4, application_name: 'silo-provisioner', options: ADMIN_SESSION_OPTIONS });
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
    const secretRef = await ctx.step('secret', async () =>
      this.opts.secretStore.create(this.secretName(ctx.tenant.id), { username: name, password: generatePassword(), ...(await this.opts.tenantCerts?.issue(name)) }, { tenantId: ctx.tenant.id }),
    );
    await ctx.step('role', async () => {
      const { password } = await this.opts.secretStore.get(secretRef);
      await this.ensureRole(name, ctx.tenant.tier, { password, login: true });
      await grantTenantGroup(this.admin, name); // pg_hba.conf's +silo_tenants (tenant-certs.ts)
      return true;
    });
    await ctx.step('database', async () => {
      await this.ensureDatabase(name);
      return true;
    });
    await ctx.step('ownership', async () => {
      await this.handOver(name, (l) => ctx.log(l));
      return true;
    });
    // Sealing and handing over re-grant the tenant its usual privileges: a write freeze holds (write-freeze.ts).
    await reassertWriteFreeze(this.adminUrlFor(name), { database: name, tenantRole: name });
    ctx.log(`database ${name} ready on ${this.host}:${this.port}`);
    return { host: this.host, port: this.port, database: name, username: name, secretRef };
  }

  async deprovision(ctx: DriverContext, opts: DeprovisionOptions): Promise<{ exportLocation: string | null }> {
    const name = tenantDbName(ctx.tenant.id);
    await ctx.step('block-logins', async () => {
      if (await this.roleExists(name)) await this.admin.query(`ALTER ROLE ${ident(name)} NOLOGIN`);
      // Before the sessions go: once Silo owns the database, a session still open cannot re-set a
      // flag (IS_TEMPLATE, ALLOW_CONNECTIONS) or setting that would stop the export or the drop.
      if (await this.databaseExists(name)) await this.sealDatabase(name);
      await this.admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
      return true;
    });
    const exportLocation = await ctx.step('export', async () => {
      if (!(await this.databaseExists(name))) return null;
      return this.exportDatabase(name, opts.exportDir, ctx);
    });
    await ctx.step('drop-database', async () => {
      await this.dropDatabase(name);
      return true;
    });
    await ctx.step('drop-role', async () => {
      await this.admin.query(`DROP ROLE IF EXISTS ${ident(name)}; DROP ROLE IF EXISTS ${ident(frozenRoleName(name))}`);
      return true;
    });
    await ctx.step('revoke-cert', async () => {
      const certs = this.opts.tenantCerts;
      if (!certs) return true;
      const ref = opts.connection?.secretRef ?? `local:${this.secretName(ctx.tenant.id)}`;
      const secret = await this.opts.secretStore.get(ref).catch((err: unknown) => {
        if (err instanceof SiloError && err.code === ErrorCode.SECRET_NOT_FOUND) return null;
        throw err;
      });
      if (secret?.sslCert) {
        const serial = certSerial(secret.sslCert);
        if (!(await certs.revoke(this.opts.adminUrl, [serial], 'offboarded')).enforced) ctx.log(NOT_ENFORCED(serial));
      }
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
    const certs = this.opts.tenantCerts;
    const currentSerial = async () => {
      const { sslCert } = await this.opts.secretStore.get(connection.secretRef);
      return sslCert ? certSerial(sslCert) : null;
    };
    // The serial of the certificate being replaced, recorded before the secret changes (the rotate overwrites it).
    const previousSerial = await ctx.step('previous-cert', async () => (certs ? currentSerial() : null));
    await ctx.step('new-secret', async () => {
      // Retried after a crash between the rotate and its record: the new certificate is already there; another would go unrevoked.
      if (previousSerial && (await currentSerial()) !== previousSerial) return true;
      await this.opts.secretStore.rotate(connection.secretRef, { username: connection.username, password: generatePassword(), ...(await certs?.issue(connection.username)) });
      return true;
    });
    await ctx.step('apply', async () => {
      // Re-read: after a crash between the steps, the stored secret is the truth.
      const { password } = await this.opts.secretStore.get(connection.secretRef);
      await this.admin.query(`ALTER ROLE ${ident(connection.username)} PASSWORD ${literal(await scramVerifier(password))}`);
      return true;
    });
    await ctx.step('revoke-previous-cert', async () => {
      // Never the one in the secret: a job started before 'previous-cert' existed runs it after its rotate, and records the new one.
      if (certs && previousSerial && (await currentSerial()) !== previousSerial) {
        const { enforced } = await certs.revoke(this.opts.adminUrl, [previousSerial], 'superseded');
        if (!enforced) ctx.log(NOT_ENFORCED(previousSerial));
      }
      return true;
    });
    // Converges what the tenant may have changed since (its role's own defaults), and hands an
    // older tenant-owned database to Silo.
    await ctx.step('harden', async () => {
      // LOGIN left as it is: a rotation racing an offboarding must not let the tenant back in.
      await this.ensureRole(connection.username, ctx.tenant.tier, {});
      if (await this.databaseExists(connection.database)) {
        await this.sealDatabase(connection.database);
        await this.convergeSiloSchema(connection.database, (l) => ctx.log(l));
      }
      return true;
    });
    if (await this.databaseExists(connection.database)) await reassertWriteFreeze(this.adminUrlFor(connection.database), { database: connection.database, tenantRole: connection.username });
  }

  /** pg_database_size of each tenant database, one query (storage quotas). */
  measureStorage(databases: string[]): Promise<Map<string, number>> {
    return measureDatabaseSizes(this.admin, databases);
  }

  /** Refuses (or allows again) writes by the tenant's own SQL, past its storage quota (write-freeze.ts). */
  async setWriteFreeze(connection: TenantConnectionInfo, frozen: boolean): Promise<void> {
    const target = { database: connection.database, tenantRole: connection.username };
    if (frozen) await freezeWrites(this.adminUrlFor(connection.database), target, { marker: this.marker });
    else await unfreezeWrites(this.adminUrlFor(connection.database), target);
  }

  templateInfo(): TemplateDatabase {
    return { adminUrl: this.adminUrlFor(this.templateDatabase), database: this.templateDatabase, owner: this.templateOwner };
  }

  /** `t_<32 hex>` is the tenant id without its hyphens (pg-names.ts). */
  tenantIdOf(name: string): string | null {
    return tenantIdFromDbName(name);
  }

  /**
   * Tenant databases and roles of this Silo instance that exist on the server, for the reconciler;
   * `unsealed`: those of its databases a tenant could still ALTER (owned by the tenant, from before
   * Silo owned them) or whose flags, settings or grants are not the ones Silo sets.
   */
  async inventory(): Promise<DriverInventory> {
    const dbs = await this.admin.query<{ datname: string; unsealed: boolean }>(
      `SELECT d.datname, ${unsealedSql('$2')} AS unsealed FROM pg_database d WHERE d.datname ~ '^t_[0-9a-f]{32}$' AND ${oursDatabaseSql('$1', '$2')}`,
      [this.marker, this.databaseOwner]);
    const roles = await this.admin.query<{ rolname: string }>(`SELECT r.rolname FROM pg_roles r WHERE r.rolname ~ '^t_[0-9a-f]{32}$' AND ${oursRoleSql('r', '$1')}`, [this.marker]);
    const databases = dbs.rows.filter((r) => TENANT_DB_PATTERN.test(r.datname));
    return { databases: databases.map((r) => r.datname), roles: roles.rows.map((r) => r.rolname), unsealed: databases.filter((r) => r.unsealed).map((r) => r.datname) };
  }

  /** Drops a tenant database and role, but only if this instance made them (by a marker the tenant cannot write). */
  async dropOrphan(name: string): Promise<void> {
    if (!TENANT_DB_PATTERN.test(name)) throw new Error(`refusing to drop non-tenant object ${name}`);
    const owned = await this.admin.query(
      `SELECT 1 FROM pg_database d WHERE d.datname = $1 AND ${oursDatabaseSql('$2', '$3')}
       UNION ALL SELECT 1 FROM pg_roles r WHERE r.rolname = $1 AND ${oursRoleSql('r', '$2')}`, [name, this.marker, this.databaseOwner]);
    if (owned.rowCount === 0) throw new Error(`refusing to drop ${name}: not created by this Silo instance`);
    await this.dropDatabase(name);
    await this.admin.query(`DROP ROLE IF EXISTS ${ident(name)}; DROP ROLE IF EXISTS ${ident(frozenRoleName(name))}`);
  }

  /**
   * Silo owns the database; its flags, settings and grants are put back to what Silo sets: the
   * tenant role gets CONNECT, TEMPORARY and CREATE, nobody else anything. Idempotent; it also
   * converges a database created (by an older Silo) with the tenant as its owner.
   */
  async sealDatabase(name: string): Promise<void> {
    if (!TENANT_DB_PATTERN.test(name)) throw new Error(`not a tenant database: ${name}`);
    const db = ident(name);
    const c = await this.admin.connect();
    try {
      await inTransaction(c, async () => {
        const [{ owner }] = (await c.query<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [name])).rows;
        // First: from here on the tenant is no longer the owner, whatever it runs meanwhile.
        await c.query(`ALTER DATABASE ${db} OWNER TO ${ident(this.databaseOwner)}`);
        await c.query(`ALTER DATABASE ${db} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true CONNECTION LIMIT -1`);
        // Settings on the database (ALTER DATABASE … SET) only an owner or a superuser can write: once
        // Silo owns it they are Silo's (kept); on a database someone else owned, they go.
        if (owner !== this.databaseOwner) {
          const settings = await c.query<{ role: string | null }>(
            `SELECT r.rolname AS role FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole WHERE d.datname = $1`, [name]);
          for (const { role } of settings.rows) await c.query(role === null ? `ALTER DATABASE ${db} RESET ALL` : `ALTER ROLE ${ident(role)} IN DATABASE ${db} RESET ALL`);
        }
        // Whatever the tenant granted while it owned the database (e.g. CONNECT to another tenant).
        const grantees = await c.query<{ role: string | null }>(
          `SELECT DISTINCT r.rolname AS role FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
           WHERE d.datname = $1 AND a.grantee <> d.datdba`, [name]);
        await c.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
        for (const { role } of grantees.rows) if (role !== null) await c.query(`REVOKE ALL ON DATABASE ${db} FROM ${ident(role)} CASCADE`);
        if ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1) {
          // Write-frozen (write-freeze.ts): CONNECT only; unfreezing gives back what the freeze recorded.
          const frozen = await isWriteFrozen(c, name);
          await c.query(`GRANT ${frozen ? 'CONNECT' : 'CONNECT, TEMPORARY, CREATE'} ON DATABASE ${db} TO ${ident(name)}`);
        }
        await c.query(`COMMENT ON DATABASE ${db} IS ${literal(this.marker)}`);
      });
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    await this.admin.end();
  }

  secretName(tenantId: string): string {
    return `${this.opts.secretPrefix}${tenantId}`;
  }

  private async prepare(): Promise<void> {
    await this.admin.query(`CREATE ROLE ${ident(this.templateOwner)} NOLOGIN`).catch(ignore(DUPLICATE_OBJECT, '23505'));
    await this.admin.query(`CREATE ROLE ${ident(this.databaseOwner)} NOLOGIN NOINHERIT`).catch(ignore(DUPLICATE_OBJECT, '23505'));
    if (!(await this.databaseExists(this.templateDatabase))) {
      // The database itself stays owned by the admin: REASSIGN OWNED (in handOver) also moves shared
      // objects, so a template owned by the template role would be handed to the first tenant.
      await this.admin.query(`CREATE DATABASE ${ident(this.templateDatabase)}`).catch(ignore(DUPLICATE_DATABASE, '23505'));
    }
    // Granted on every start (idempotent): a process killed right after CREATE DATABASE left a
    // template its owner cannot migrate, and no tenant could be provisioned any more.
    const c = new Client({ connectionString: this.adminUrlFor(this.templateDatabase), options: ADMIN_SESSION_OPTIONS });
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
    // The tenant runtime's privileged path for ending backends that ignore cancels (terminator-role.ts).
    await ensureTerminatorRole(this.admin, { secretStore: this.opts.secretStore, instanceId: this.opts.instanceId ?? 'default', marker: this.marker, database: maintenance });
    await ensureTenantGroup(this.admin);
    if (this.opts.prepareTemplate) await this.opts.prepareTemplate(this.adminUrlFor(this.templateDatabase));
    // After the migrations (the baseline creates _silo_meta in public, as the template owner): clones get the new layout.
    await this.convergeSiloSchema(this.templateDatabase);
  }

  /**
   * Creates or converges the tenant's role: attributes, the tier's settings and the marker (a role's
   * COMMENT needs CREATEROLE, so the tenant cannot rewrite it). Every per-role default the tenant can
   * have set on itself (`ALTER ROLE current_user [IN DATABASE …] SET`, allowed for userset
   * parameters) is cleared first; superuser-only ones are not the tenant's and stay. temp_file_limit is superuser-only: the tenant can neither SET nor RESET it.
   * Without `password` the current one is kept; without `login`, LOGIN/NOLOGIN (a new role: LOGIN).
   */
  private async ensureRole(name: string, tier: TierSettings, opts: { password?: string; login?: boolean }): Promise<void> {
    // Every runtime replica's pool plus the reserve for migrations: the runtime, not the role, bounds the tenant.
    const limit = roleConnectionLimit(tier.connectionLimit, this.opts.connectionBudget);
    const attrs = `NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${limit}`
      + (opts.password === undefined ? '' : ` PASSWORD ${literal(await scramVerifier(opts.password))}`);
    const role = ident(name);
    const converge = async (create: boolean) => {
      const c = await this.admin.connect();
      try {
        await inTransaction(c, async () => {
          const login = create || opts.login !== undefined ? ((opts.login ?? true) ? 'LOGIN ' : 'NOLOGIN ') : '';
          await c.query(`${create ? 'CREATE' : 'ALTER'} ROLE ${role} WITH ${login}${attrs}`);
          await resetRoleSelfSettings(c, name);
          // Everything here is generated, not user input.
          await c.query([
            `COMMENT ON ROLE ${role} IS ${literal(this.marker)}`,
            `ALTER ROLE ${role} SET statement_timeout = ${Math.floor(tier.statementTimeoutMs)}`,
            `ALTER ROLE ${role} SET idle_in_transaction_session_timeout = ${IDLE_IN_TRANSACTION_TIMEOUT_MS}`,
            `ALTER ROLE ${role} SET temp_file_limit = ${literal(`${Math.floor(tier.tempFileLimitMb)}MB`)}`,
          ].join('; '));
        });
      } finally {
        c.release();
      }
    };
    if (await this.roleExists(name)) return converge(false);
    try {
      await converge(true);
    } catch (err) {
      ignore(DUPLICATE_OBJECT, '23505')(err);
      await converge(false); // lost a race
    }
  }

  private async ensureDatabase(name: string): Promise<void> {
    if (!(await this.databaseExists(name))) await this.createDatabase(name);
    // Always (re)applied, it is idempotent: a CREATE DATABASE whose client was killed still
    // completes on the server, leaving a database open to PUBLIC and without the marker; and a
    // tier change converges a database an older Silo gave to the tenant.
    await this.sealDatabase(name);
  }

  private async createDatabase(name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.admin.query(`CREATE DATABASE ${ident(name)} OWNER ${ident(this.databaseOwner)} TEMPLATE ${ident(this.templateDatabase)}`);
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
  private async handOver(name: string, log?: (line: string) => void): Promise<void> {
    // Session options: immune to settings on the database (ALTER DATABASE … SET), such as
    // default_transaction_read_only, that an older tenant-owned database may still carry.
    const c = new Client({ connectionString: this.adminUrlFor(name), options: ADMIN_SESSION_OPTIONS });
    await c.connect();
    try {
      const grant = (await isWriteFrozen(c, name)) ? 'USAGE' : 'ALL'; // write-frozen: CREATE comes back with the unfreeze
      await c.query(`REASSIGN OWNED BY ${ident(this.templateOwner)} TO ${ident(name)}; REVOKE ALL ON SCHEMA public FROM PUBLIC; GRANT ${grant} ON SCHEMA public TO ${ident(name)}`);
      // Silo's bookkeeping (schema silo) stays Silo's: a clone of an older template had it in public, now the tenant's.
      report(await ensureSiloSchema(c, { owner: this.databaseOwner }), name, log);
    } finally {
      await c.end();
    }
  }

  /**
   * Schema `silo` (silo-schema.ts) in a tenant database or the template, as the superuser: an
   * older database's ledger moved out of the tenant's `public`. Provisioning, credential rotation and
   * the template's preparation run it; the migration runner cannot (it is the tenant role).
   */
  private async convergeSiloSchema(database: string, log?: (line: string) => void): Promise<void> {
    const c = new Client({ connectionString: this.adminUrlFor(database), options: ADMIN_SESSION_OPTIONS });
    c.on('error', () => undefined); // a session ended under it surfaces through the pending query
    await c.connect();
    try {
      report(await ensureSiloSchema(c, { owner: this.databaseOwner }), database, log);
    } finally {
      await c.end();
    }
  }

  /**
   * pg_dump -Fc (the tool pgDumpBin picks) into `<dir>/<tenant>-<time>.dump`, owner-only: written as `.partial` (created 0600
   * before pg_dump opens it, so no other user can read it mid-write), synced, then renamed. On any
   * failure (no tool, version mismatch, non-zero exit, abort) the partial file is removed; partial
   * files a killed worker left for this tenant are removed first (one job per tenant runs at a time).
   * A directory this creates is 0700; an existing one keeps its mode (it may be shared), with a warning.
   */
  private async exportDatabase(name: string, dir: string, ctx: DriverContext): Promise<string> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const dirMode = (await stat(dir)).mode & 0o777;
    if (dirMode & 0o077) ctx.log(`export directory ${dir} is ${dirMode.toString(8)}, not 0700: other users can list export names (the files are 0600)`);
    const prefix = `${ctx.tenant.id}-`;
    for (const f of await readdir(dir)) if (f.startsWith(prefix) && f.endsWith('.dump.partial')) await rm(join(dir, f), { force: true });

    const file = join(dir, `${prefix}${new Date().toISOString().replace(/[:.]/g, '-')}.dump`);
    const partial = `${file}.partial`;
    const configured = this.opts.pgDumpBin ?? PG_DUMP_AUTO;
    type DumpOutcome = { tool: string; code: number | null; notFound: boolean; tail: string };
    const u = new URL(this.adminUrlFor(name));
    // Credentials go through the environment, never argv (visible in ps); nothing else of ours does.
    // The URL's TLS settings (sslmode, sslrootcert, ...) go along too: libpq reads them from the environment.
    const env = childEnv(this.opts.parentEnv ?? process.env, {}, { PGHOST: u.hostname, PGPORT: u.port || '5432', PGUSER: decodeURIComponent(u.username || 'postgres'), PGPASSWORD: decodeURIComponent(u.password), PGDATABASE: name, ...libpqTlsEnv(urlTls(u.toString())) });
    const native = async (bin: string): Promise<DumpOutcome> => {
      const stderr: string[] = [];
      const { code, error } = await new Promise<{ code: number | null; error?: NodeJS.ErrnoException }>((resolve) => {
        const child = spawn(bin, ['--format=custom', '--no-password', `--file=${partial}`], { env, stdio: ['ignore', 'ignore', 'pipe'], signal: ctx.signal });
        let failure: NodeJS.ErrnoException | undefined;
        child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
        // Not started (no such binary): no 'close' follows. Aborted: wait for the exit, so nothing writes the file after it is removed.
        child.on('error', (err: NodeJS.ErrnoException) => (failure = err, child.pid === undefined && resolve({ code: null, error: err })));
        child.on('close', (c) => resolve({ code: c, error: failure }));
      });
      const notFound = error?.code === 'ENOENT' || (!!error && code === null && !ctx.signal?.aborted);
      return { tool: bin, code, notFound, tail: stderr.join('').trim().split('\n').slice(-3).join(' | ') };
    };
    // The WebAssembly pg_dump 18 from npm (bundled-pg-dump.ts): no PostgreSQL client needed on the machine.
    const bundled = async (): Promise<DumpOutcome> => {
      const r = await bundledPgDump({ url: u.toString(), file: partial, args: ['--format=custom'], signal: ctx.signal });
      return { tool: `bundled pg_dump ${BUNDLED_PG_DUMP_MAJOR}`, code: r.code, notFound: false, tail: r.stderr.trim().split('\n').slice(-3).join(' | ') };
    };
    const mismatch = (o: DumpOutcome) => o.code !== 0 && /server version mismatch/i.test(o.tail);
    try {
      await (await open(partial, 'wx', 0o600)).close();
      let outcome = configured === BUNDLED_PG_DUMP ? await bundled() : await native(configured === PG_DUMP_AUTO ? 'pg_dump' : configured);
      // auto: the machine's pg_dump when it can dump this server, else the bundled one.
      if (configured === PG_DUMP_AUTO && !ctx.signal?.aborted && (outcome.notFound || mismatch(outcome))) {
        ctx.log(`pg_dump on PATH ${outcome.notFound ? 'not found' : 'is older than the server'}; exporting ${name} with the bundled pg_dump ${BUNDLED_PG_DUMP_MAJOR}`);
        outcome = await bundled();
      }
      const { tool, code, tail } = outcome;
      if (outcome.notFound) {
        throw new SiloError(ErrorCode.EXPORT_TOOL_UNAVAILABLE, `pg_dump not found (${tool}); set PG_DUMP_BIN (a path, or ${BUNDLED_PG_DUMP}). The tenant's data was kept.`, 500);
      }
      if (ctx.signal?.aborted) throw new SiloError(ErrorCode.EXPORT_FAILED, 'pg_dump aborted (the worker is stopping). The tenant\'s data was kept.', 500);
      if (code !== 0) {
        throw new SiloError(mismatch(outcome) ? ErrorCode.EXPORT_TOOL_UNAVAILABLE : ErrorCode.EXPORT_FAILED, `pg_dump failed (${tool}, exit ${code}): ${tail}. The tenant's data was kept.`, 500);
      }
      const h = await open(partial, 'r+');
      try {
        await h.chmod(0o600); // pg_dump reopens with O_TRUNC (mode kept); this covers a pg_dump that replaced the file
        await h.sync();
      } finally {
        await h.close();
      }
      const { size } = await stat(partial);
      if (size === 0) throw new SiloError(ErrorCode.EXPORT_FAILED, 'pg_dump exited 0 but wrote nothing. The tenant\'s data was kept.', 500);
      await rename(partial, file);
      await syncDir(dir);
      ctx.log(`exported ${name} to ${file} (${size} bytes)`);
      return file;
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }

  /** DROP DATABASE, after what could stop it: template flag, prepared transactions left in it. */
  private async dropDatabase(name: string): Promise<void> {
    if (!(await this.databaseExists(name))) return;
    await this.admin.query(`ALTER DATABASE ${ident(name)} WITH IS_TEMPLATE false ALLOW_CONNECTIONS true`);
    // WITH (FORCE) ends sessions but not prepared transactions; those can only be rolled back from
    // inside the database (possible only where max_prepared_transactions > 0; the default is 0).
    const prepared = await this.admin.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = $1', [name]);
    if (prepared.rowCount) {
      const c = new Client({ connectionString: this.adminUrlFor(name), options: ADMIN_SESSION_OPTIONS });
      await c.connect();
      try {
        for (const { gid } of prepared.rows) await c.query(`ROLLBACK PREPARED ${literal(gid)}`);
      } finally {
        await c.end();
      }
    }
    await this.admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
  }

  private async databaseExists(name: string): Promise<boolean> {
    return (await this.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  }

  private async roleExists(name: string): Promise<boolean> {
    return (await this.admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
  }
}

/**
 * Whether database `d` is this instance's, by markers a tenant cannot have written: the database's
 * COMMENT only when its owner is Silo's role or a superuser (an owner may COMMENT, and before Silo
 * owned tenant databases the tenant was the owner), else the COMMENT of the same-named role.
 */
function oursDatabaseSql(marker: string, owner: string): string {
  return `((shobj_description(d.oid, 'pg_database') = ${marker} AND (pg_get_userbyid(d.datdba) = ${owner} OR (SELECT rolsuper FROM pg_roles WHERE oid = d.datdba)))
    OR EXISTS (SELECT 1 FROM pg_roles tr WHERE tr.rolname = d.datname AND ${oursRoleSql('tr', marker)}))`;
}

/** A role's COMMENT needs CREATEROLE, which tenant roles never have. */
function oursRoleSql(alias: string, marker: string): string {
  return `shobj_description(${alias}.oid, 'pg_authid') = ${marker}`;
}

/** Anything sealDatabase would change on database `d` (its settings go only with a foreign owner, caught here). */
function unsealedSql(owner: string): string {
  const tenantRole = '(SELECT oid FROM pg_roles WHERE rolname = d.datname)';
  return `(pg_get_userbyid(d.datdba) <> ${owner} OR d.datistemplate OR NOT d.datallowconn OR d.datconnlimit <> -1 OR d.datacl IS NULL
    OR EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee <> d.datdba AND a.grantee IS DISTINCT FROM ${tenantRole}))`;
}

/** A converge's changes and problems go to the job's log (when there is one); the next converge retries what was left. */
function report(r: SiloSchemaResult, database: string, log?: (line: string) => void): void {
  if (!log) return;
  if (r.skipped) log(`schema silo of ${database} not converged: ${r.skipped}`);
  for (const c of r.changes) log(`${database}: ${c}`);
  for (const p of r.problems) log(`${database}: ${p}`);
}

function ignore(...codes: string[]) {
  return (err: unknown) => {
    if (!codes.includes((err as PgError).code ?? '')) throw err;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** fsync a directory, so a rename in it survives a crash (best effort: not every platform allows it). */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r').catch(() => null);
  if (!h) return;
  await h.sync().catch(() => undefined);
  await h.close();
}
