import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { BUNDLED_PG_DUMP_MAJOR } from '../../provisioning/local/bundled-pg-dump';
import { templateDatabaseName, testDatabaseUrl, withDatabase } from './env';

/** A throwaway control database cloned from the migrated template; drop() removes it. */
export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(label = 'db'): Promise<TestDatabase> {
  const name = testDatabaseName(label);
  const admin = new Client({ connectionString: testDatabaseUrl() });
  await admin.connect();
  try {
    await createFromTemplate(admin, name, templateDatabaseName());
  } finally {
    await admin.end();
  }
  return { name, url: withDatabase(testDatabaseUrl(), name), drop: () => dropDatabase(name) };
}

/** An empty database (no control schema), for tests of migrations themselves. */
export async function createEmptyDatabase(label = 'empty'): Promise<TestDatabase> {
  const name = testDatabaseName(label);
  await adminQuery(`CREATE DATABASE "${name}"`);
  return { name, url: withDatabase(testDatabaseUrl(), name), drop: () => dropDatabase(name) };
}

/** `silo_test_r<run pid>_<label>_<random>`: global setup drops leftovers of dead runs only. */
export function testDatabaseName(label: string): string {
  return `silo_test_r${process.env.SILO_TEST_RUN_ID ?? process.ppid}_${label.replace(/[^a-z0-9]/g, '').slice(0, 16)}_${randomBytes(5).toString('hex')}`;
}

export async function dropDatabase(name: string): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

export async function adminQuery<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params: unknown[] = [], database?: string): Promise<T[]> {
  const c = new Client({ connectionString: database ? withDatabase(testDatabaseUrl(), database) : testDatabaseUrl() });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

async function createFromTemplate(admin: Client, name: string, template: string): Promise<void> {
  // The template can be briefly busy when files clone it in parallel; retry "being accessed by other users".
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55006' || attempt > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Whether an offboarding export of the test server can succeed: with PG_DUMP_BIN=auto (the default)
 * when the pg_dump on PATH or the bundled one is new enough; with an explicit binary ('path', e.g. a
 * wrapper around pg_dump) only when the one on PATH is (same major version as the server or newer).
 */
export async function pgDumpCanExport(mode: 'auto' | 'path' = 'auto'): Promise<boolean> {
  const { execFileSync } = await import('node:child_process');
  const [{ v }] = await adminQuery<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  const serverMajor = Math.floor(Number(v) / 10000);
  if (mode === 'auto' && serverMajor <= BUNDLED_PG_DUMP_MAJOR) return true;
  try {
    return Number(/(\d+)\./.exec(execFileSync('pg_dump', ['--version']).toString())?.[1] ?? 0) >= serverMajor;
  } catch {
    return false;
  }
}
