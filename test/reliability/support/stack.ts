import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { tenantDbName } from '../../../provisioning/local/pg-names';
import { testDatabaseUrl } from '../../support/env';
import { adminQuery, createTestDatabase, testDatabaseName, TestDatabase } from '../../support/test-db';
import { ENTRY, httpReady, killAll, ServiceProcess } from './processes';
import { OwnedRedis } from './redis-server';
import { freePort, mapLimit } from '../../../scripts/support/dev-utils';
export { freePort, mapLimit };

export const ADMIN_TOKEN = `reliability-admin-${randomBytes(12).toString('hex')}`;
export const WEBHOOK_SECRET = `whsec_reliability_${randomBytes(12).toString('hex')}`;
export const DIRECTORY_KEY = `reliability-directory-${randomBytes(16).toString('hex')}`;

/**
 * Everything one reliability test file runs against: its own control database (cloned from the
 * migrated template), its own redis-server, its own tenant template database, a master key, and
 * factories for the three services as separate processes built from dist/. `cleanup()` removes
 * all of it, including every tenant database and role the services created (found by this
 * installation's marker and by the tenants table), even when the test failed half-way.
 */
export class ReliabilityStack {
  db!: TestDatabase;
  redis!: OwnedRedis;
  control!: Pool;
  readonly masterKey = randomBytes(32).toString('base64');
  readonly templateDb: string;
  private readonly processes: ServiceProcess[] = [];
  private readonly extraDatabases: string[] = [];

  private constructor(readonly label: string) {
    this.templateDb = testDatabaseName(`${label}tpl`);
  }

  /** `label` is short and starts with `rel` (global setup finds dead runs' tenants by it). */
  static async create(label: string): Promise<ReliabilityStack> {
    if (!label.startsWith('rel')) throw new Error('stack labels start with "rel"');
    const s = new ReliabilityStack(label);
    s.db = await createTestDatabase(label);
    s.control = new Pool({ connectionString: s.db.url, max: 3, application_name: 'silo-reliability-test' });
    s.control.on('error', () => undefined);
    s.redis = await OwnedRedis.start();
    return s;
  }

  /** The marker the local driver writes on this installation's tenant databases and roles. */
  get marker(): string {
    return `silo-instance:${this.db.name}`;
  }

  async sql<T extends Record<string, unknown> = Record<string, unknown>>(query: string, params: unknown[] = []): Promise<T[]> {
    return (await this.control.query(query, params)).rows as T[];
  }

