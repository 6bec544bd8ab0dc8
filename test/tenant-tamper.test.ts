import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { SECRET_STORE } from '../control-plane/common/tokens';
import { ReconcilerService } from '../control-plane/operations/reconciler.service';
import { migrateTenant } from '../migrations';
import { shippedTenantMigrations } from './support/tenant-migrations';
import type { TenantMigration } from '../migrations';
import { tenantDbName } from '../provisioning/local/pg-names';
import { TenantConnectionInfo } from '../provisioning/provisioning-driver';
import { SecretStore } from '../provisioning/secrets/secret-store';
import { DEFAULT_TIERS } from '../provisioning/tiers';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { testDatabaseUrl } from './support/env';
import { adminQuery, pgDumpCanExport } from './support/test-db';

/**
 * A tenant attacking its own lifecycle with nothing but its own role's SQL (credentials from the
 * secret store, as the runtime uses them): every change it tries is refused or undone, and
 * offboarding, tier changes, rotation, migrations and the reconciler still do their job.
 */
describe('a tenant cannot block its lifecycle or lift its limits (real Postgres, real jobs)', () => {
  let t: TestControlPlane;
  let reconciler: ReconcilerService;
  let marker: string;
  const dir = mkdtempSync(join(tmpdir(), 'silo-tamper-'));
  const tiersFile = join(dir, 'tiers.json');
  const foreign = tenantDbName('0000f0e1-0000-4000-8000-000000000001');
  const orphan = tenantDbName('0000f0e1-0000-4000-8000-000000000002');

  beforeAll(async () => {
    const { name: _n, ...starter } = DEFAULT_TIERS.starter;
    writeFileSync(tiersFile, JSON.stringify({ tiers: { tiny: { ...starter, tempFileLimitMb: 1 } } }));
    t = await startTestControlPlane({ EXPORT_DIR: join(dir, 'exports'), TIERS_FILE: tiersFile, JOB_MAX_ATTEMPTS: '3' });
    reconciler = t.cp.app.get(ReconcilerService);
    marker = `silo-instance:${t.db.name}`;
  });
  afterAll(async () => {
    for (const name of [foreign, orphan]) {
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await adminQuery(`DROP ROLE IF EXISTS "${name}"`);
    }
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function create(slug: string, tier = 'tiny'): Promise<{ id: string; connection: TenantConnectionInfo }> {
    const created = await t.api('POST', '/v1/tenants', { name: slug, slug, tier });
    expect(created.status).toBe(202);
    await t.drainJobs();
    const shown = await t.api('GET', `/v1/tenants/${slug}`);
    expect(shown.body.status).toBe('active');
    const [conn] = await t.sql<{ secret_ref: string }>('SELECT secret_ref FROM tenant_connections WHERE tenant_id = $1', [shown.body.id]);
    return { id: shown.body.id, connection: { ...shown.body.connection, secretRef: conn.secret_ref } };
  }

  /** A session as the tenant's own role, with the password Silo stored for it. */
  async function asTenant(conn: TenantConnectionInfo): Promise<Client> {
    const { password } = await (t.cp.app.get(SECRET_STORE) as SecretStore).get(conn.secretRef);
    const c = new Client({ host: conn.host, port: conn.port, user: conn.username, password, database: conn.database, connectionTimeoutMillis: 5_000 });
    await c.connect();
    c.on('error', () => undefined); // a session left open is ended by the offboarding or the cleanup
    return c;
  }

  /** 'ok', or the SQLSTATE the statement failed with. */
  async function attempt(c: Client, sql: string): Promise<string> {
    try {
      await c.query(sql);
      return 'ok';
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  async function databaseState(name: string) {
    const [row] = await adminQuery<Record<string, unknown>>(
      `SELECT pg_get_userbyid(d.datdba) AS owner, d.datistemplate AS is_template, d.datallowconn AS allow_connections, d.datconnlimit AS connection_limit,
              shobj_description(d.oid, 'pg_database') AS comment,
              (SELECT count(*)::int FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0) AS database_settings,
              EXISTS (SELECT 1 FROM aclexplode(d.datacl) a WHERE a.grantee = 0) AS public_access
       FROM pg_database d WHERE d.datname = $1`, [name]);
    return row;
  }

  const SEALED = { owner: 'silo_tenant_db_owner', is_template: false, allow_connections: true, connection_limit: -1, database_settings: 0, public_access: false };

  async function roleConfig(name: string): Promise<string[]> {
    const [row] = await adminQuery<{ config: string[] | null }>(`SELECT (SELECT setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0) AS config FROM pg_roles r WHERE r.rolname = $1`, [name]);
    return [...(row.config ?? [])].sort();
  }

  async function jobsOf(tenantId: string) {
    return t.sql<{ status: string; attempts: number; last_error: string | null }>('SELECT status, attempts, last_error FROM jobs WHERE tenant_id = $1 ORDER BY created_at', [tenantId]);
  }

  /** What a tenant that owned its database could do to it (and could, before Silo owned tenant databases). */
  const OWNER_TAMPERING = (db: string) => [
    `ALTER DATABASE "${db}" SET default_transaction_read_only = on`,
    `ALTER DATABASE "${db}" SET statement_timeout = 1`,
    `ALTER DATABASE "${db}" SET lock_timeout = 1`,
    `ALTER DATABASE "${db}" SET idle_in_transaction_session_timeout = 1`,
    // Would make a superuser session on this database run as the tenant.
    `ALTER DATABASE "${db}" SET role = "${db}"`,
    `ALTER DATABASE "${db}" SET search_path = nowhere`,
    `ALTER ROLE ALL IN DATABASE "${db}" SET default_transaction_read_only = on`,
    `COMMENT ON DATABASE "${db}" IS 'silo-instance:someone-else'`,
    `GRANT CONNECT, TEMPORARY ON DATABASE "${db}" TO PUBLIC`,
    `ALTER DATABASE "${db}" CONNECTION LIMIT 0`,
    `ALTER DATABASE "${db}" IS_TEMPLATE true`,
  ];

  /**
   * An owner cannot disallow connections to the database it is connected to (22023), but could from
   * any other database it reaches (template1, on a server Silo does not run): done as the admin here.
   */
  async function disallowConnections(db: string): Promise<void> {
    await adminQuery(`ALTER DATABASE "${db}" ALLOW_CONNECTIONS false`);
  }

  /** What any role may set on itself (userset parameters): it only reaches the tenant's own sessions, and Silo resets it. */
  const ROLE_TAMPERING = (db: string) => [
    'ALTER ROLE current_user SET default_transaction_read_only = on',
    'ALTER ROLE current_user SET statement_timeout = 1',
    'ALTER ROLE current_user SET idle_in_transaction_session_timeout = 1',
    'ALTER ROLE current_user SET lock_timeout = 1',
    'ALTER ROLE current_user SET search_path = nowhere',
    `ALTER ROLE current_user IN DATABASE "${db}" SET default_transaction_read_only = on`,
  ];

  /** Gives the database back to the tenant role, as Silo did before it owned tenant databases. */
  async function makeLegacy(db: string): Promise<void> {
    await adminQuery(`ALTER DATABASE "${db}" OWNER TO "${db}"`);
  }

  it('refuses every change a tenant tries on its own database and role, and leaves it sealed', async () => {
    const { connection } = await create('alpha');
    const db = connection.database;
    expect(await databaseState(db)).toEqual({ ...SEALED, comment: marker });
    const c = await asTenant(connection);
    const outcomes: Record<string, string> = {};
    for (const sql of [
      ...OWNER_TAMPERING(db).filter((q) => !q.startsWith('GRANT')),
      `ALTER DATABASE "${db}" ALLOW_CONNECTIONS false`,
      `ALTER DATABASE "${db}" RENAME TO "${db}_x"`,
      `ALTER DATABASE "${db}" OWNER TO "${db}"`,
      `ALTER DATABASE "${db}" RESET ALL`,
      'DROP DATABASE template1',
      'ALTER SCHEMA public OWNER TO current_user',
      `COMMENT ON ROLE "${db}" IS 'silo-instance:someone-else'`,
      `ALTER ROLE "${db}" CONNECTION LIMIT 1000`,
      `ALTER ROLE "${db}" VALID UNTIL 'infinity'`,
      `ALTER ROLE "${db}" CREATEROLE`,
      'ALTER ROLE current_user SET temp_file_limit = -1',
      'ALTER ROLE current_user RESET temp_file_limit',
      `ALTER ROLE current_user IN DATABASE "${db}" SET temp_file_limit = -1`,
      'SET temp_file_limit = -1',
      'CREATE PUBLICATION everything FOR ALL TABLES',
      "CREATE SUBSCRIPTION s CONNECTION 'dbname=postgres' PUBLICATION p WITH (connect = false)",
      "SELECT pg_create_logical_replication_slot('s', 'pgoutput')",
      'CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION pg_catalog.now()',
    ]) outcomes[sql] = await attempt(c, sql);
    // 42501 insufficient_privilege everywhere; the event trigger fails on the same check (42501) before its function.
    expect(Object.entries(outcomes).filter(([, code]) => code !== '42501')).toEqual([]);
    expect(await attempt(c, `ALTER ROLE "${db}" RENAME TO "${db}_x"`)).toBe('0A000'); // and 42501 from any other session
    // Accepted with a warning ("no privileges were granted"): a non-owner grants nothing.
    expect(await attempt(c, `GRANT CONNECT, TEMPORARY ON DATABASE "${db}" TO PUBLIC`)).toBe('ok');
    // A prepared transaction would survive DROP DATABASE … WITH (FORCE) (the driver rolls them back
    // first); with max_prepared_transactions = 0, the default and what this suite runs on, there are none.
    const [{ max_prepared_transactions: maxPrepared }] = (await c.query('SHOW max_prepared_transactions')).rows;
    if (maxPrepared === '0') expect(await attempt(c, "BEGIN; CREATE TABLE held (i int); PREPARE TRANSACTION 'held'")).toBe('55000');
    await attempt(c, 'ROLLBACK');

    // What a tenant needs still works: schemas, tables in public, temporary tables, trusted extensions.
    for (const sql of ['CREATE SCHEMA app', 'CREATE TABLE app.things (id int)', 'CREATE TABLE public.notes (id int)', 'CREATE TEMP TABLE scratch (id int)', 'CREATE EXTENSION pgcrypto']) {
      expect([sql, await attempt(c, sql)]).toEqual([sql, 'ok']);
    }
    await c.end();
    expect(await databaseState(db)).toEqual({ ...SEALED, comment: marker });
  });

  it("enforces the tier's temp_file_limit; the tenant can neither SET nor RESET it", async () => {
    const { connection } = await create('beta');
    const spill = "SET work_mem = '64kB'; SELECT count(*) FROM (SELECT g FROM generate_series(1, 300000) g ORDER BY g DESC) s";
    const c = await asTenant(connection);
    expect((await c.query('SHOW temp_file_limit')).rows[0].temp_file_limit).toBe('1MB');
    expect(await attempt(c, spill)).toBe('53400'); // configuration_limit_exceeded: temporary file size exceeds temp_file_limit
    expect(await attempt(c, 'SET temp_file_limit = -1')).toBe('42501');
    expect(await attempt(c, 'ALTER ROLE current_user RESET ALL')).toBe('ok'); // resets only what the role itself may set
    await c.end();
    const again = await asTenant(connection);
    expect(await attempt(again, spill)).toBe('53400');
    await again.end();
    expect(await roleConfig(connection.username)).toContain('temp_file_limit=1MB');
  });

  it('applies a tier change after the tenant set every default it can on its role', async () => {
    const { id, connection } = await create('gamma');
    const c = await asTenant(connection);
    for (const sql of ROLE_TAMPERING(connection.database)) expect([sql, await attempt(c, sql)]).toEqual([sql, 'ok']);
    await c.end();
    // A superuser-only setting put on the role by the platform (not by the tenant, which cannot): kept.
    await adminQuery(`ALTER ROLE "${connection.username}" SET log_statement = 'ddl'`);

    expect((await t.api('PATCH', '/v1/tenants/gamma', { tier: 'pro' })).status).toBe(200);
    await t.drainJobs();
    expect((await jobsOf(id)).map((j) => j.status)).toEqual(['succeeded', 'succeeded']);
    const [role] = await adminQuery<{ rolconnlimit: number }>('SELECT rolconnlimit FROM pg_roles WHERE rolname = $1', [connection.username]);
    expect(role.rolconnlimit).toBe(DEFAULT_TIERS.pro.connectionLimit + 2); // the new tier's cap × 1 replica + reserve 2 (defaults)
    expect(await roleConfig(connection.username)).toEqual(
      [`idle_in_transaction_session_timeout=60000`, 'log_statement=ddl', `statement_timeout=${DEFAULT_TIERS.pro.statementTimeoutMs}`, `temp_file_limit=${DEFAULT_TIERS.pro.tempFileLimitMb}MB`].sort());
    expect(await adminQuery('SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase <> 0', [connection.username])).toEqual([]);
    const after = await asTenant(connection);
    expect(await attempt(after, 'CREATE TABLE written_after (id int)')).toBe('ok');
    expect((await after.query('SHOW temp_file_limit')).rows[0].temp_file_limit).toBe('8GB');
    await after.end();
  });

  it('runs tenant migrations as the tenant even with a read-only, 1 ms, search_path-to-nowhere role', async () => {
    const { id, connection } = await create('delta');
    const c = await asTenant(connection);
    for (const sql of ROLE_TAMPERING(connection.database)) await c.query(sql);
    await c.end();
    const migration: TenantMigration = { version: '20990101000000', name: 'tamper_probe', up: 'CREATE TABLE tamper_probe (id int); SELECT pg_sleep(0.05)', down: 'DROP TABLE tamper_probe', transactional: true, checksum: 'x', file: 'x.sql' };
    const result = await migrateTenant({ id, slug: 'delta', connection }, { secretStore: t.cp.app.get(SECRET_STORE) as SecretStore }, { migrations: [...shippedTenantMigrations(), migration] });
    expect(result).toMatchObject({ outcome: 'migrated', to: '20990101000000' });
    const [owner] = await adminQuery<{ owner: string; schema: string }>(
      `SELECT pg_get_userbyid(relowner) AS owner, relnamespace::regnamespace::text AS schema FROM pg_class WHERE relname = 'tamper_probe'`, [], connection.database);
    expect(owner).toEqual({ owner: connection.username, schema: 'public' });
  });

  it('rotates credentials after the tenant tampered with its role, and clears what it set', async () => {
    const { id, connection } = await create('epsilon');
    const c = await asTenant(connection);
    for (const sql of ROLE_TAMPERING(connection.database)) await c.query(sql);
    await c.end();
    const before = (await (t.cp.app.get(SECRET_STORE) as SecretStore).get(connection.secretRef)).password;
    expect((await t.api('POST', '/v1/tenants/epsilon/rotate-credentials')).status).toBe(202);
    await t.drainJobs();
    expect((await jobsOf(id)).map((j) => j.status)).toEqual(['succeeded', 'succeeded']);
    expect((await (t.cp.app.get(SECRET_STORE) as SecretStore).get(connection.secretRef)).password).not.toBe(before);
    const after = await asTenant(connection);
    expect(await attempt(after, 'CREATE TABLE written_after (id int)')).toBe('ok');
    await after.end();
    expect(await roleConfig(connection.username)).not.toContain('default_transaction_read_only=on');
  });

  it('converges a tenant-owned database (made before Silo owned them) on a tier change, whatever its tenant set on it', async () => {
    const { id, connection } = await create('zeta');
    const db = connection.database;
    await makeLegacy(db);
    const c = await asTenant(connection);
    await c.query('CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)');
    for (const sql of OWNER_TAMPERING(db)) expect([sql, await attempt(c, sql)]).toEqual([sql, 'ok']);
    await c.end();
    await disallowConnections(db);
    expect(await databaseState(db)).toMatchObject({ owner: db, is_template: true, allow_connections: false, comment: 'silo-instance:someone-else', public_access: true });

    expect((await t.api('PATCH', '/v1/tenants/zeta', { tier: 'pro' })).status).toBe(200);
    await t.drainJobs();
    expect((await jobsOf(id)).map((j) => [j.status, j.last_error])).toEqual([['succeeded', null], ['succeeded', null]]);
    expect(await databaseState(db)).toEqual({ ...SEALED, comment: marker });
    const after = await asTenant(connection);
    expect((await after.query('SELECT current_user AS u, count(*)::int AS n FROM kept')).rows).toEqual([{ u: db, n: 1 }]);
    expect(await attempt(after, 'INSERT INTO kept VALUES (2)')).toBe('ok');
    expect(await attempt(after, `ALTER DATABASE "${db}" IS_TEMPLATE true`)).toBe('42501');
    await after.end();
  });

  it('offboards to deleted after its tenant set every flag and setting it could on a database it owned', async () => {
    const { id, connection } = await create('eta');
    const db = connection.database;
    await makeLegacy(db);
    const c = await asTenant(connection);
    for (const sql of [...OWNER_TAMPERING(db), ...ROLE_TAMPERING(db)]) expect([sql, await attempt(c, sql)]).toEqual([sql, 'ok']);
    await disallowConnections(db);
    // DROP DATABASE … WITH (FORCE) does not end prepared transactions; where the server allows them
    // (max_prepared_transactions > 0; 0 by default) the tenant leaves one behind.
    if ((await c.query('SHOW max_prepared_transactions')).rows[0].max_prepared_transactions !== '0') {
      await c.query(`BEGIN; CREATE TABLE held (i int); PREPARE TRANSACTION 'held-${db}'`);
    }
    // The session stays open through the offboarding, as a stuck client would.

    await t.api('POST', '/v1/tenants/eta/suspend', {});
    expect((await t.api('POST', '/v1/tenants/eta/offboard', {})).body.status).toBe('deprovisioning');
    await t.drainJobs();
    if (!(await pgDumpCanExport())) {
      // No pg_dump for this server: offboarding waits at the export; the sealing before it still happened.
      expect(await databaseState(db)).toMatchObject(SEALED);
      return;
    }
    expect((await jobsOf(id)).map((j) => [j.status, j.last_error])).toEqual([['succeeded', null], ['succeeded', null]]);
    expect((await t.api('GET', '/v1/tenants/eta')).body.status).toBe('deleted');
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [db])).toEqual([]);
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [db])).toEqual([]);
    await c.end().catch(() => undefined);
  });

  it('reconciler: seals a tenant-owned database whose tenant rewrote its comment, without calling it missing', async () => {
    const { connection } = await create('theta');
    const db = connection.database;
    await makeLegacy(db);
    const c = await asTenant(connection);
    for (const sql of [`COMMENT ON DATABASE "${db}" IS NULL`, `ALTER DATABASE "${db}" SET default_transaction_read_only = on`, `ALTER DATABASE "${db}" IS_TEMPLATE true`]) await c.query(sql);
    await c.end();

    const { drift } = await reconciler.run({ apply: false });
    expect(drift.filter((d) => d.object === db)).toEqual([expect.objectContaining({ kind: 'unsealed_database', destructive: false, repaired: true })]);
    expect(drift.filter((d) => d.kind === 'missing_database')).toEqual([]);
    expect(await databaseState(db)).toEqual({ ...SEALED, comment: marker });
    expect((await reconciler.run({ apply: false })).drift).toEqual([]);
  });

  it("reconciler: drops nothing on the strength of a comment a tenant wrote, and still drops its own orphans", async () => {
    // Another Silo instance's tenant, owning its database, wrote this instance's marker on it.
    await adminQuery(`CREATE ROLE "${foreign}" LOGIN`);
    await adminQuery(`COMMENT ON ROLE "${foreign}" IS 'silo-instance:someone-else'`);
    await adminQuery(`CREATE DATABASE "${foreign}" OWNER "${foreign}"`);
    const u = new URL(testDatabaseUrl());
    const c = new Client({ host: u.hostname, port: Number(u.port || 5432), user: foreign, database: foreign });
    await c.connect();
    await c.query(`COMMENT ON DATABASE "${foreign}" IS '${marker}'`);
    await c.end();
    // This instance's orphan (a tenant the control database no longer knows), whose tenant hid the database's comment.
    await adminQuery(`CREATE ROLE "${orphan}" LOGIN`);
    await adminQuery(`COMMENT ON ROLE "${orphan}" IS '${marker}'`);
    await adminQuery(`CREATE DATABASE "${orphan}" OWNER "${orphan}"`);
    await adminQuery(`COMMENT ON DATABASE "${orphan}" IS 'silo-instance:someone-else'`);

    const applied = await reconciler.run({ apply: true });
    expect(applied.drift.filter((d) => d.object === foreign)).toEqual([]);
    expect(applied.drift.filter((d) => d.object === orphan)).toEqual([expect.objectContaining({ kind: 'orphan_database', repaired: true })]);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [foreign])).toHaveLength(1);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [orphan])).toEqual([]);
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [orphan])).toEqual([]);
  });
});
