import { randomBytes } from 'node:crypto';
import { createControlDataSource } from '../control-plane/db/data-source';
import { testDatabaseUrl } from './support/env';
import { silo } from './support/migration-fixtures';
import { adminQuery, createEmptyDatabase, createTestDatabase, dropDatabase, testDatabaseName, TestDatabase } from './support/test-db';

/**
 * `silo reconcile` only reads the control database's schema: it never applies control-database
 * migrations (it used to boot the whole control plane, which migrates at start-up), and refuses
 * with one line while the schema is behind. `silo control-db migrate` is the command that migrates.
 */
describe('silo reconcile and pending control-database migrations', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let undone: string;
  const template = testDatabaseName('tpl');
  const applied = async () => (await adminQuery<{ name: string }>('SELECT name FROM control_migrations ORDER BY id', [], db.name)).map((r) => r.name);

  beforeAll(async () => {
    db = await createTestDatabase('reconcilemig');
    // The control database one migration behind this code: its latest migration undone.
    const all = await applied();
    const ds = createControlDataSource(db.url, { poolSize: 1 });
    await ds.initialize();
    try {
      await ds.undoLastMigration({ transaction: 'each' });
    } finally {
      await ds.destroy();
    }
    const left = await applied();
    expect(left).toHaveLength(all.length - 1);
    undone = all.find((n) => !left.includes(n)) as string;
    env = {
      DATABASE_URL: db.url, SILO_MASTER_KEY: randomBytes(32).toString('base64'),
      TENANT_DATABASE_URL: testDatabaseUrl(), TENANT_TEMPLATE_DATABASE: template,
    };
  });
  afterAll(async () => {
    await db?.drop();
    await dropDatabase(template);
  });

  it('refuses with one line and exit 2 while the schema is behind, applying nothing', async () => {
    const before = await applied();
    for (const args of [['reconcile', '--json'], ['reconcile', '--apply'], ['reconcile', '--billing']]) {
      const run = await silo(args, { ...env, STRIPE_SECRET_KEY: 'sk_test_unused' });
      expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(run.stderr.trimEnd().split('\n')).toEqual([
        expect.stringMatching(new RegExp(`^error: The control database at \\S+ is 1 migration behind this CLI \\(${undone}\\): run \`silo control-db migrate\` first`)),
      ]);
    }
    expect(await applied()).toEqual(before);
  });

  it('leaves an empty database empty (no control_migrations table created), naming the first migrations', async () => {
    const empty = await createEmptyDatabase('reconcileempty');
    try {
      const run = await silo(['reconcile'], { ...env, DATABASE_URL: empty.url });
      expect(run.code).toBe(2);
      expect(run.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(/^error: The control database at \S+ is \d+ migrations behind this CLI \(InitialSchema1732300000000, \S+, \S+ and \d+ more\): run `silo control-db migrate` first/)]);
      expect(await adminQuery(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`, [], empty.name)).toEqual([]);
    } finally {
      await empty.drop();
    }
  });

  it('works once silo control-db migrate has brought the schema up to date', async () => {
    const migrate = await silo(['control-db', 'migrate', '--json'], env);
    expect(migrate.code).toBe(0);
    expect(JSON.parse(migrate.stdout)).toEqual({ applied: [undone] });

    const run = await silo(['reconcile', '--json'], env);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ drift: [], checked: { tenants: 0, directory: false } });
  });
});