  /** Settings shared by the control plane, the worker and the CLI. */
  controlEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      HOST: '127.0.0.1',
      DATABASE_URL: this.db.url,
      DATABASE_POOL_SIZE: '6',
      REDIS_URL: this.redis.url,
      ADMIN_TOKEN,
      SILO_MASTER_KEY: this.masterKey,
      SILO_DIRECTORY_KEY: DIRECTORY_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      TENANT_DATABASE_URL: testDatabaseUrl(),
      TENANT_TEMPLATE_DATABASE: this.templateDb,
      LOG_LEVEL: 'info',
      RECONCILE_INTERVAL_SECONDS: '0',
      EXPORT_DIR: `/tmp/silo-reliability-exports-${this.db.name}`,
      ...extra,
    };
  }

  runtimeEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      HOST: '127.0.0.1',
      DATABASE_URL: this.db.url,
      REDIS_URL: this.redis.url,
      SILO_MASTER_KEY: this.masterKey,
      SILO_DIRECTORY_KEY: DIRECTORY_KEY,
      LOG_LEVEL: 'warn',
      RUNTIME_ACCESS_LOG: 'false',
      ...extra,
    };
  }

  /** Control plane (HTTP API, webhooks, and the in-process worker unless JOB_WORKER_ENABLED=false) on a fixed port. */
  async controlPlane(extra: Record<string, string> = {}): Promise<ServiceProcess & { url: string }> {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const p = new ServiceProcess('control-plane', ENTRY.controlPlane, this.controlEnv({ CONTROL_PLANE_PORT: String(port), ...extra }), httpReady(() => url));
    this.processes.push(p);
    return Object.assign(p, { url });
  }

  /** The standalone job worker (`node dist/scripts/worker.js`). */
  worker(extra: Record<string, string> = {}): ServiceProcess {
    const p = new ServiceProcess('worker', ENTRY.worker, this.controlEnv(extra), (w) => w.waitForLine(/job worker started/));
    this.processes.push(p);
    return p;
  }

  /** `silo worker` (bin/silo.js). */
  siloWorker(extra: Record<string, string> = {}): ServiceProcess {
    const p = new ServiceProcess('silo-worker', ENTRY.cli, this.cliEnv(extra), (w) => w.waitForLine(/job worker started/), ['worker']);
    this.processes.push(p);
    return p;
  }

  async runtime(extra: Record<string, string> = {}): Promise<ServiceProcess & { url: string; metricsUrl: string }> {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const url = `http://127.0.0.1:${port}`;
    const p = new ServiceProcess('tenant-runtime', ENTRY.runtime, this.runtimeEnv({ RUNTIME_PORT: String(port), RUNTIME_METRICS_PORT: String(metricsPort), RUNTIME_PG_PORT: '0', ...extra }), httpReady(() => url));
    this.processes.push(p);
    return Object.assign(p, { url, metricsUrl: `http://127.0.0.1:${metricsPort}` });
  }

  /** Environment for `node bin/silo.js …`. */
  cliEnv(extra: Record<string, string> = {}): Record<string, string> {
    const env = this.controlEnv(extra);
    delete env.HOST;
    delete env.ADMIN_TOKEN;
    return env;
  }

  /** A second control database (e.g. the reference run of the webhook scenario), dropped by cleanup. */
  async secondControlDb(label: string): Promise<TestDatabase> {
    const db = await createTestDatabase(label);
    this.extraDatabases.push(db.name);
    return db;
  }

  /** Admin API call with the admin token. */
  async api(baseUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      return { status: res.status, body: text };
    }
  }

  /** Tenant databases and roles on the server that carry this installation's marker. */
  async markedObjects(): Promise<{ databases: string[]; roles: string[] }> {
    const dbs = await adminQuery<{ n: string }>(`SELECT datname AS n FROM pg_database WHERE shobj_description(oid, 'pg_database') = $1 ORDER BY 1`, [this.marker]);
    const roles = await adminQuery<{ n: string }>(`SELECT rolname AS n FROM pg_roles WHERE shobj_description(oid, 'pg_authid') = $1 ORDER BY 1`, [this.marker]);
    return { databases: dbs.map((r) => r.n), roles: roles.map((r) => r.n) };
  }

  /** Drops tenant databases and roles (several at once: each DROP DATABASE waits for a checkpoint). */
  async dropTenants(names: string[], concurrency = 8): Promise<void> {
    const pool = new Pool({ connectionString: testDatabaseUrl(), max: concurrency, application_name: 'silo-reliability-cleanup' });
    pool.on('error', () => undefined);
    try {
      await mapLimit(names, concurrency, async (n) => {
        await pool.query(`DROP DATABASE IF EXISTS "${n}" WITH (FORCE)`).catch(() => undefined);
      });
      await mapLimit(names, concurrency, async (n) => {
        // The terminator role holds CONNECT on the maintenance database: DROP OWNED revokes it first.
        await pool.query(n.startsWith('silo_terminator_') ? `DROP OWNED BY "${n}"; DROP ROLE IF EXISTS "${n}"` : `DROP ROLE IF EXISTS "${n}"`).catch(() => undefined);
      });
    } finally {
      await pool.end();
    }
  }

  /** Stops every process, then removes every database, role and server this file created. */
  async cleanup(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill()));
    await killAll();
    const names = new Set<string>();
    if (this.db) {
      const ids = await this.sql<{ id: string }>('SELECT id FROM tenants').catch(() => []);
      for (const { id } of ids) names.add(tenantDbName(id));
      const marked = await this.markedObjects().catch(() => ({ databases: [], roles: [] }));
      for (const n of [...marked.databases, ...marked.roles]) names.add(n);
      await this.control.end().catch(() => undefined);
    }
    for (const name of this.extraDatabases) {
      const ids = await adminQuery<{ id: string }>('SELECT id FROM tenants', [], name).catch(() => []);
      for (const { id } of ids) names.add(tenantDbName(id));
    }
    await this.dropTenants([...names]);
    await adminQuery(`DROP DATABASE IF EXISTS "${this.templateDb}" WITH (FORCE)`).catch(() => undefined);
    for (const name of this.extraDatabases) await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    await this.db?.drop().catch(() => undefined);
    await this.redis?.kill();
  }
}
