import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { PROVISIONING_DRIVER, SECRET_STORE } from '../control-plane/common/tokens';
import { ReconcilerService } from '../control-plane/operations/reconciler.service';
import { StorageQuotaService } from '../control-plane/tenants/storage-quota.service';
import { frozenRoleName } from '../provisioning/local/write-freeze';
import type { ProvisioningDriver, TenantConnectionInfo } from '../provisioning/provisioning-driver';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import { DEFAULT_TIERS } from '../provisioning/tiers';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { adminQuery, pgDumpCanExport } from './support/test-db';

/**
 * The write freeze a tenant past its storage quota gets (provisioning/local/write-freeze.ts),
 * attacked with nothing but the tenant's own role's SQL, and undone exactly.
 */
describe('storage quota: write freeze (real Postgres, local driver)', () => {
  let t: TestControlPlane;
  let driver: Required<ProvisioningDriver>;
  const dir = mkdtempSync(join(tmpdir(), 'silo-storage-'));
  const tiersFile = join(dir, 'tiers.json');
  const frozenRoles: string[] = [];

  beforeAll(async () => {
    const { name: _n, ...starter } = DEFAULT_TIERS.starter;
    writeFileSync(tiersFile, JSON.stringify({ tiers: { small: { ...starter, storageQuotaMb: 12 }, roomy: { ...starter, storageQuotaMb: 1024 }, tiny: { ...starter, storageQuotaMb: 1 } } }));
    t = await startTestControlPlane({ EXPORT_DIR: join(dir, 'exports'), TIERS_FILE: tiersFile, JOB_MAX_ATTEMPTS: '2' });
    driver = t.cp.app.get(PROVISIONING_DRIVER) as Required<ProvisioningDriver>;
  });
  afterAll(async () => {
    await t.close();
    for (const r of frozenRoles) await adminQuery(`DROP ROLE IF EXISTS "${r}"`);
    rmSync(dir, { recursive: true, force: true });
  });

  async function create(slug: string, tier = 'small'): Promise<{ id: string; connection: TenantConnectionInfo }> {
    const created = await t.api('POST', '/v1/tenants', { name: slug, slug, tier });
    expect(created.status).toBe(202);
    await t.drainJobs();
    const shown = await t.api('GET', `/v1/tenants/${slug}`);
    expect(shown.body.status).toBe('active');
    const [conn] = await t.sql<{ secret_ref: string }>('SELECT secret_ref FROM tenant_connections WHERE tenant_id = $1', [shown.body.id]);
    frozenRoles.push(frozenRoleName(shown.body.connection.username));
    return { id: shown.body.id, connection: { ...shown.body.connection, secretRef: conn.secret_ref } };
  }

  async function asTenant(conn: TenantConnectionInfo): Promise<Client> {
    const { password } = await (t.cp.app.get(SECRET_STORE) as SecretStore).get(conn.secretRef);
    const c = new Client({ host: conn.host, port: conn.port, user: conn.username, password, database: conn.database, connectionTimeoutMillis: 5_000 });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }

  /** 'ok', or the SQLSTATE the statement failed with (each in its own transaction). */
  async function attempt(c: Client, sql: string): Promise<string> {
    try {
      await c.query(sql);
      return 'ok';
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      return (err as { code?: string }).code ?? String(err);
    }
  }

  /** Owners, ACLs (as grantee/privilege/grantor/grantable), SECURITY DEFINER of everything in the database that is not the catalog's, and the database's own ACL. */
  async function privileges(db: string): Promise<string[]> {
    const acl = (expr: string) => `(SELECT string_agg(e, ' ' ORDER BY e) FROM (SELECT format('%s/%s/%s/%s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, pg_get_userbyid(a.grantor), a.is_grantable) AS e FROM aclexplode(${expr}) a) x)`;
    const rows = await adminQuery<{ line: string }>(
      `SELECT format('rel %s owner=%s acl=%s', c.oid::regclass, pg_get_userbyid(c.relowner), ${acl(`coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))`)}) AS line
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
       UNION ALL
       SELECT format('col %s.%s acl=%s', at.attrelid::regclass, at.attname, ${acl('at.attacl')}) FROM pg_attribute at JOIN pg_class c ON c.oid = at.attrelid WHERE at.attacl IS NOT NULL AND c.relnamespace <> 'pg_catalog'::regnamespace
       UNION ALL
       SELECT format('fn %s owner=%s secdef=%s acl=%s', p.oid::regprocedure, pg_get_userbyid(p.proowner), p.prosecdef, ${acl(`coalesce(p.proacl, acldefault('f', p.proowner))`)})
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema')
       UNION ALL
       SELECT format('catfn %s acl=%s', p.oid::regprocedure, ${acl(`coalesce(p.proacl, acldefault('f', p.proowner))`)}) FROM pg_proc p WHERE p.proname IN ('lo_creat','lo_create','lo_from_bytea','lo_import','pg_logical_emit_message')
       UNION ALL
       SELECT format('nsp %s owner=%s acl=%s', n.nspname, pg_get_userbyid(n.nspowner), ${acl(`coalesce(n.nspacl, acldefault('n', n.nspowner))`)}) FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg_%' AND n.nspname <> 'information_schema'
       UNION ALL
       SELECT format('lo %s owner=%s acl=%s', m.oid, pg_get_userbyid(m.lomowner), ${acl(`coalesce(m.lomacl, acldefault('L', m.lomowner))`)}) FROM pg_largeobject_metadata m
       UNION ALL
       SELECT format('type %s owner=%s', t.oid::regtype, pg_get_userbyid(t.typowner)) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','pg_toast')
       UNION ALL
       SELECT format('db owner=%s acl=%s', pg_get_userbyid(d.datdba), ${acl(`coalesce(d.datacl, acldefault('d', d.datdba))`)}) FROM pg_database d WHERE d.datname = current_database()`,
      [], db);
    return rows.map((r) => r.line).sort();
  }

  /** What the tenant sets up while it may still write: objects of every kind a freeze has to handle. */
  const SETUP = [
    'CREATE SCHEMA app',
    'CREATE TABLE app.things (id serial PRIMARY KEY, v text)',
    "INSERT INTO app.things (v) VALUES ('a'), ('b')",
    'CREATE TABLE public.notes (id int, secret text)',
    'CREATE TABLE app.log (at timestamptz DEFAULT now(), what text)',
    'CREATE VIEW app.things_view AS SELECT id, v FROM app.things',
    'CREATE MATERIALIZED VIEW app.things_mv AS SELECT count(*) AS n FROM app.things',
    'GRANT SELECT ON app.things TO PUBLIC',
    'GRANT SELECT (id) ON public.notes TO PUBLIC',
    // Runs as its owner: the classic way around a revoked INSERT.
    "CREATE FUNCTION app.sneak() RETURNS void LANGUAGE sql SECURITY DEFINER AS $$ INSERT INTO app.things (v) VALUES ('sneaked') $$",
    "CREATE FUNCTION app.on_truncate() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN INSERT INTO app.log (what) VALUES ('truncate'); RETURN NULL; END $$",
    'CREATE TRIGGER notes_truncate BEFORE TRUNCATE ON public.notes EXECUTE FUNCTION app.on_truncate()',
    'CREATE FUNCTION app.plain() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
    'REVOKE EXECUTE ON FUNCTION app.plain() FROM PUBLIC',
    "CREATE TYPE app.mood AS ENUM ('ok', 'sad')",
    "SELECT lo_from_bytea(424242, 'large object')",
  ];

  /** A non-owner's GRANT succeeds with a warning and grants nothing: checked on the privileges afterwards. */
  const SELF_GRANTS = (role: string) => [
    `GRANT INSERT, UPDATE ON app.things TO "${role}"`,
    'GRANT ALL ON SCHEMA app TO CURRENT_USER',
    `GRANT CREATE ON SCHEMA public TO "${role}"`,
    `GRANT CREATE, TEMPORARY ON DATABASE "${role}" TO "${role}"`,
    `GRANT EXECUTE ON FUNCTION app.sneak() TO "${role}"`,
    'GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid) TO PUBLIC',
  ];

  /** Every way the tenant's own SQL could write while frozen (after its self-grants). */
  const HOSTILE = (role: string) => [
    "INSERT INTO app.things (v) VALUES ('x')",
    "UPDATE app.things SET v = 'y'",
    'DELETE FROM app.things',
    'INSERT INTO public.notes VALUES (1)',
    'SELECT * FROM app.things FOR UPDATE',
    "SELECT nextval('app.things_id_seq')",
    'CREATE TABLE public.more (id int)',
    'CREATE TABLE app.more (id int)',
    'CREATE TABLE app.copy AS SELECT * FROM app.things',
    'CREATE TEMP TABLE scratch (id int)',
    'CREATE TEMP VIEW scratch_v AS SELECT 1',
    'CREATE SCHEMA another',
    'CREATE EXTENSION pgcrypto',
    'CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
    'CREATE INDEX ON app.things (v)',
    'ALTER TABLE app.things ADD COLUMN z int',
    `ALTER TABLE app.things OWNER TO "${role}"`,
    `ALTER SCHEMA app OWNER TO "${role}"`,
    "COMMENT ON TABLE app.things IS 'x'",
    'REFRESH MATERIALIZED VIEW app.things_mv',
    'DROP TABLE app.log',
    'ALTER FUNCTION app.sneak() SECURITY DEFINER',
    `SET ROLE "${frozenRoleName(role)}"`,
    'SET ROLE silo_tenant_db_owner',
    "SET default_transaction_read_only = off; INSERT INTO app.things (v) VALUES ('x')",
    "BEGIN; SET TRANSACTION READ WRITE; INSERT INTO app.things (v) VALUES ('x'); COMMIT",
    "DO $$ BEGIN INSERT INTO app.things (v) VALUES ('x'); END $$",
    'SELECT lo_create(0)',
    'SELECT lo_creat(-1)',
    "SELECT lo_from_bytea(0, 'x')",
    "SELECT lo_put(424242, 0, 'x')",
    'SELECT lo_unlink(424242)',
    "SELECT pg_logical_emit_message(true, 'x', 'y')",
    'SELECT app.sneak()',
    // Its trigger function (SECURITY DEFINER when created) would insert into app.log as the owner.
    'TRUNCATE public.notes',
  ];

  it('freezes writes against every trick of the tenant role, survives a tier change, a rotation and a reconcile, and unfreezes exactly', async () => {
    const { connection } = await create('hostile');
    const db = connection.database;
    const c = await asTenant(connection);
    for (const sql of SETUP) expect([sql, await attempt(c, sql)]).toEqual([sql, 'ok']);
    const before = await privileges(db);

    await driver.setWriteFreeze(connection, true);
    // Its open session was ended: one that already had a temporary schema would keep it.
    expect(await attempt(c, 'SELECT 1')).toMatch(/^57P01$|Connection terminated|not queryable/);
    const frozen = await privileges(db);
    expect(frozen).not.toEqual(before);

    const probe = async (label: string) => {
      const s = await asTenant(connection);
      const outcomes: Record<string, string> = {};
      for (const sql of SELF_GRANTS(connection.username)) expect(['ok', '42501']).toContain(await attempt(s, sql));
      expect(await privileges(connection.database)).toEqual(frozen);
      for (const sql of HOSTILE(connection.username)) outcomes[sql] = await attempt(s, sql);
      // 42501 insufficient_privilege for each (TRUNCATE public.notes: from its trigger's INSERT, run as the tenant).
      expect([label, Object.entries(outcomes).filter(([, code]) => code !== '42501')]).toEqual([label, []]);
      // Reads still work, and TRUNCATE frees space.
      expect((await s.query('SELECT count(*)::int AS n FROM app.things_view')).rows).toEqual([{ n: 2 }]);
      expect((await s.query('SELECT n FROM app.things_mv')).rows).toEqual([{ n: '2' }]);
      expect((await s.query("SELECT convert_from(lo_get(424242), 'UTF8') AS v")).rows).toEqual([{ v: 'large object' }]);
      expect((await s.query('SELECT app.plain() AS one')).rows).toEqual([{ one: 1 }]);
      expect((await s.query('SELECT count(*)::int AS n FROM app.log')).rows).toEqual([{ n: 0 }]);
      await s.end();
    };
    await probe('frozen');

    // Silo's own paths that re-grant privileges: the freeze holds through each.
    expect((await t.api('PATCH', '/v1/tenants/hostile', { tier: 'roomy' })).status).toBe(200);
    await t.drainJobs();
    expect(await privileges(db)).toEqual(frozen);
    await probe('after a tier change');
    expect((await t.api('POST', '/v1/tenants/hostile/rotate-credentials')).status).toBe(202);
    await t.drainJobs();
    expect(await privileges(db)).toEqual(frozen);
    await probe('after a rotation');
    await t.cp.app.get(ReconcilerService).run({ apply: false });
    expect(await privileges(db)).toEqual(frozen);
    await driver.setWriteFreeze(connection, true); // again: idempotent
    expect(await privileges(db)).toEqual(frozen);

    const s = await asTenant(connection);
    expect(await attempt(s, 'TRUNCATE app.things')).toBe('ok');
    await s.end();

    await driver.setWriteFreeze(connection, false);
    expect(await privileges(db)).toEqual(before);
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [frozenRoleName(connection.username)])).toEqual([]);
    const after = await asTenant(connection);
    for (const sql of ["INSERT INTO app.things (v) VALUES ('back')", 'SELECT app.sneak()', 'CREATE TEMP TABLE scratch (id int)', 'CREATE TABLE public.more (id int)']) {
      expect([sql, await attempt(after, sql)]).toEqual([sql, 'ok']);
    }
    expect((await after.query('SELECT v FROM app.things ORDER BY id')).rows).toEqual([{ v: 'back' }, { v: 'sneaked' }]);
    await after.end();
    await driver.setWriteFreeze(connection, false); // again: a no-op
  });

  /** Inserts uncompressible rows as the tenant until its database measures at least `bytes`. */
  async function fillTo(c: Client, db: string, bytes: number): Promise<number> {
    await c.query('CREATE TABLE IF NOT EXISTS public.blob (id int, v text)');
    for (let i = 0; i < 200; i++) {
      const [{ size }] = await adminQuery<{ size: string }>('SELECT pg_database_size($1)::text AS size', [db]);
      if (Number(size) >= bytes) return Number(size);
      await c.query("INSERT INTO public.blob SELECT g, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) FROM generate_series(1, 5000) g");
    }
    throw new Error('could not fill the database');
  }

  async function auditOf(tenantId: string): Promise<Array<{ action: string; detail: Record<string, unknown> }>> {
    return t.sql('SELECT action, detail FROM audit_log WHERE tenant_id = $1 AND action LIKE $2 ORDER BY id', [tenantId, 'storage%']);
  }

  async function metric(name: string): Promise<number> {
    const text = (await t.api('GET', '/metrics', undefined, { token: null })).body as string;
    return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(text)?.[1]);
  }

  it('sweep: records every live tenant, warns near the quota, freezes past it even while the tenant holds locks, and unfreezes after a TRUNCATE', async () => {
    const MB = 1024 * 1024;
    const { id, connection } = await create('filler');
    const { id: calmId } = await create('calm', 'roomy');
    const sweeper = t.cp.app.get(StorageQuotaService);

    // Only what a sweep did that is not "none" (the other tests' tenants are live too).
    const sweep = async () => {
      const r = await sweeper.sweep();
      expect(r.errors).toBe(0);
      return Object.fromEntries(Object.entries(r.decisions).filter(([d]) => d !== 'none'));
    };
    expect(await sweep()).toEqual({});
    const [{ size }] = await adminQuery<{ size: string }>('SELECT pg_database_size($1)::text AS size', [connection.database]);
    const shown = (await t.api('GET', '/v1/tenants/filler')).body.storage;
    expect(shown).toEqual({ usedBytes: Number(size), quotaBytes: 12 * MB, measuredAt: expect.any(String), frozen: false });
    expect(shown.usedBytes).toBeLessThan(12 * MB * 0.8); // a fresh database: the test's quota leaves room to fill

    const c = await asTenant(connection);
    await fillTo(c, connection.database, 12 * MB * 0.85);
    expect(await sweep()).toEqual({ warn: 1 });
    expect(await sweep()).toEqual({}); // warned once
    await fillTo(c, connection.database, 12 * MB + 1);
    // A session in an open transaction holding a lock REASSIGN needs, renewed at will: it does not postpone the freeze.
    await c.query('SET idle_in_transaction_session_timeout = 0; BEGIN; LOCK TABLE public.blob IN ACCESS SHARE MODE');

    const started = Date.now();
    expect(await sweep()).toEqual({ freeze: 1 });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await attempt(c, 'SELECT 1')).not.toBe('ok');
    expect((await auditOf(id)).map((a) => a.action)).toEqual(['storage_quota_warning', 'storage_quota_exceeded']);
    expect((await auditOf(id))[1].detail).toEqual({ usedBytes: expect.any(Number), quotaBytes: 12 * MB, tier: 'small' });
    expect(await auditOf(calmId)).toEqual([]);
    expect((await t.api('GET', '/v1/tenants/filler')).body.storage).toMatchObject({ frozen: true, quotaBytes: 12 * MB });
    expect((await t.api('GET', '/v1/tenants/filler')).body.storage.usedBytes).toBeGreaterThan(12 * MB);
    expect(await metric('silo_tenants_write_frozen')).toBe(1);
    expect(await metric('silo_tenants_over_storage_quota')).toBe(1);

    // Every worker sweeps (until issue #14): concurrent sweeps freeze once and audit once.
    const concurrent = await Promise.all([sweeper.sweep(), sweeper.sweep()]);
    expect(concurrent.map((r) => [r.errors, r.decisions.freeze ?? 0])).toEqual([[0, 0], [0, 0]]);
    expect((await auditOf(id)).map((a) => a.action)).toEqual(['storage_quota_warning', 'storage_quota_exceeded']);

    const s = await asTenant(connection);
    expect(await attempt(s, 'INSERT INTO public.blob VALUES (1, 1)')).toBe('42501');
    expect(await attempt(s, 'TRUNCATE public.blob')).toBe('ok');
    await s.end();
    expect(await sweep()).toEqual({ unfreeze: 1 });
    expect((await auditOf(id)).map((a) => a.action)).toEqual(['storage_quota_warning', 'storage_quota_exceeded', 'storage_writes_restored']);
    expect((await t.api('GET', '/v1/tenants/filler')).body.storage).toMatchObject({ frozen: false });
    expect(await metric('silo_tenants_write_frozen')).toBe(0);
    const after = await asTenant(connection);
    expect(await attempt(after, 'INSERT INTO public.blob VALUES (1, 1)')).toBe('ok');
    await after.end();
  });

  it('sweep: a tenant whose freeze fails is recorded and retried, and does not stop the others', async () => {
    const broken = await create('broken', 'tiny');
    const victim = await create('victim', 'tiny');
    // The control database points at a role that does not exist: this tenant's freeze fails.
    await t.sql('UPDATE tenant_connections SET username = $2 WHERE tenant_id = $1', [broken.id, 'no_such_role']);
    const r = await t.cp.app.get(StorageQuotaService).sweep();
    expect(r.errors).toBe(1);
    expect(r.decisions.freeze).toBe(1);
    expect((await auditOf(victim.id)).map((a) => a.action)).toEqual(['storage_quota_exceeded']);
    const [row] = await t.sql<{ frozen: boolean; last_error: string | null }>('SELECT frozen, last_error FROM tenant_storage WHERE tenant_id = $1', [broken.id]);
    expect(row).toEqual({ frozen: false, last_error: expect.stringContaining('no_such_role') });
    expect(await auditOf(broken.id)).toEqual([]);

    await t.sql('UPDATE tenant_connections SET username = $2 WHERE tenant_id = $1', [broken.id, broken.connection.username]);
    const again = await t.cp.app.get(StorageQuotaService).sweep();
    expect([again.errors, again.decisions.freeze]).toEqual([0, 1]);
    expect(await t.sql('SELECT frozen, last_error FROM tenant_storage WHERE tenant_id = $1', [broken.id])).toEqual([{ frozen: true, last_error: null }]);
    const c = await asTenant(broken.connection);
    expect(await attempt(c, 'CREATE TABLE public.more (id int)')).toBe('42501');
    await c.end();
  });

  it("ignores a freeze record the tenant forged before its first freeze (it would have been replayed as superuser GRANTs on unfreeze)", async () => {
    const { connection } = await create('forger', 'roomy');
    const c = await asTenant(connection);
    // The record's schema and tables, made by the tenant, with grants it wants a superuser to replay.
    await c.query(`CREATE SCHEMA silo_write_freeze;
      CREATE TABLE silo_write_freeze.objects (kind text NOT NULL, objoid oid NOT NULL, secdef boolean NOT NULL DEFAULT false, PRIMARY KEY (kind, objoid));
      CREATE TABLE silo_write_freeze.grants (kind text NOT NULL, objoid oid NOT NULL, objsub int NOT NULL DEFAULT 0, grantee oid NOT NULL, grantor oid NOT NULL, privilege text NOT NULL, grantable boolean NOT NULL,
        UNIQUE (kind, objoid, objsub, grantee, grantor, privilege));
      INSERT INTO silo_write_freeze.grants VALUES
        ('catfn_part', 'pg_catalog.pg_read_file(text)'::regprocedure, 0, (SELECT oid FROM pg_roles WHERE rolname = current_user), 10, 'EXECUTE', true),
        ('db_part', (SELECT oid FROM pg_database WHERE datname = '${t.db.name}'), 0, (SELECT oid FROM pg_roles WHERE rolname = current_user), 10, 'CONNECT', true)`);
    await c.end();

    await driver.setWriteFreeze(connection, true);
    await driver.setWriteFreeze(connection, false);
    const [granted] = await adminQuery<{ read_file: boolean; control_db: boolean }>(
      `SELECT has_function_privilege($1, 'pg_catalog.pg_read_file(text)', 'EXECUTE') AS read_file, has_database_privilege($1, $2, 'CONNECT') AS control_db`, [connection.username, t.db.name]);
    expect(granted).toEqual({ read_file: false, control_db: false });
    // The tenant's schema is kept, under another name, with its rows.
    const kept = await adminQuery<{ nspname: string; owner: string }>(`SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname LIKE 'silo_write_freeze%'`, [], connection.database);
    expect(kept).toEqual([{ nspname: expect.stringMatching(/^silo_write_freeze_tenant_[0-9a-f]{8}$/), owner: connection.username }]);
    expect(await adminQuery(`SELECT count(*)::int AS n FROM "${kept[0].nspname}".grants`, [], connection.database)).toEqual([{ n: 2 }]);
  });

  it('offboarding a frozen tenant drops its frozen role with its own', async () => {
    const { connection } = await create('leaver', 'roomy');
    await driver.setWriteFreeze(connection, true);
    await t.api('POST', '/v1/tenants/leaver/suspend', {});
    expect((await t.api('POST', '/v1/tenants/leaver/offboard', {})).body.status).toBe('deprovisioning');
    await t.drainJobs();
    if (!(await pgDumpCanExport())) return; // offboarding waits at the export without a pg_dump for this server
    expect((await t.api('GET', '/v1/tenants/leaver')).body.status).toBe('deleted');
    expect(await adminQuery('SELECT rolname FROM pg_roles WHERE rolname IN ($1, $2)', [connection.username, frozenRoleName(connection.username)])).toEqual([]);
  });

  it("the worker's tick runs the sweep every STORAGE_SWEEP_INTERVAL_SECONDS", async () => {
    const other = await startTestControlPlane({ EXPORT_DIR: join(dir, 'exports-2'), TIERS_FILE: tiersFile, JOB_WORKER_ENABLED: 'true', STORAGE_SWEEP_INTERVAL_SECONDS: '1', RECONCILE_INTERVAL_SECONDS: '0' });
    try {
      expect((await other.api('POST', '/v1/tenants', { name: 'ticked', slug: 'ticked', tier: 'tiny' })).status).toBe(202);
      let storage: { frozen?: boolean } | undefined;
      // Provisioning, then the next tick's sweep (a few seconds; more on a loaded machine).
      for (const until = Date.now() + 45_000; Date.now() < until && !storage?.frozen;) {
        await new Promise((r) => setTimeout(r, 200));
        storage = (await other.api('GET', '/v1/tenants/ticked')).body.storage;
      }
      expect(storage).toMatchObject({ frozen: true, quotaBytes: 1024 * 1024 });
      const [{ username }] = await other.sql<{ username: string }>('SELECT username FROM tenant_connections');
      frozenRoles.push(frozenRoleName(username));
    } finally {
      await other.close();
    }
  });
});
