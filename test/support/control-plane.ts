import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../common/logger';
import { loadControlPlaneConfig, ControlPlaneConfig } from '../../control-plane/config';
import { RunningControlPlane, startControlPlane, StartOptions } from '../../control-plane/server';
import { JobWorker } from '../../control-plane/jobs/job-worker';
import { tenantDbName } from '../../provisioning/local/pg-names';
import { dropTerminatorRoleSql } from '../../provisioning/local/terminator-role';
import { testDatabaseUrl, testRedisUrl } from './env';
import { testRedisPrefix } from './redis';
import { adminQuery, createTestDatabase, testDatabaseName, TestDatabase } from './test-db';
import { copyShippedMigrations } from './tenant-migrations';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const TEST_WEBHOOK_SECRET = 'whsec_test_secret_for_silo';
/** SILO_DIRECTORY_KEY of test control planes (test runtimes take the control plane's). */
export const TEST_DIRECTORY_KEY = 'test-directory-key-0123456789abcdef0123';

export interface TestControlPlane {
  url: string;
  cp: RunningControlPlane;
  db: TestDatabase;
  config: ControlPlaneConfig;
  kvPrefix: string;
  /** This control plane's own folder (removed on close): tenant migrations (`SILO_TENANT_MIGRATIONS_DIR`) and exports (`EXPORT_DIR`) unless the test set them. */
  scratchDir: string;
  /** JSON request with the admin token (pass `token: null` for none). */
  api(method: string, path: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string> }): Promise<{ status: number; body: any }>;
  /** Runs every due job now (the background worker is off in tests unless asked for). */
  drainJobs(): Promise<number>;
  sql<T extends Record<string, unknown> = Record<string, unknown>>(query: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * Boots the real control plane on port 0 against a fresh control DB, real Redis (own prefix) and
 * the local driver. It never reads the user's `migrations/tenant` (only Silo's shipped migrations,
 * copied) nor writes to `.silo/exports`: both live in a temp folder removed on close.
 */
export async function startTestControlPlane(env: Record<string, string> = {}, opts: Partial<StartOptions> = {}): Promise<TestControlPlane> {
  const db = await createTestDatabase('cp');
  const redis = testRedisPrefix('cp');
  const template = testDatabaseName('tpl');
  const scratchDir = mkdtempSync(join(tmpdir(), 'silo-test-cp-'));
  const config = loadControlPlaneConfig({
    SILO_TENANT_MIGRATIONS_DIR: copyShippedMigrations(join(scratchDir, 'tenant-migrations')),
    EXPORT_DIR: join(scratchDir, 'exports'),
    DATABASE_URL: db.url,
    REDIS_URL: testRedisUrl(),
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    SILO_MASTER_KEY: randomBytes(32).toString('base64'),
    STRIPE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
    SILO_DIRECTORY_KEY: TEST_DIRECTORY_KEY,
    CONTROL_PLANE_PORT: '0',
    TENANT_DATABASE_URL: testDatabaseUrl(),
    TENANT_TEMPLATE_DATABASE: template,
    JOB_WORKER_ENABLED: 'false',
    LOG_LEVEL: 'silent',
    // Billing tests that do not test the checkout wait provision as soon as a subscription is paid.
    BILLING_CHECKOUT_WAIT_SECONDS: '0',
    ...env,
  });
  const logger = createLogger({ name: 'test-control-plane', level: config.LOG_LEVEL });
  const cp = await startControlPlane(config, { logger, kvPrefix: redis.prefix, ...opts }).catch((err: unknown) => {
    rmSync(scratchDir, { recursive: true, force: true });
    throw err;
  });
  const api: TestControlPlane['api'] = async (method, path, body, o = {}) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    const token = o.token === undefined ? TEST_ADMIN_TOKEN : o.token;
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(cp.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // non-JSON bodies (metrics) stay text
    }
    return { status: res.status, body: parsed as never };
  };
  return {
    url: cp.url, cp, db, config, kvPrefix: redis.prefix, scratchDir, api,
    drainJobs: () => cp.app.get(JobWorker).drain(),
    sql: (q, p) => adminQuery(q, p, db.name),
    close: async () => {
      try {
        const tenants = await adminQuery<{ id: string }>('SELECT id FROM tenants', [], db.name).catch(() => []);
        await cp.close();
        for (const { id } of tenants) {
          await adminQuery(`DROP DATABASE IF EXISTS "${tenantDbName(id)}" WITH (FORCE)`);
          await adminQuery(`DROP ROLE IF EXISTS "${tenantDbName(id)}"`);
        }
        await adminQuery(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
        await adminQuery(dropTerminatorRoleSql(config.SILO_INSTANCE_ID ?? db.name, new URL(testDatabaseUrl()).pathname.slice(1) || 'postgres'));
        await db.drop();
        await redis.cleanup();
      } finally {
        // After cp.close (no job can write an export any more), even when a cleanup above failed.
        rmSync(scratchDir, { recursive: true, force: true });
      }
    },
  };
}
