/** Test-run settings shared by global setup and test files (test code may read the environment). */
export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379';

export function testDatabaseUrl(): string {
  return process.env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
}
export function testRedisUrl(): string {
  return process.env.TEST_REDIS_URL || DEFAULT_TEST_REDIS_URL;
}
export function templateDatabaseName(): string {
  const name = process.env.SILO_TEST_TEMPLATE_DB;
  if (!name) throw new Error('SILO_TEST_TEMPLATE_DB is not set: run tests through jest (global setup creates it)');
  return name;
}
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
