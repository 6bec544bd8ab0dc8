import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { testDatabaseUrl, withDatabase } from './support/env';
import { FleetTenant, MigrationDir, MigrationFleet, silo } from './support/migration-fixtures';
import { freePort } from './support/runtime-fixtures';

/**
 * The `silo` program run in-process (no terminal) against a real fleet. The tests form one
 * scenario, in order: the fleet's schema moves forward from test to test, as in production.
 */
describe('silo migrate CLI (real Postgres)', () => {
  let fleet: MigrationFleet;
  let dir: MigrationDir;
  let env: Record<string, string>;
  let cli1: FleetTenant;
  let cli2: FleetTenant;
  let cli3: FleetTenant;
  const emptyCwd = mkdtempSync(join(tmpdir(), 'silo-cli-cwd-'));

  beforeAll(async () => {
    fleet = await MigrationFleet.create('migcli');
    dir = new MigrationDir();
    env = fleet.cliEnv(dir.path);
    cli1 = await fleet.addTenant('cli-1');
    cli2 = await fleet.addTenant('cli-2');
    cli3 = await fleet.addTenant('cli-3', { status: 'suspended' });
    await fleet.addRowOnly('cli-pending', 'pending');
  });
  afterAll(async () => {
    await fleet.cleanup();
    dir.cleanup();
    rmSync(emptyCwd, { recursive: true, force: true });
  });

  const inTemplate = async <T,>(sql: string): Promise<T[]> => {
    const c = new Client({ connectionString: withDatabase(testDatabaseUrl(), fleet.kit.templateDatabase) });
    await c.connect();
    try {
      return (await c.query(sql)).rows as T[];
    } finally {
      await c.end();
    }
  };

  it('exits 2 with a one-line reason on usage and configuration errors, changing nothing', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['migrate', 'up'], env, /^error: choose the tenants: --all, --tenant <slug>/],
      [['migrate', 'up', '--all', '--bogus'], env, /^error: unknown option '--bogus'/],
      [['migrate', 'up', '--all', '--concurrency', '0'], env, /^error: option '--concurrency <n>' argument '0' is invalid/],
      [['migrate', 'up', '--all', '--tier', 'pro'], env, /^error: choose one of --all/],
      [['migrate', 'up', '--tenant', 'nope'], env, /^error: Unknown tenant: nope/],
      [['migrate', 'status', '--tenant', 'nope'], env, /^error: Unknown tenant: nope$/m],
      [['migrate', 'status', '--check', '--tenant', 'cli-1,nope'], env, /^error: Unknown tenant: nope$/m],
      [['migrate', 'up', '--tier', 'gold'], env, /^error: unknown tier: gold \(known tiers: starter, pro, enterprise\)$/m],
      [['migrate', 'status', '--tier', 'gold'], env, /^error: unknown tier: gold \(known tiers: starter, pro, enterprise\)$/m],
      [['migrate', 'status', '--tier', 'gold'], { ...env, TIERS_FILE: '/nonexistent/tiers.json' }, /^error: TIERS_FILE \/nonexistent\/tiers.json: /],
      [['migrate', 'up', '--all', '--to', '9999'], env, /^error: --to 9999: no migration with that version/],
      [['migrate', 'down', '--tenant', 'cli-1', '--to', '0'], env, /^error: migrate down changes a tenant's schema .* pass --yes/],
      [['migrate', 'status'], { ...env, DATABASE_URL: withDatabase(testDatabaseUrl(), 'silo_no_such_db') }, /^error: Cannot use the control database at .*silo_no_such_db/],
      [['nonsense'], env, /^error: unknown command 'nonsense'/],
    ];
    for (const [args, e, reason] of cases) {
      const run = await silo(args, e, { cwd: emptyCwd });
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(reason);
      expect(run.stderr).not.toMatch(/\n\s+at /); // no stack
    }
    // A tier of TIERS_FILE is known; one with no tenant selects none (exit 0).
    const tiersDir = mkdtempSync(join(tmpdir(), 'silo-cli-tiers-'));
    writeFileSync(join(tiersDir, 'tiers.json'), JSON.stringify({ tiers: { gold: { minAcu: 1, maxAcu: 2, instanceCount: 1, backupRetentionDays: 1, deletionProtection: false, connectionLimit: 5, statementTimeoutMs: 1000, rateLimitPerSecond: 1, rateLimitBurst: 1 } } }));
    const gold = await silo(['migrate', 'status', '--tier', 'gold'], { ...env, TIERS_FILE: join(tiersDir, 'tiers.json') }, { cwd: emptyCwd });
    rmSync(tiersDir, { recursive: true, force: true });
    expect(gold.stderr).toBe('');
    expect(gold.code).toBe(0);
    expect(gold.stdout).toMatch(/0 tenants: none/);
    // Missing settings: every bad variable is listed.
    const bare = await silo(['migrate', 'status'], { SECRET_STORE: 'vault' }, { cwd: emptyCwd });
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/^error: Invalid silo CLI configuration:\n {2}- DATABASE_URL: .*\n {2}- SECRET_STORE: /);
    // A broken migration file is a usage error too.
    const broken = new MigrationDir().write('0002_empty.sql', '-- nothing');
    const run = await silo(['migrate', 'status'], { ...env, SILO_TENANT_MIGRATIONS_DIR: broken.path });
    broken.cleanup();
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/0002_empty.sql: the up section is empty/);
    expect(await fleet.ledger(cli1)).toEqual(['0001']);
  });

  it('with DATABASE_URL set, takes SILO_MASTER_KEY from .silo/state.json as npm start does; a variable that is set wins', async () => {
    const stateCwd = mkdtempSync(join(tmpdir(), 'silo-cli-state-'));
    const writeState = (masterKey: string) => {
      mkdirSync(join(stateCwd, '.silo'), { recursive: true });
      writeFileSync(join(stateCwd, '.silo', 'state.json'), JSON.stringify({
        adminToken: `silo_admin_${'x'.repeat(30)}`, masterKey, webhookSecret: 'whsec_x', directoryKey: 'd'.repeat(43),
        // Never used with DATABASE_URL set: the URLs stay the user's.
        postgresPassword: 'unused', postgresPort: 1, tenantServer: 'separate', tenantPostgresPassword: 'unused', tenantPostgresPort: 2,
      }));
    };
    const { SILO_MASTER_KEY: fleetKey, ...withoutKey } = env;
    try {
      const none = await silo(['migrate', 'status', '--check'], withoutKey, { cwd: stateCwd });
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/SILO_MASTER_KEY/);

      writeState(fleetKey);
      const fromState = await silo(['migrate', 'status', '--check', '--json'], withoutKey, { cwd: stateCwd });
      expect(fromState.stderr).toBe('');
      expect(fromState.code).toBe(0);
      expect(JSON.parse(fromState.stdout).counts).toMatchObject({ 'up-to-date': 3, unreachable: 0 });

      // The state's key is another installation's: the one set in the environment is used.
      writeState(Buffer.alloc(32, 9).toString('base64'));
      const explicit = await silo(['migrate', 'status', '--check', '--json'], env, { cwd: stateCwd });
      expect(explicit.code).toBe(0);
      expect(JSON.parse(explicit.stdout).counts).toMatchObject({ 'up-to-date': 3, unreachable: 0 });
    } finally {
      rmSync(stateCwd, { recursive: true, force: true });
    }
  });

  it('in embedded mode with nothing listening, asks whether npm start is running (no word of a DATABASE_URL never set)', async () => {
    const stateCwd = mkdtempSync(join(tmpdir(), 'silo-cli-embedded-'));
    try {
      const port = await freePort();
      mkdirSync(join(stateCwd, '.silo'));
      writeFileSync(join(stateCwd, '.silo', 'state.json'), JSON.stringify({
        adminToken: `silo_admin_${'x'.repeat(30)}`, masterKey: env.SILO_MASTER_KEY, webhookSecret: 'whsec_x', directoryKey: 'd'.repeat(43),
        postgresPassword: 'sekrit-pw', postgresPort: port, tenantServer: 'separate', tenantPostgresPassword: 'sekrit-pw2', tenantPostgresPort: port,
      }));
      for (const args of [['migrate', 'status'], ['migrate', 'up', '--all'], ['control-db', 'migrate']]) {
        const run = await silo(args, {}, { cwd: stateCwd });
        expect({ args, code: run.code }).toEqual({ args, code: 2 });
        expect(run.stderr).toMatch(new RegExp(`^error: Cannot reach the embedded control database at postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/silo .*is \`npm start\` running\\?`));
        expect(run.stderr.trim().split('\n')).toHaveLength(1);
        expect(run.stderr).not.toMatch(/DATABASE_URL\)|sekrit/);
      }
    } finally {
      rmSync(stateCwd, { recursive: true, force: true });
    }
  });

  it('migrate create scaffolds the next numbered file', async () => {
    const scratch = new MigrationDir();
    const run = await silo(['migrate', 'create', 'Add notes', '--dir', scratch.path], {}, { cwd: emptyCwd });
    expect(run.code).toBe(0);
    expect(existsSync(join(scratch.path, '0002_add_notes.sql'))).toBe(true);
    expect(run.stdout).toMatch(/Created .*0002_add_notes\.sql/);
    scratch.cleanup();
  });

  it('up --all migrates the template as its owner, then each tenant (one line each), and exits 0', async () => {
    dir.write('0002_notes.sql', 'CREATE TABLE notes (id bigint PRIMARY KEY, body text);', 'DROP TABLE notes;');
    // The dry run first: from -> to says where each tenant would end, and nothing changes.
    const dry = await silo(['migrate', 'up', '--all', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/\[1\/3\] cli-1 {2}0001 -> 0002 {2}would migrate {2}would apply 0002_notes/);
    expect(dry.stdout).toMatch(new RegExp(`Template ${fleet.kit.templateDatabase}: would apply 0002_notes`));
    expect(await fleet.ledger(cli1)).toEqual(['0001']);
    const run = await silo(['migrate', 'up', '--all'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`Template ${fleet.kit.templateDatabase}: migrated 0001 -> 0002`));
    expect(run.stdout).toMatch(/\[1\/3\] cli-1 {2}0001 -> 0002 {2}migrated {2}1 applied/);
    expect(run.stdout).toMatch(/\[3\/3\] cli-3 {2}0001 -> 0002 {2}migrated/); // suspended tenants too
    expect(run.stdout).toMatch(/skipped +1/); // the pending tenant

    // The app's objects are the template owner's (handed to each clone); Silo's ledger stays Silo's, in schema silo.
    expect(await inTemplate(`SELECT relnamespace::regnamespace::text AS schema, relname, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname IN ('notes', '_silo_migrations') ORDER BY relname`))
      .toEqual([{ schema: 'silo', relname: '_silo_migrations', owner: fleet.kit.driver.databaseOwner }, { schema: 'public', relname: 'notes', owner: fleet.kit.driver.templateOwner }]);
    expect(await inTemplate('SELECT version FROM silo._silo_migrations ORDER BY version')).toEqual([{ version: '0001' }, { version: '0002' }]);

    // A tenant cloned now starts at 0002 and owns what the migrations created.
    const fresh = await fleet.addTenant('cli-4');
    expect(await fleet.ledger(fresh)).toEqual(['0001', '0002']);
    const owners = await fleet.inTenant<{ relname: string; owner: string }>(fresh,
      `SELECT relnamespace::regnamespace::text || '.' || relname AS relname, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname IN ('notes', '_silo_migrations', '_silo_meta') ORDER BY 1`);
    expect(owners).toEqual([
      { relname: 'public.notes', owner: fresh.connection.username },
      { relname: 'silo._silo_meta', owner: fleet.kit.driver.databaseOwner },
      { relname: 'silo._silo_migrations', owner: fleet.kit.driver.databaseOwner },
    ]);
    const again = await silo(['migrate', 'up', '--all', '--json'], env);
    expect(again.code).toBe(0);
    const report = JSON.parse(again.stdout);
    expect(report.tenants.map((t: { slug: string; outcome: string; verified: boolean }) => [t.slug, t.outcome, t.verified])).toEqual([
      ['cli-1', 'up-to-date', false], ['cli-2', 'up-to-date', false], ['cli-3', 'up-to-date', false], ['cli-pending', 'skipped', false], ['cli-4', 'up-to-date', true],
    ]);
  });

  it('exits 1 when a tenant fails, and status shows its last error until the fix', async () => {
    await fleet.inTenant(cli2, `INSERT INTO notes VALUES (1, '')`);
    dir.write('0003_notes_body_required.sql', `ALTER TABLE notes ADD CONSTRAINT body_not_blank CHECK (body <> '');`, 'ALTER TABLE notes DROP CONSTRAINT body_not_blank;');
    const run = await silo(['migrate', 'up', '--all'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/Needs attention:\n.*\ncli-2 +active +0002 +FAILED +0003_notes_body_required: .*body_not_blank/);
    expect(run.stdout).toMatch(/Stopped at the first failing tenant \(cli-2\)/);

    const status = await silo(['migrate', 'status', '--json'], env);
    expect(status.code).toBe(1);
    const tenants = JSON.parse(status.stdout).tenants as Array<{ slug: string; state: string; version: string; pending: number; lastError: string | null }>;
    expect(tenants.map((t) => [t.slug, t.state, t.version, t.pending])).toEqual([
      ['cli-1', 'up-to-date', '0003', 0], ['cli-2', 'failed', '0002', 1], ['cli-3', 'behind', '0002', 1], ['cli-pending', 'not-eligible', null, null], ['cli-4', 'behind', '0002', 1],
    ]);
    expect(tenants[1].lastError).toMatch(/body_not_blank/);

    await fleet.inTenant(cli2, `UPDATE notes SET body = 'fixed'`);
    const resumed = await silo(['migrate', 'up', '--all'], env);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/3 to check/); // cli-1 is skipped from the mirror
    expect((await silo(['migrate', 'status'], env)).code).toBe(0);
  });

  it('stops after the canary without a terminal (exit 0, how to continue), and continues with --yes', async () => {
    dir.write('0004_notes_created.sql', 'ALTER TABLE notes ADD COLUMN created_at timestamptz;', 'ALTER TABLE notes DROP COLUMN created_at;');
    const canary = await silo(['migrate', 'up', '--all', '--canary', '1'], env);
    expect(canary.code).toBe(0);
    expect(canary.stdout).toMatch(/Canary done \(1 tenant\); 3 not started\..*--yes/);
    expect(await fleet.ledger(cli1)).toEqual(['0001', '0002', '0003', '0004']);
    expect(await fleet.ledger(cli2)).toEqual(['0001', '0002', '0003']);

    // On a terminal the question is asked; "no" stops after the next canary (the next tenant needing work).
    let asked = '';
    const declined = await silo(['migrate', 'up', '--all', '--canary', '1'], env, { confirm: async (q) => ((asked = q), false) });
    expect(declined.code).toBe(0);
    expect(asked).toMatch(/Continue with the remaining 2 tenants\? \[y\/N\]/);
    expect(await fleet.ledger(cli2)).toEqual(['0001', '0002', '0003', '0004']);
    expect(await fleet.ledger(cli3)).toEqual(['0001', '0002', '0003']);

    const rest = await silo(['migrate', 'up', '--all', '--canary', '1', '--yes', '--concurrency', '2'], env);
    expect(rest.code).toBe(0);
    expect(await fleet.ledger(cli3)).toEqual(['0001', '0002', '0003', '0004']);
    const status = JSON.parse((await silo(['migrate', 'status', '--check', '--json'], env)).stdout);
    expect(status.counts).toMatchObject({ 'up-to-date': 4, 'not-eligible': 1 });
    expect(status.template).toMatchObject({ outcome: 'up-to-date', to: '0004' });
  });

  it('down reverts one tenant after confirmation and records it', async () => {
    const preview = await silo(['migrate', 'down', '--tenant', 'cli-1', '--to', '0002', '--dry-run'], env);
    expect(preview.code).toBe(0);
    expect(preview.stdout).toMatch(/cli-1: 0004 -> 0002 {2}dry run\n {2}would revert 0004_notes_created\n {2}would revert 0003_notes_body_required/);
    const declined = await silo(['migrate', 'down', '--tenant', 'cli-1', '--to', '0002'], env, { confirm: async () => false });
    expect(declined.code).toBe(0);
    expect(await fleet.ledger(cli1)).toHaveLength(4);

    let asked = '';
    const run = await silo(['migrate', 'down', '--tenant', 'cli-1', '--to', '0002'], env, { confirm: async (q) => ((asked = q), true) });
    expect(asked).toMatch(/Revert cli-1 from 0004 to 0002 \(0004_notes_created, 0003_notes_body_required\)/);
    expect(run.code).toBe(0);
    expect(await fleet.ledger(cli1)).toEqual(['0001', '0002']);
    expect(await fleet.inTenant(cli1, `SELECT 1 FROM pg_constraint WHERE conname = 'body_not_blank'`)).toHaveLength(0);
    expect(await fleet.mirror(cli1)).toMatchObject({ version: '0002', applied_count: 2 });

    const back = await silo(['migrate', 'up', '--tenant', 'cli-1'], env);
    expect(back.code).toBe(0);
    expect(await fleet.ledger(cli1)).toHaveLength(4);
    expect(back.stdout).toMatch(/Template: skipped \(only --all runs migrate the template\)/);
  });

  it('control-db migrate reports an up-to-date control database', async () => {
    const run = await silo(['control-db', 'migrate'], env);
    expect(run).toMatchObject({ code: 0, stdout: 'Control database is up to date.\n' });
  });
});
