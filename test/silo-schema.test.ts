import { Client } from 'pg';
import { migrateDatabase } from '../migrations/database-migrator';
import { tenantSession } from '../migrations/migration-sessions';
import { checkedStatus } from '../migrations/migration-status';
import { loadMigrations } from '../migrations/tenant-migration';
import { TENANT_MIGRATION_LOCK_KEY } from '../provisioning/local/silo-schema';
import { testDatabaseUrl, withDatabase } from './support/env';
import { FleetTenant, MigrationDir, MigrationFleet } from './support/migration-fixtures';
import { memoryDriverContext } from './support/provisioning';

/**
 * Silo's bookkeeping (the migration ledger `_silo_migrations` and the baseline's `_silo_meta`) in
 * schema `silo`, owned by Silo's role: out of the tenant's `public`, so its tools (drizzle-kit
 * push/pull) neither drop nor copy it, and the tenant role can read it but not change it. Real
 * local driver, real roles: the tenant is connected to as itself.
 */
describe('schema silo: Silo\'s bookkeeping out of the tenant\'s way (real Postgres)', () => {
  let fleet: MigrationFleet;
  const dirs: MigrationDir[] = [];
  const newDir = () => {
    const d = new MigrationDir();
    dirs.push(d);
    return d;
  };
  const up = (dir: MigrationDir, tier: string) => fleet.runner().run({ selection: { tier }, migrations: loadMigrations(dir.path) });
  const asTenant = async (t: FleetTenant): Promise<Client> => {
    const { password } = await fleet.kit.secrets.get(t.connection.secretRef);
    const c = new Client({ host: t.connection.host, port: t.connection.port, database: t.connection.database, user: t.connection.username, password });
    await c.connect();
    return c;
  };
  const sqlState = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);
  const inTemplate = async (sql: string) => {
    const c = new Client({ connectionString: withDatabase(testDatabaseUrl(), fleet.kit.templateDatabase) });
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  };
  /** Where the two tables are, as `schema.table owner`. */
  const layout = (t: FleetTenant) => fleet.inTenant<{ r: string }>(t,
    `SELECT relnamespace::regnamespace::text || '.' || relname || ' ' || pg_get_userbyid(relowner) AS r FROM pg_class WHERE relname IN ('_silo_migrations', '_silo_meta') AND relkind = 'r' ORDER BY 1`)
    .then((rows) => rows.map((x) => x.r));
  /** Turns a tenant back into the layout of a database made before schema silo: both tables in public, the tenant's. */
  const makeLegacy = async (t: FleetTenant) => {
    const role = `"${t.connection.username}"`;
    await fleet.inTenant(t, `BEGIN;
      CREATE TABLE public._silo_migrations (version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL);
      INSERT INTO public._silo_migrations SELECT * FROM silo._silo_migrations;
      CREATE TABLE public._silo_meta (key text PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
      INSERT INTO public._silo_meta (key, value) VALUES ('installed-by', 'an older silo');
      ALTER TABLE public._silo_migrations OWNER TO ${role}; ALTER TABLE public._silo_meta OWNER TO ${role};
      DROP SCHEMA silo CASCADE;
      COMMIT`);
  };
  const ledgerRows = (t: FleetTenant, table: string) =>
    fleet.inTenant<{ version: string; checksum: string; applied_at: Date }>(t, `SELECT version, checksum, applied_at FROM ${table} ORDER BY version`);

  beforeAll(async () => {
    fleet = await MigrationFleet.create('siloschema');
  });
  afterAll(async () => {
    await fleet.cleanup();
    for (const d of dirs) d.cleanup();
  });

  it('gives new tenants (and the template they are cloned from) the tables in schema silo, owned by Silo, none in public or on the default search_path', async () => {
    const owner = fleet.kit.driver.databaseOwner;
    expect(await inTemplate(`SELECT relnamespace::regnamespace::text || '.' || relname || ' ' || pg_get_userbyid(relowner) AS r FROM pg_class WHERE relname IN ('_silo_migrations', '_silo_meta') ORDER BY 1`))
      .toEqual([{ r: `silo._silo_meta ${owner}` }, { r: `silo._silo_migrations ${owner}` }]);
    const t = await fleet.addTenant('new-1', { tier: 'new' });
    expect(await layout(t)).toEqual([`silo._silo_meta ${owner}`, `silo._silo_migrations ${owner}`]);
    expect(await fleet.ledger(t)).toEqual(['0001']);

    const c = await asTenant(t);
    try {
      // What introspection of the tenant's own schema (drizzle-kit pull) sees: not Silo's tables.
      expect((await c.query(`SELECT current_setting('search_path') AS p, to_regclass('_silo_migrations') AS l, to_regclass('_silo_meta') AS m`)).rows).toEqual([{ p: '"$user", public', l: null, m: null }]);
      expect((await c.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public'`)).rows).toEqual([{ n: 0 }]);
      // Readable by the tenant when it wants to look.
      expect((await c.query('SELECT version FROM silo._silo_migrations')).rows).toEqual([{ version: '0001' }]);
    } finally {
      await c.end();
    }
  });

  it('lets the tenant role neither drop, alter, write nor create anything in schema silo, and drizzle-kit push\'s DROP does not reach the ledger', async () => {
    const t = await fleet.addTenant('deny-1', { tier: 'deny' });
    const c = await asTenant(t);
    try {
      expect(await sqlState(c.query('DROP TABLE silo._silo_migrations'))).toBe('42501');
      expect(await sqlState(c.query('DROP TABLE silo._silo_meta'))).toBe('42501');
      expect(await sqlState(c.query('DROP SCHEMA silo CASCADE'))).toBe('42501');
      expect(await sqlState(c.query('ALTER TABLE silo._silo_migrations ADD COLUMN x int'))).toBe('42501');
      expect(await sqlState(c.query('ALTER TABLE silo._silo_migrations RENAME TO gone'))).toBe('42501');
      expect(await sqlState(c.query('ALTER SCHEMA silo RENAME TO gone'))).toBe('42501');
      expect(await sqlState(c.query(`INSERT INTO silo._silo_migrations (version, name, checksum, duration_ms) VALUES ('9999', 'forged', 'x', 0)`))).toBe('42501');
      expect(await sqlState(c.query(`UPDATE silo._silo_migrations SET checksum = 'x'`))).toBe('42501');
      expect(await sqlState(c.query('DELETE FROM silo._silo_migrations'))).toBe('42501');
      expect(await sqlState(c.query('TRUNCATE silo._silo_migrations'))).toBe('42501');
      expect(await sqlState(c.query(`INSERT INTO silo._silo_meta (key, value) VALUES ('k', 'v')`))).toBe('42501');
      expect(await sqlState(c.query('CREATE TABLE silo.mine (id int)'))).toBe('42501');
      expect(await sqlState(c.query('CREATE VIEW silo.mine AS SELECT 1 AS one'))).toBe('42501');
      expect(await sqlState(c.query('CREATE FUNCTION silo.mine() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$'))).toBe('42501');
      // The runner's write path refuses a session that is not a migration run (it holds no migration lock).
      expect(await sqlState(c.query(`SELECT silo.record_migration('9999', 'forged', 'x', 0)`))).toBe('42501');
      expect(await sqlState(c.query(`SELECT silo.forget_migration('0001')`))).toBe('42501');
      // What drizzle-kit push runs with its usual config: it finds nothing of Silo's to drop.
      await c.query('DROP TABLE IF EXISTS "_silo_migrations" CASCADE');
      await c.query('DROP TABLE IF EXISTS "_silo_meta" CASCADE');
    } finally {
      await c.end();
    }
    expect(await fleet.ledger(t)).toEqual(['0001']);
    expect(await layout(t)).toEqual([`silo._silo_meta ${fleet.kit.driver.databaseOwner}`, `silo._silo_migrations ${fleet.kit.driver.databaseOwner}`]);
    expect(await fleet.inTenant(t, `SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'silo'::regnamespace AND relname NOT LIKE '%_pkey'`)).toEqual([{ n: 2 }]);
  });

  it('still migrates up, reports status and reverts down on the new layout, the ledger written only through Silo\'s functions', async () => {
    const dir = newDir().write('0002_orders.sql', 'CREATE TABLE orders (id int);', 'DROP TABLE orders;');
    const t = await fleet.addTenant('run-1', { tier: 'run' });
    expect((await up(dir, 'run')).tenants[0]).toMatchObject({ outcome: 'migrated', from: '0001', to: '0002' });
    expect(await fleet.ledger(t)).toEqual(['0001', '0002']);
    // The app's objects stay the tenant's.
    expect(await fleet.inTenant(t, `SELECT pg_get_userbyid(relowner) AS o FROM pg_class WHERE oid = 'public.orders'::regclass`)).toEqual([{ o: t.connection.username }]);
    const status = await checkedStatus(fleet.repo(), fleet.kit.secrets, loadMigrations(dir.path), { tier: 'run' });
    expect(status.tenants[0]).toMatchObject({ state: 'up-to-date', version: '0002', pending: 0, checked: true });
    const down = await migrateDatabase(tenantSession(t.connection, fleet.kit.secrets, {}), { direction: 'down', migrations: loadMigrations(dir.path), target: '0001' });
    expect(down).toMatchObject({ outcome: 'reverted', to: '0001', ledgerLayout: 'silo' });
    expect(await fleet.ledger(t)).toEqual(['0001']);
  });

  it('moves an existing tenant\'s old layout into schema silo on its next converge, every ledger row kept; until then the runner uses the old ledger', async () => {
    const dir = newDir().write('0002_orders.sql', 'CREATE TABLE orders (id int);', 'DROP TABLE orders;');
    const t = await fleet.addTenant('old-1', { tier: 'old' });
    await makeLegacy(t);
    const owner = fleet.kit.driver.databaseOwner;
    expect(await layout(t)).toEqual([`public._silo_meta ${t.connection.username}`, `public._silo_migrations ${t.connection.username}`]);

    // The runner (the tenant role) cannot move it: it goes on with the ledger where it is, nothing re-applied.
    expect((await up(dir, 'old')).tenants[0]).toMatchObject({ outcome: 'migrated', from: '0001', to: '0002', changed: ['0002_orders'] });
    const before = await ledgerRows(t, 'public._silo_migrations');
    expect(before.map((r) => r.version)).toEqual(['0001', '0002']);

    // Credential rotation (the privileged converge of an existing tenant) moves it.
    const ctx = memoryDriverContext(t.id);
    await fleet.kit.driver.rotateCredentials(ctx, t.connection);
    expect(ctx.lines).toEqual(expect.arrayContaining([expect.stringMatching(/moved public\._silo_migrations to silo\._silo_migrations \(2 rows\)/)]));
    expect(await layout(t)).toEqual([`silo._silo_meta ${owner}`, `silo._silo_migrations ${owner}`]);
    expect(await ledgerRows(t, 'silo._silo_migrations')).toEqual(before);
    expect(await fleet.inTenant(t, 'SELECT key, value FROM silo._silo_meta')).toEqual([{ key: 'installed-by', value: 'an older silo' }]);

    // Idempotent: again, nothing changes.
    const again = memoryDriverContext(t.id);
    await fleet.kit.driver.rotateCredentials(again, t.connection);
    expect(again.lines.filter((l) => /moved|created/.test(l))).toEqual([]);
    expect(await ledgerRows(t, 'silo._silo_migrations')).toEqual(before);

    dir.write('0003_more.sql', 'CREATE TABLE more (id int);', 'DROP TABLE more;');
    expect((await up(dir, 'old')).tenants[0]).toMatchObject({ outcome: 'migrated', from: '0002', to: '0003', changed: ['0003_more'] });
    expect(await fleet.ledger(t)).toEqual(['0001', '0002', '0003']);
  });

  it('moves an old layout when a tier change re-runs provisioning', async () => {
    const t = await fleet.addTenant('tier-1', { tier: 'tier' });
    await makeLegacy(t);
    const before = await ledgerRows(t, 'public._silo_migrations');
    await fleet.kit.driver.provision(memoryDriverContext(t.id)); // what a tier change's job runs (same idempotent steps)
    expect(await layout(t)).toEqual([`silo._silo_meta ${fleet.kit.driver.databaseOwner}`, `silo._silo_migrations ${fleet.kit.driver.databaseOwner}`]);
    expect(await ledgerRows(t, 'silo._silo_migrations')).toEqual(before);
  });

  it('leaves the old layout whole when the move is cut off midway (its session killed), and the next converge finishes it', async () => {
    const t = await fleet.addTenant('cut-1', { tier: 'cut' });
    await makeLegacy(t);
    const before = await ledgerRows(t, 'public._silo_migrations');
    // The tenant holds _silo_meta (an open transaction that read it): the move, past the ledger, waits on its DROP.
    const holder = await asTenant(t);
    await holder.query('BEGIN; SELECT * FROM _silo_meta');
    const rotation = fleet.kit.driver.rotateCredentials(memoryDriverContext(t.id), t.connection).then(() => 'done', (e: Error) => e.message);
    const admin = new Client({ connectionString: withDatabase(testDatabaseUrl(), t.connection.database) });
    await admin.connect();
    try {
      let killed = 0;
      for (let i = 0; i < 100 && !killed; i++) {
        await new Promise((r) => setTimeout(r, 50));
        killed = (await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DROP TABLE public._silo_meta%'`)).rowCount ?? 0;
      }
      expect(killed).toBe(1);
      expect(await rotation).toMatch(/terminat/);
    } finally {
      await holder.end();
      await admin.end();
    }
    // Nothing half-done: the copy into silo was in the killed transaction; the old ledger is all there.
    expect(await fleet.inTenant(t, `SELECT to_regnamespace('silo') AS s`)).toEqual([{ s: null }]);
    expect(await ledgerRows(t, 'public._silo_migrations')).toEqual(before);

    await fleet.kit.driver.rotateCredentials(memoryDriverContext(t.id), t.connection);
    expect(await ledgerRows(t, 'silo._silo_migrations')).toEqual(before);
    expect(await fleet.inTenant(t, `SELECT to_regclass('public._silo_migrations') AS l, to_regclass('public._silo_meta') AS m`)).toEqual([{ l: null, m: null }]);
  });

  it('does not move an old layout while a migration run holds the database, nor a legacy table the tenant replaced', async () => {
    const t = await fleet.addTenant('busy-1', { tier: 'busy' });
    await makeLegacy(t);
    const runner = new Client({ connectionString: withDatabase(testDatabaseUrl(), t.connection.database) });
    await runner.connect();
    await runner.query('SELECT pg_advisory_lock($1)', [TENANT_MIGRATION_LOCK_KEY]);
    const busy = memoryDriverContext(t.id);
    await fleet.kit.driver.rotateCredentials(busy, t.connection);
    await runner.end();
    expect(busy.lines).toEqual(expect.arrayContaining([expect.stringMatching(/not converged: a migration run holds/)]));
    expect(await layout(t)).toEqual([`public._silo_meta ${t.connection.username}`, `public._silo_migrations ${t.connection.username}`]);

    // A view in its place (tenant code would run as Silo reading it): reported, left alone, and no empty Silo ledger made beside it.
    await fleet.inTenant(t, `ALTER TABLE public._silo_migrations RENAME TO kept; CREATE VIEW public._silo_migrations AS SELECT * FROM kept`);
    const tampered = memoryDriverContext(t.id);
    await fleet.kit.driver.rotateCredentials(tampered, t.connection);
    expect(tampered.lines).toEqual(expect.arrayContaining([expect.stringMatching(/public\._silo_migrations is not the table Silo made/)]));
    expect(await fleet.inTenant(t, `SELECT to_regclass('silo._silo_migrations') AS l`)).toEqual([{ l: null }]);
  });
});
