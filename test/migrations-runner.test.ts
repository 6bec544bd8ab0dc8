import { migrateTenant } from '../migrations';
import { checkedStatus, mirrorStatus } from '../migrations/migration-status';
import { loadMigrations } from '../migrations/tenant-migration';
import { FleetTenant, MigrationDir, MigrationFleet } from './support/migration-fixtures';

/**
 * The fleet runner on real tenant databases made by the real local driver. Each test uses its
 * own tier (selection) and migrations directory; all start from the shipped baseline the
 * template was prepared with.
 */
describe('tenant migration runner (real Postgres)', () => {
  let fleet: MigrationFleet;
  const dirs: MigrationDir[] = [];
  const newDir = () => {
    const d = new MigrationDir();
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    fleet = await MigrationFleet.create('migrun');
  });
  afterAll(async () => {
    await fleet.cleanup();
    for (const d of dirs) d.cleanup();
  });

  const tenants = (tier: string, n: number, status = 'active') =>
    Promise.all(Array.from({ length: n }, (_, i) => fleet.addTenant(`${tier}-${i + 1}`, { tier, status }))).then((ts) => ts.sort((a, b) => a.slug.localeCompare(b.slug)));
  // Sequential creation keeps created_at order = slug order.
  const tenantsInOrder = async (tier: string, n: number) => {
    const out: FleetTenant[] = [];
    for (let i = 1; i <= n; i++) out.push(await fleet.addTenant(`${tier}-${i}`, { tier }));
    return out;
  };
  const up = (dir: MigrationDir, tier: string, extra: Record<string, unknown> = {}) =>
    fleet.runner().run({ selection: { tier }, migrations: loadMigrations(dir.path), ...extra });

  it('brings every eligible tenant to the latest version as its own role, in one sequential pass', async () => {
    const dir = newDir()
      .write('0002_orders.sql', 'CREATE TABLE orders (id bigint PRIMARY KEY, qty int NOT NULL);', 'DROP TABLE orders;')
      .write('0003_orders_qty_idx.sql', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_qty_idx ON orders (qty);', 'DROP INDEX CONCURRENTLY IF EXISTS orders_qty_idx;', { noTransaction: true });
    const active = await tenants('seq', 2);
    const suspended = await fleet.addTenant('seq-susp', { tier: 'seq', status: 'suspended' });
    await fleet.addRowOnly('seq-prov', 'provisioning', 'seq');

    const report = await up(dir, 'seq');
    expect(report.failures).toBe(0);
    expect(report.counts).toMatchObject({ migrated: 3, skipped: 1 });
    expect(report.tenants.find((t) => t.slug === 'seq-prov')?.note).toMatch(/template/);
    for (const t of [...active, suspended]) {
      expect(await fleet.ledger(t)).toEqual(['0001', '0002', '0003']);
      const [owner] = await fleet.inTenant<{ owner: string }>(t, `SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname = 'orders'`);
      expect(owner.owner).toBe(t.connection.username);
      expect(await fleet.inTenant(t, `SELECT 1 FROM pg_indexes WHERE indexname = 'orders_qty_idx'`)).toHaveLength(1);
      expect(await fleet.mirror(t)).toMatchObject({ version: '0003', applied_count: 3, last_error: null, drift: null });
    }

    // Run again: the mirror shows everyone at the target, so nobody is connected to...
    const again = await up(dir, 'seq');
    expect(again.counts).toMatchObject({ 'up-to-date': 3, skipped: 1 });
    expect(again.tenants.filter((t) => t.outcome === 'up-to-date').every((t) => !t.verified)).toBe(true);
    // ...unless asked to verify, which reads each ledger.
    const verified = await up(dir, 'seq', { verify: true, concurrency: 3 });
    expect(verified.tenants.filter((t) => t.outcome === 'up-to-date').every((t) => t.verified)).toBe(true);
  });

  it('stops at the first failing tenant, leaving it at its last good version, and resumes after the fix', async () => {
    const dir = newDir().write('0002_orders.sql', 'CREATE TABLE orders (id bigint PRIMARY KEY, qty int NOT NULL);', 'DROP TABLE orders;');
    const [t1, t2, t3, t4] = await tenantsInOrder('fail', 4);
    expect((await up(dir, 'fail')).counts.migrated).toBe(4);
    await fleet.inTenant(t2, 'INSERT INTO orders VALUES (1, -5)'); // only this tenant's data violates 0003
    dir.write('0003_qty_positive.sql', 'CREATE TABLE qty_audit (id int);\nALTER TABLE orders ADD CONSTRAINT qty_positive CHECK (qty > 0);', 'ALTER TABLE orders DROP CONSTRAINT qty_positive;\nDROP TABLE qty_audit;')
      .write('0004_orders_note.sql', 'ALTER TABLE orders ADD COLUMN note text;', 'ALTER TABLE orders DROP COLUMN note;');

    const failed = await up(dir, 'fail');
    expect(failed.stopped?.reason).toBe('failure');
    expect(failed.failures).toBe(1);
    expect(failed.tenants.map((t) => [t.slug, t.outcome])).toEqual([['fail-1', 'migrated'], ['fail-2', 'failed'], ['fail-3', 'not-attempted'], ['fail-4', 'not-attempted']]);
    expect(failed.tenants[1].error).toMatchObject({ migration: '0003_qty_positive', pgCode: '23514' });
    expect(await fleet.ledger(t1)).toEqual(['0001', '0002', '0003', '0004']);
    expect(await fleet.ledger(t2)).toEqual(['0001', '0002']);
    // The whole of 0003 rolled back, not just the failing statement.
    expect(await fleet.inTenant(t2, `SELECT to_regclass('qty_audit') AS t`)).toEqual([{ t: null }]);
    expect(await fleet.ledger(t3)).toEqual(['0001', '0002']);
    expect(await fleet.ledger(t4)).toEqual(['0001', '0002']);
    expect(await fleet.mirror(t2)).toMatchObject({ version: '0002', last_error: expect.stringMatching(/^0003_qty_positive: .*qty_positive/) });

    // --continue-on-error goes past it and lists it.
    const past = await up(dir, 'fail', { continueOnError: true });
    expect(past.tenants.map((t) => t.outcome)).toEqual(['up-to-date', 'failed', 'migrated', 'migrated']);
    expect(past.tenants[0].verified).toBe(false); // fail-1 was skipped from the mirror

    // Fix the data; the same command finishes the job.
    await fleet.inTenant(t2, 'UPDATE orders SET qty = 5');
    const resumed = await up(dir, 'fail');
    expect(resumed.failures).toBe(0);
    expect(resumed.tenants.map((t) => t.outcome)).toEqual(['up-to-date', 'migrated', 'up-to-date', 'up-to-date']);
    expect(resumed.tenants[1].changed).toEqual(['0003_qty_positive', '0004_orders_note']);
    expect(await fleet.mirror(t2)).toMatchObject({ version: '0004', last_error: null });
  });

  it('never applies a migration twice when two runners start at once', async () => {
    const dir = newDir().write('0002_hits.sql', 'CREATE TABLE hits (at timestamptz NOT NULL DEFAULT clock_timestamp());', 'DROP TABLE hits;');
    const ts = await tenants('race', 4);
    await up(dir, 'race');
    dir.write('0003_hit_once.sql', 'INSERT INTO hits DEFAULT VALUES;\nSELECT pg_sleep(0.15);', 'DELETE FROM hits;');

    const [a, b] = await Promise.all([up(dir, 'race', { concurrency: 2, lockWaitMs: 10_000 }), up(dir, 'race', { concurrency: 2, lockWaitMs: 10_000 })]);
    expect([a.failures, b.failures]).toEqual([0, 0]);
    const migratedBy = (r: typeof a) => r.tenants.filter((t) => t.outcome === 'migrated').length;
    expect(migratedBy(a) + migratedBy(b)).toBe(4);
    for (const t of ts) {
      expect(await fleet.inTenant(t, 'SELECT count(*)::int AS n FROM hits')).toEqual([{ n: 1 }]);
      expect(await fleet.ledger(t)).toEqual(['0001', '0002', '0003']);
    }
  });

  it('detects a checksum drift, blocks up for that tenant, and status reports it', async () => {
    const dir = newDir().write('0002_orders.sql', 'CREATE TABLE orders (id bigint PRIMARY KEY);', 'DROP TABLE orders;');
    const [t1, t2] = await tenantsInOrder('drift', 2);
    await up(dir, 'drift');
    dir.write('0002_orders.sql', 'CREATE TABLE orders (id bigint PRIMARY KEY, extra text);', 'DROP TABLE orders;'); // edited after the fact
    dir.write('0003_more.sql', 'CREATE TABLE more (id int);', 'DROP TABLE more;');

    // Plain status sees it from the mirror's digest, without connecting.
    const plain = await mirrorStatus(fleet.repo(), loadMigrations(dir.path), { tier: 'drift' });
    expect(plain.counts.drift).toBe(2);

    const report = await up(dir, 'drift');
    expect(report.tenants.map((t) => t.outcome)).toEqual(['drift', 'not-attempted']);
    expect(report.tenants[0].problems).toEqual([expect.stringMatching(/^0002_orders changed after it was applied/)]);
    expect(await fleet.ledger(t1)).toEqual(['0001', '0002']);
    expect(await fleet.mirror(t1)).toMatchObject({ drift: expect.stringMatching(/0002_orders changed/) });

    const checked = await checkedStatus(fleet.repo(), fleet.kit.secrets, loadMigrations(dir.path), { tier: 'drift' });
    expect(checked.tenants.map((t) => t.state)).toEqual(['drift', 'drift']);
    expect(await fleet.mirror(t2)).toMatchObject({ drift: expect.stringMatching(/0002_orders changed/) });

    dir.write('0002_orders.sql', 'CREATE TABLE orders (id bigint PRIMARY KEY);', 'DROP TABLE orders;'); // restored from git
    const fixed = await up(dir, 'drift');
    expect(fixed.counts.migrated).toBe(2);
    expect(await fleet.mirror(t1)).toMatchObject({ version: '0003', drift: null });
  });

  it('changes nothing in a dry run', async () => {
    const [t] = await tenants('dry', 1);
    await fleet.inTenant(t, 'DROP SCHEMA silo CASCADE'); // a database the runner has never seen
    const dir = newDir().write('0002_orders.sql', 'CREATE TABLE orders (id int);', 'DROP TABLE orders;');
    const mirrorBefore = await fleet.mirror(t);

    const report = await up(dir, 'dry', { dryRun: true });
    expect(report.tenants[0]).toMatchObject({ outcome: 'would-change', changed: ['0001_silo_baseline', '0002_orders'] });
    expect(await fleet.inTenant(t, `SELECT to_regclass('silo._silo_migrations') AS l, to_regclass('public._silo_migrations') AS p, to_regclass('orders') AS o`)).toEqual([{ l: null, p: null, o: null }]);
    expect(await fleet.mirror(t)).toEqual(mirrorBefore);
  });

  it('migrateTenant brings one tenant to latest, records it, and throws on failure', async () => {
    const dir = newDir().write('0002_orders.sql', 'CREATE TABLE orders (id int);', 'DROP TABLE orders;');
    const [t] = await tenants('single', 1);
    const result = await migrateTenant(t, { secretStore: fleet.kit.secrets, control: fleet.pool }, { dir: dir.path });
    expect(result).toMatchObject({ outcome: 'migrated', from: '0001', to: '0002' });
    expect(await fleet.mirror(t)).toMatchObject({ version: '0002', last_error: null });

    dir.write('0003_broken.sql', 'ALTER TABLE no_such_table ADD COLUMN x int;');
    await expect(migrateTenant(t, { secretStore: fleet.kit.secrets, control: fleet.pool }, { dir: dir.path })).rejects.toMatchObject({ code: 'MIGRATION_FAILED' });
    expect(await fleet.mirror(t)).toMatchObject({ version: '0002', last_error: expect.stringMatching(/^0003_broken: relation "no_such_table" does not exist/) });
  });
});
