import { spawn, ChildProcess } from 'node:child_process';
import { Agent } from 'node:http';
import { createLogger } from '../../common/logger';
import { loadRuntimeConfig } from '../../tenant-runtime/config';
import { RunningTenantRuntime, startTenantRuntime, TenantRuntimeOptions } from '../../tenant-runtime/server';
import { TestControlPlane } from './control-plane';
import { testRedisUrl } from './env';
import { CallOptions, httpCall, HttpResult } from './http-call';
import { adminQuery } from './test-db';
export { freePort } from '../../scripts/support/dev-utils';

export interface SeededTenant {
  id: string;
  slug: string;
  /** The tenant's database role (`t_<uuid hex>`), as seen in pg_stat_activity. */
  role: string;
}

/** Creates tenants through the admin API and runs their provisioning jobs; resolves once all are active. */
export async function createTenants(cp: TestControlPlane, specs: Array<{ slug: string; tier?: string }>): Promise<SeededTenant[]> {
  const created: Array<{ id: string; slug: string }> = [];
  for (const s of specs) {
    const r = await cp.api('POST', '/v1/tenants', { name: s.slug, slug: s.slug, ...(s.tier ? { tier: s.tier } : {}) });
    if (r.status !== 202) throw new Error(`create ${s.slug}: ${r.status} ${JSON.stringify(r.body)}`);
    created.push({ id: r.body.id, slug: r.body.slug });
  }
  for (let i = 0; i < 20; i++) {
    await cp.drainJobs();
    const rows = await cp.sql<{ id: string; status: string; username: string | null }>(
      'SELECT t.id, t.status, c.username FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id WHERE t.id = ANY($1)', [created.map((c) => c.id)]);
    if (rows.length === created.length && rows.every((r) => r.status === 'active')) {
      return created.map((c) => ({ ...c, role: rows.find((r) => r.id === c.id)?.username as string }));
    }
  }
  throw new Error('tenants did not become active');
}

export async function issueKey(cp: TestControlPlane, tenant: { id: string }, name = 'test'): Promise<{ id: string; key: string; prefix: string }> {
  const r = await cp.api('POST', `/v1/tenants/${tenant.id}/api-keys`, { name });
  if (r.status !== 201) throw new Error(`issue key: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.id, key: r.body.key, prefix: r.body.prefix };
}

/** A runtime on port 0 wired to the test control plane's database, secret key and Redis prefix. */
export async function startTestRuntime(cp: TestControlPlane, env: Record<string, string> = {}, opts: Partial<TenantRuntimeOptions> = {}): Promise<RunningTenantRuntime> {
  const config = loadRuntimeConfig({
    DATABASE_URL: cp.db.url,
    REDIS_URL: testRedisUrl(),
    SILO_MASTER_KEY: cp.config.SILO_MASTER_KEY,
    SILO_DIRECTORY_KEY: cp.config.SILO_DIRECTORY_KEY.join(','),
    RUNTIME_PORT: '0',
    RUNTIME_METRICS_PORT: '0',
    RUNTIME_PG_PORT: '0',
    LOG_LEVEL: 'silent',
    RUNTIME_MAX_CONNECTIONS: '10',
    ...env,
  });
  return startTenantRuntime(config, { logger: createLogger({ name: 'test-runtime', level: config.LOG_LEVEL }), kvPrefix: cp.kvPrefix, ...opts });
}

export type CallResult = Pick<HttpResult, 'status' | 'headers' | 'body'>;

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** `httpCall` for tests that expect the server to answer: a failed connection rejects. */
export async function call(baseUrl: string, path: string, o: Omit<CallOptions, 'agent'> = {}): Promise<CallResult> {
  const r = await httpCall(baseUrl, path, { ...o, agent });
  if (r.status === 0) throw new Error(`${path}: ${r.text}`);
  return r;
}

/** Connections the tenant roles hold right now, from the server's own view. */
export async function connectionsByRole(roles: string[]): Promise<Record<string, number>> {
  const rows = await adminQuery<{ usename: string; n: number }>(
    `SELECT usename, count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY($1) AND application_name = 'silo-runtime' GROUP BY usename`, [roles]);
  return Object.fromEntries(roles.map((r) => [r, rows.find((x) => x.usename === r)?.n ?? 0]));
}

/** A redis-server this test owns, so it can stop and restart it (the shared test Redis stays up). */
export class ThrowawayRedis {
  private child: ChildProcess | null = null;

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      setTimeout(resolve, 150);
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

export async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5_000, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
