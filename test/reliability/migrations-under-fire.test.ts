import type { ChildProcess } from 'node:child_process';
import { Pool } from 'pg';
import { TENANT_MIGRATION_LOCK_KEY } from '../../migrations/database-migrator';
import { testDatabaseUrl, withDatabase } from '../support/env';
import { MigrationDir } from '../support/migration-fixtures';
import { CliResult, runCli, sleep } from './support/processes';
import { recordFigures, round, runSeed, seededRandom } from './support/report';
import { mapLimit, ReliabilityStack } from './support/stack';

/**
 * Scenario 6, migrations under fire. A fleet provisioned by the real control plane and worker
 * gets three tenant migrations, one of them slow (pg_sleep + a backfill) and all with a
 * non-idempotent side effect (a row in `fire_marker` per migration). `silo migrate up --all`
 * runs as its own process and is SIGKILLed at seeded moments mid-fleet, several times, each
 * re-run starting while the killed run's server sessions may still be finishing; then a final
 * run completes. Every tenant must end at the latest version with each migration applied once,
 * ledger and control-db mirror agreeing, and no advisory lock left behind.
 */
const TENANTS = Number(process.env.RELIABILITY_MIGRATION_TENANTS ?? 24);
const KILLS = Number(process.env.RELIABILITY_MIGRATION_KILLS ?? 4);
const SLOW_SECONDS = 0.5;
const VERSIONS = ['0001', '0002', '0003', '0004'];

