import { Client } from 'pg';
import { adminQuery, createEmptyDatabase, dropDatabase, TestDatabase } from '../../test/support/test-db';
import { testDatabaseUrl } from '../../test/support/env';
import { migrateDatabase, sessionOptions } from '../../migrations/database-migrator';
import { parseMigration } from '../../migrations/tenant-migration';
import { DEFAULT_TIERS } from '../tiers';
import { ADMIN_SESSION_OPTIONS } from '../local/pg-names';
import { ensureSiloSchema } from '../local/silo-schema';
import { ensureTenantAppRole } from './tenant-app-role';

/**
 * Schema silo on an Aurora tenant cluster: made and converged by the master user (not a superuser:
 * local stand-in, a NOSUPERUSER CREATEROLE login owning the database, as in
 * write-freeze-master.spec.ts) in the `tenant-role` step, owned by it, read-only to the application
 * role that migrations run as.
 */
describe('schema silo on a tenant cluster, by a non-superuser master user (local PostgreSQL in place of Aurora)', () => {
  const host = new URL(testDatabaseUrl()).hostname;
  const port = Number(new URL(testDatabaseUrl()).port || 5432);
  const master = `silo_master_s${process.pid}`;
  const app = `tenant_app_s${process.pid}`;
  let db: TestDatabase;
  const login = () => ({ host, port, database: db.name, user: master, password: 'master-pw', ssl: false as const });
  const asApp = async () => {
    const c = new Client({ host, port, database: db.name, user: app, options: sessionOptions({}) });
    await c.connect();
    return c;
  };
  const inDb = async <T = Record<string, unknown>>(sql: string): Promise<T[]> => (await adminQuery(sql, [], db.name)) as T[];
  const migration = (version: string, up: string) => parseMigration(`${version}_m.sql`, `-- migrate:up\n${up}\n\n-- migrate:down\n`, `${version}_m.sql`);

  beforeAll(async () => {
    db = await createEmptyDatabase('awssilo');
    await adminQuery(`CREATE ROLE ${master} LOGIN NOSUPERUSER CREATEROLE CREATEDB PASSWORD 'master-pw'`);
    await adminQuery(`ALTER DATABASE ${db.name} OWNER TO ${master}`);
    await adminQuery(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF; END $$`);
  });
  afterAll(async () => {
    await dropDatabase(db.name);
    for (const role of [app, master]) await adminQuery(`DROP ROLE IF EXISTS "${role}"`);
  });

  it('makes the ledger before the first migration, owned by the master user; the app role records through it and cannot change it itself', async () => {
    const result = await ensureTenantAppRole(login(), DEFAULT_TIERS.pro, app);
    expect(result.silo).toMatchObject({ changes: ['created schema silo', 'created silo._silo_migrations'], problems: [] });
    expect(await inDb(`SELECT pg_get_userbyid(relowner) AS o FROM pg_class WHERE oid = 'silo._silo_migrations'::regclass`)).toEqual([{ o: master }]);

    const run = await migrateDatabase(asApp, { direction: 'up', migrations: [migration('0001', 'CREATE TABLE items (id int);')], target: '0001' });
    expect(run).toMatchObject({ outcome: 'migrated', to: '0001', ledgerLayout: 'silo' });
    expect(await inDb(`SELECT (SELECT version FROM silo._silo_migrations) AS v, pg_get_userbyid(relowner) AS o FROM pg_class WHERE oid = 'public.items'::regclass`)).toEqual([{ v: '0001', o: app }]);

    const c = await asApp();
    try {
      const state = (sql: string) => c.query(sql).then(() => 'ok', (e: { code?: string }) => e.code);
      expect(await state('DROP TABLE silo._silo_migrations')).toBe('42501');
      expect(await state(`DELETE FROM silo._silo_migrations`)).toBe('42501');
      expect(await state('CREATE TABLE silo.mine (id int)')).toBe('42501');
      expect(await state(`SELECT silo.forget_migration('0001')`)).toBe('42501');
      expect((await c.query('SELECT version FROM silo._silo_migrations')).rows).toEqual([{ version: '0001' }]);
    } finally {
      await c.end();
    }
  });

  it('moves an older cluster\'s ledger (in public, the app role\'s) on the next convergence, rows kept', async () => {
    await adminQuery('DROP SCHEMA silo CASCADE', [], db.name);
    const c = await asApp();
    try {
      await c.query(`CREATE TABLE public._silo_migrations (version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL);
        INSERT INTO public._silo_migrations (version, name, checksum, duration_ms) VALUES ('0001', 'm', 'abc', 3)`);
    } finally {
      await c.end();
    }
    const before = await inDb('SELECT * FROM public._silo_migrations');
    // What ensureTenantAppRole runs after the role (its ALTER ROLE path needs PostgreSQL 16's CREATEROLE rules, so not called again here).
    const m = new Client({ ...login(), options: ADMIN_SESSION_OPTIONS });
    await m.connect();
    const result = { silo: await ensureSiloSchema(m, { joinRoles: [app] }).finally(() => m.end()) };
    expect(result.silo?.changes).toEqual(['created schema silo', 'moved public._silo_migrations to silo._silo_migrations (1 rows)']);
    expect(await inDb('SELECT * FROM silo._silo_migrations')).toEqual(before);
    expect(await inDb(`SELECT to_regclass('public._silo_migrations') AS l, pg_get_userbyid(relowner) AS o FROM pg_class WHERE oid = 'silo._silo_migrations'::regclass`)).toEqual([{ l: null, o: master }]);
  });
});
