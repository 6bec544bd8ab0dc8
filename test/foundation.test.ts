import { DataSource } from 'typeorm';
import { DATA_SOURCE } from '../control-plane/common/tokens';
import { loadControlPlaneConfig } from '../control-plane/config';
import { CONTROL_DB_MIGRATIONS, createControlDataSource, migrateControlDb } from '../control-plane/db/data-source';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { adminQuery, createEmptyDatabase } from './support/test-db';

describe('config validation', () => {
  it('lists every bad or missing variable at once', () => {
    let message = '';
    try {
      loadControlPlaneConfig({ DATABASE_URL: 'mysql://nope', ADMIN_TOKEN: 'short', CONTROL_PLANE_PORT: '99999', PROVISIONING_DRIVER: 'aws' });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const v of ['DATABASE_URL', 'ADMIN_TOKEN', 'CONTROL_PLANE_PORT', 'SILO_MASTER_KEY', 'AWS_REGION', 'TENANT_STATE_BUCKET']) expect(message).toContain(v);
  });

  it('never echoes secret values in its errors', () => {
    expect(() => loadControlPlaneConfig({ DATABASE_URL: 'postgres://u:hunter2@h/db', ADMIN_TOKEN: 'tooshort-secret', SILO_MASTER_KEY: 'not-a-key' })).toThrow(/ADMIN_TOKEN/);
    try {
      loadControlPlaneConfig({ DATABASE_URL: 'postgres://u:hunter2@h/db', ADMIN_TOKEN: 'tooshort-secret', SILO_MASTER_KEY: 'not-a-key' });
    } catch (err) {
      expect((err as Error).message).not.toMatch(/hunter2|tooshort-secret|not-a-key/);
    }
  });

  it('applies defaults and treats empty strings as unset', () => {
    const c = loadControlPlaneConfig({ DATABASE_URL: 'postgres://localhost/silo', ADMIN_TOKEN: 'x'.repeat(32), SILO_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'), REDIS_URL: '' });
    expect(c.CONTROL_PLANE_PORT).toBe(3000);
    expect(c.REDIS_URL).toBeUndefined();
    expect(c.PROVISIONING_DRIVER).toBe('local');
    expect(c.OFFBOARD_RETENTION_DAYS).toBe(30);
  });

  it('refuses a periodic interval the periodic_tasks table cannot hold (32-bit milliseconds), naming the setting', () => {
    const base = { DATABASE_URL: 'postgres://localhost/silo', ADMIN_TOKEN: 'x'.repeat(32), SILO_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') };
    for (const name of ['RECONCILE_INTERVAL_SECONDS', 'STORAGE_SWEEP_INTERVAL_SECONDS', 'BILLING_RECONCILE_INTERVAL_SECONDS']) {
      expect(() => loadControlPlaneConfig({ ...base, [name]: '2147484' })).toThrow(new RegExp(name));
      expect(loadControlPlaneConfig({ ...base, [name]: '2147483' })[name as 'RECONCILE_INTERVAL_SECONDS']).toBe(2_147_483);
    }
  });
});

describe('control-db migrations', () => {
  it('apply to an empty database and are idempotent', async () => {
    const db = await createEmptyDatabase('mig');
    const ds = createControlDataSource(db.url, { poolSize: 2 });
    try {
      await ds.initialize();
      expect(await migrateControlDb(ds)).toEqual(CONTROL_DB_MIGRATIONS.map((m) => m.name));
      expect(await migrateControlDb(ds)).toEqual([]);
      const tables = await adminQuery<{ t: string }>(`SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`, [], db.name);
      expect(tables.map((r) => r.t)).toEqual(expect.arrayContaining(['tenants', 'tenant_connections', 'webhook_events', 'jobs', 'api_keys', 'tenant_schema_versions', 'audit_log', 'local_secrets']));
      const cols = await adminQuery<{ c: string }>(`SELECT column_name AS c FROM information_schema.columns WHERE table_name = 'tenant_connections'`, [], db.name);
      expect(cols.map((r) => r.c).some((c) => /pass/i.test(c))).toBe(false);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});

describe('control plane HTTP basics', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane();
  });
  afterAll(async () => t.close());

  it.each([
    ['no header', null, undefined],
    ['wrong token', 'wrong-token-of-some-length-xxxxxxxx', undefined],
    ['wrong scheme', null, { authorization: 'Basic abc' }],
  ])('refuses admin requests with %s: 401 JSON, no stack', async (_name, token, headers) => {
    const res = await t.api('GET', '/v1/tenants', undefined, { token, headers });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+/);
  });

  it('accepts the admin token', async () => {
    const res = await t.api('GET', '/v1/tenants');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ items: [], total: 0 });
  });

  it('serves liveness, metrics and the OpenAPI document', async () => {
    expect((await t.api('GET', '/health/live', undefined, { token: null })).status).toBe(200);
    const metrics = await t.api('GET', '/metrics', undefined, { token: null });
    expect(metrics.body).toContain('silo_http_request_duration_seconds');
    const doc = await t.api('GET', '/docs/openapi.json', undefined, { token: null });
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/tenants', '/v1/tenants/{id}']));
  });

  it('answers unknown routes and bad JSON with stable codes', async () => {
    expect((await t.api('GET', '/v1/nope')).body.error.code).toBe('NOT_FOUND');
    const res = await fetch(`${t.url}/v1/tenants`, { method: 'POST', headers: { authorization: 'Bearer test-admin-token-0123456789abcdef', 'content-type': 'application/json' }, body: '{"name":' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('VALIDATION_FAILED');
  });

  it('turns readiness to 503 while the control database is unreachable, and back (a check is reused for at most 1 s)', async () => {
    const probe = () => t.api('GET', '/health/ready', undefined, { token: null });
    const until = async (status: number) => {
      let res = await probe();
      for (let i = 0; i < 30 && res.status !== status; i++) {
        await new Promise((r) => setTimeout(r, 100));
        res = await probe();
      }
      return res;
    };
    expect((await probe()).status).toBe(200);
    await adminQuery(`ALTER DATABASE "${t.db.name}" ALLOW_CONNECTIONS false`);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [t.db.name]);
    try {
      const res = await until(503);
      expect(res.status).toBe(503);
      expect(res.body.checks).toMatchObject({ database: 'down', cache: 'up' });
    } finally {
      await adminQuery(`ALTER DATABASE "${t.db.name}" ALLOW_CONNECTIONS true`);
    }
    expect((await until(200)).status).toBe(200);
  });

  it('answers a flood of readiness probes with one database check per second, not one per probe', async () => {
    await new Promise((r) => setTimeout(r, 1_100)); // past any cached check
    const ds = t.cp.app.get<DataSource>(DATA_SOURCE);
    const checks = jest.spyOn(ds, 'query'); // counts, and passes every call through to the real database
    try {
      const statuses = await Promise.all(Array.from({ length: 200 }, () => t.api('GET', '/health/ready', undefined, { token: null }).then((r) => r.status)));
      expect(statuses.every((s) => s === 200)).toBe(true);
      expect(checks.mock.calls.filter(([sql]) => sql === 'SELECT 1').length).toBeLessThanOrEqual(3); // 200 probes in ~1-2 s
    } finally {
      checks.mockRestore();
    }
  });
});