describe('reliability: migrations under fire (fleet run SIGKILLed and re-run)', () => {
  let stack: ReliabilityStack;
  let dir: MigrationDir;
  let admin: Pool;
  const seed = runSeed();
  const rnd = seededRandom(seed);

  beforeAll(async () => {
    stack = await ReliabilityStack.create('relmig');
    dir = new MigrationDir();
    admin = new Pool({ connectionString: testDatabaseUrl(), max: 4, application_name: 'silo-reliability-test' });
    admin.on('error', () => undefined);
  });
  afterAll(async () => {
    await admin?.end();
    await stack?.cleanup();
    dir?.cleanup();
  });

  /** Runs SQL in a tenant (or template) database as the server admin. */
  async function inDatabase<T>(database: string, sql: string, params: unknown[] = []): Promise<T[]> {
    const pool = new Pool({ connectionString: withDatabase(testDatabaseUrl(), database), max: 1 });
    try {
      return (await pool.query(sql, params)).rows as T[];
    } finally {
      await pool.end();
    }
  }

  it(`brings all ${TENANTS} tenants to the latest version exactly once after ${KILLS} SIGKILLs of the fleet run`, async () => {
    const started = Date.now();
    const cp = await stack.controlPlane({ SILO_TENANT_MIGRATIONS_DIR: dir.path, JOB_CONCURRENCY: '4', JOB_POLL_INTERVAL_MS: '200', LOG_LEVEL: 'warn' });
    await cp.start();
    for (let i = 0; i < TENANTS; i++) {
      const r = await stack.api(cp.url, 'POST', '/v1/tenants', { name: `Fire ${i}`, slug: `fire-${String(i).padStart(2, '0')}` });
      expect(r.status).toBe(202);
    }
    const provisionDeadline = Date.now() + 90_000;
    const activeCount = async () => Number((await stack.sql<{ n: string }>(`SELECT count(*) AS n FROM tenants WHERE status = 'active'`))[0]?.n);
    while ((await activeCount()) < TENANTS && Date.now() < provisionDeadline) await sleep(250);
    expect(await activeCount()).toBe(TENANTS);
    const provisionSeconds = round((Date.now() - started) / 1000);
    const tenants = await stack.sql<{ id: string; slug: string; database: string }>(
      `SELECT t.id, t.slug, c.database FROM tenants t JOIN tenant_connections c ON c.tenant_id = t.id ORDER BY t.created_at`);

    // The migrations: every one leaves a row per application; 0003 is slow enough to be killed in.
    dir.write('0002_fire_marker.sql', `CREATE TABLE fire_marker (id bigserial PRIMARY KEY, version text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
INSERT INTO fire_marker (version) VALUES ('0002');`, 'DROP TABLE fire_marker;');
    dir.write('0003_slow_backfill.sql', `INSERT INTO fire_marker (version) VALUES ('0003');
SELECT pg_sleep(${SLOW_SECONDS});
CREATE TABLE fire_items AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 5000) g;`, 'DROP TABLE fire_items;');
    dir.write('0004_fire_index.sql', `CREATE INDEX fire_items_body ON fire_items (body);
INSERT INTO fire_marker (version) VALUES ('0004');`, 'DROP INDEX fire_items_body;');
    const env = stack.cliEnv({ SILO_TENANT_MIGRATIONS_DIR: dir.path });
    const args = ['migrate', 'up', '--all', '--yes', '--concurrency', '3'];

    /** Tenants whose own ledger is at the latest version. */
    const atLatest = async () => (await mapLimit(tenants, 4, async (t) => {
      const rows = await inDatabase<{ v: string | null }>(t.database, `SELECT max(version) AS v FROM silo._silo_migrations`);
      return rows[0]?.v === '0004';
    })).filter(Boolean).length;

    // The attacks: each run is killed once it has migrated a few more tenants (so it is mid-fleet),
    // plus a seeded delay (so usually mid-migration); the first one right after the template.
    const kills: Array<{ run: number; afterLines: number; doneBefore: number; inFlightSessions: number; heldLocks: number; doneAfter: number }> = [];
    let runs = 0;
    for (let k = 0; k < KILLS; k++) {
      const doneBefore = await atLatest();
      // Tenants this run must report migrated before the kill (tenants done earlier are skipped or reported up to date).
      const afterLines = k === 0 ? 0 : Math.max(0, Math.min(TENANTS - doneBefore - 2, 1 + Math.floor(rnd() * 4)));
      const delayMs = Math.floor(rnd() * 300);
      let killedAt = 0;
      const res: CliResult = await runCli(args, env, {
        timeoutMs: 60_000,
        onSpawn: (child: ChildProcess) => {
          let lines = 0;
          let templateDone = false;
          child.stdout?.on('data', (chunk: Buffer) => {
            for (const line of chunk.toString('utf8').split('\n')) {
              if (/^Template /.test(line)) templateDone = true;
              if (/^\[\s*\d+\/\d+\] .* migrated /.test(line)) lines++;
            }
            if (!killedAt && templateDone && lines >= afterLines) {
              killedAt = Date.now();
              setTimeout(() => child.kill('SIGKILL'), delayMs);
            }
          });
        },
      });
      runs++;
      expect({ run: runs, signal: res.signal, stderr: res.stderr }).toEqual({ run: runs, signal: 'SIGKILL', stderr: '' });
      // What the kill left on the server, right away: sessions still running a migration, and the locks they hold.
      const [orphans] = await admin.query<{ sessions: string; locks: string }>(
        `SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'silo-migrate' AND datname = ANY($1) AND state = 'active') AS sessions,
                (SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                  WHERE l.locktype = 'advisory' AND l.objid = $2 AND d.datname = ANY($1)) AS locks`,
        [[...tenants.map((t) => t.database), stack.templateDb], TENANT_MIGRATION_LOCK_KEY]).then((r) => r.rows);
      kills.push({ run: runs, afterLines, doneBefore, inFlightSessions: Number(orphans?.sessions), heldLocks: Number(orphans?.locks), doneAfter: await atLatest() });
    }
    const figures: Record<string, unknown> = {
      seed, tenants: TENANTS, migrations: VERSIONS.length - 1, kills: kills.length, runs,
      killsMidFleet: kills.filter((k) => k.doneAfter < TENANTS).length,
      killsWithMigrationInFlight: kills.filter((k) => k.inFlightSessions > 0).length,
      progressAfterEachKill: kills.map((k) => k.doneAfter), provisionSeconds,
    };
    recordFigures('Migrations under fire', figures);
    // Most kills must land mid-fleet for the scenario to mean anything.
    expect(kills.filter((k) => k.doneAfter < TENANTS).length).toBeGreaterThanOrEqual(Math.min(3, KILLS));

    // The re-run: started at once, while the last killed run's sessions may still hold tenant locks.
    const final = await runCli([...args, '--json'], env, { timeoutMs: 90_000 });
    runs++;
    figures.finalRunSeconds = round(final.ms / 1000);
    expect({ code: final.code, stderr: final.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(final.stdout) as { failures: number; counts: Record<string, number>; template: { outcome: string; to: string } };
    figures.finalRunOutcomes = report.counts;
    recordFigures('Migrations under fire', figures);
    expect(report.failures).toBe(0);
    expect(report.template.to).toBe('0004');
    expect(report.counts.migrated + report.counts['up-to-date']).toBe(TENANTS);

    // Every tenant: ledger holds each version once; each migration's side effect happened once.
    const perTenant = await mapLimit(tenants, 4, async (t) => {
      const ledger = await inDatabase<{ version: string }>(t.database, 'SELECT version FROM silo._silo_migrations ORDER BY version');
      const markers = await inDatabase<{ version: string; n: number }>(t.database, 'SELECT version, count(*)::int AS n FROM fire_marker GROUP BY version ORDER BY version');
      const [items] = await inDatabase<{ n: number }>(t.database, 'SELECT count(*)::int AS n FROM fire_items');
      return { slug: t.slug, ledger: ledger.map((r) => r.version), markers, items: items?.n };
    });
    const expected = { ledger: VERSIONS, markers: [{ version: '0002', n: 1 }, { version: '0003', n: 1 }, { version: '0004', n: 1 }], items: 5000 };
    expect(perTenant.filter((t) => JSON.stringify({ ...t, slug: undefined }) !== JSON.stringify(expected))).toEqual([]);
    const templateLedger = await inDatabase<{ version: string }>(stack.templateDb, 'SELECT version FROM silo._silo_migrations ORDER BY version');
    expect(templateLedger.map((r) => r.version)).toEqual(VERSIONS);
    const templateMarkers = await inDatabase<{ n: number }>(stack.templateDb, 'SELECT count(*)::int AS n FROM fire_marker');
    expect(templateMarkers).toEqual([{ n: 3 }]);

    // The control database's mirror agrees with every ledger.
    const mirror = await stack.sql<{ tenant_id: string; version: string; last_error: string | null; drift: string | null; applied_count: number }>(
      'SELECT tenant_id, version, last_error, drift, applied_count FROM tenant_schema_versions');
    expect(mirror.filter((m) => m.version !== '0004' || m.last_error !== null || m.drift !== null || m.applied_count !== VERSIONS.length)).toEqual([]);
    expect(mirror.map((m) => m.tenant_id).sort()).toEqual(tenants.map((t) => t.id).sort());

    // No advisory lock left behind: none held, and a run that connects to every tenant is not blocked.
    const [locks] = (await admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.objid = $2 AND d.datname = ANY($1)`,
      [[...tenants.map((t) => t.database), stack.templateDb], TENANT_MIGRATION_LOCK_KEY])).rows;
    expect(Number(locks?.n)).toBe(0);
    const verify = await runCli(['migrate', 'up', '--all', '--yes', '--verify', '--concurrency', '4', '--lock-wait', '1', '--json'], env, { timeoutMs: 60_000 });
    figures.verifyRunSeconds = round(verify.ms / 1000);
    expect(verify.code).toBe(0);
    const verified = JSON.parse(verify.stdout) as { tenants: Array<{ outcome: string; verified: boolean }> };
    expect(verified.tenants.filter((t) => t.outcome !== 'up-to-date' || !t.verified)).toEqual([]);

    // Status, from the mirror and from each tenant's ledger: nothing pending, nothing failed.
    for (const extra of [[], ['--check']]) {
      const status = await runCli(['migrate', 'status', '--json', ...extra], env, { timeoutMs: 60_000 });
      expect(status.code).toBe(0);
      const s = JSON.parse(status.stdout) as { latest: string; tenants: Array<{ slug: string; state: string; pending: number | null; lastError: string | null }>; counts: Record<string, number> };
      expect(s.latest).toBe('0004');
      expect(s.tenants).toHaveLength(TENANTS);
      expect(s.tenants.filter((t) => t.state !== 'up-to-date' || t.pending !== 0 || t.lastError !== null)).toEqual([]);
    }

    // A tenant provisioned now is cloned from the template: at the latest version, with its one-time rows from the template.
    const late = await stack.api(cp.url, 'POST', '/v1/tenants', { name: 'Fire late', slug: 'fire-late' });
    expect(late.status).toBe(202);
    const lateDeadline = Date.now() + 30_000;
    let lateRow: { status: string; database: string | null } | undefined;
    while (Date.now() < lateDeadline) {
      [lateRow] = await stack.sql<{ status: string; database: string | null }>(
        `SELECT t.status, c.database FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id WHERE t.slug = 'fire-late'`);
      if (lateRow?.status === 'active') break;
      await sleep(200);
    }
    expect(lateRow?.status).toBe('active');
    expect((await inDatabase<{ version: string }>(lateRow?.database as string, 'SELECT version FROM silo._silo_migrations ORDER BY version')).map((r) => r.version)).toEqual(VERSIONS);

    figures.runs = runs;
    figures.migrationsAppliedTwice = 0;
    figures.dataLost = 0;
    figures.totalSeconds = round((Date.now() - started) / 1000);
    recordFigures('Migrations under fire', figures);
  });
});
