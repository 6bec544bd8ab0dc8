import { Pool } from 'pg';
import { decodeKey } from '../common/config-schema';
import { LocalSecretStore } from '../provisioning/secrets/local-secret-store';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { adminQuery } from './support/test-db';
import { call, connectionsByRole, createTenants, issueKey, SeededTenant, startTestRuntime, waitFor } from './support/runtime-fixtures';

describe('tenant runtime pools under a global connection budget', () => {
  let cp: TestControlPlane;
  let tenants: SeededTenant[];
  const keys = new Map<string, string>();
  const runtimes: RunningTenantRuntime[] = [];
  const secretPool: Pool[] = [];

  const query = (rt: RunningTenantRuntime, t: SeededTenant, sql: string) => call(rt.url, '/v1/query', { host: `${t.slug}.localhost`, key: keys.get(t.slug), body: { sql } });
  const start = async (env: Record<string, string>, secretStore?: SecretStore) => {
    const rt = await startTestRuntime(cp, env, secretStore ? { secretStore } : {});
    runtimes.push(rt);
    return rt;
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    tenants = await createTenants(cp, ['p-one', 'p-two', 'p-three', 'p-four', 'p-five'].map((slug) => ({ slug })));
    for (const t of tenants) keys.set(t.slug, (await issueKey(cp, t)).key);
  });
  afterAll(async () => {
    for (const rt of runtimes) await rt.close();
    for (const p of secretPool) await p.end();
    await cp?.close();
  });

  it('never holds more connections than the budget while more tenants than it allows are busy', async () => {
    const rt = await start({ RUNTIME_MAX_CONNECTIONS: '3', RUNTIME_ACQUIRE_TIMEOUT_MS: '10000' });
    const roles = tenants.map((t) => t.role);
    let maxSeen = 0;
    let maxStats = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const byRole = await connectionsByRole(roles);
        maxSeen = Math.max(maxSeen, Object.values(byRole).reduce((a, b) => a + b, 0));
        maxStats = Math.max(maxStats, rt.stats().connections);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    // 5 tenants x 3 concurrent clients x 4 requests each, every request holding its connection ~20 ms.
    const results = await Promise.all(tenants.flatMap((t) => [0, 1, 2].map(async () => {
      const out = [];
      for (let i = 0; i < 4; i++) out.push({ t, r: await query(rt, t, 'SELECT current_user AS u, pg_sleep(0.02)') });
      return out;
    })));
    sampling = false;
    await sampler;
    const flat = results.flat();
    expect(flat).toHaveLength(60);
    for (const { t, r } of flat) {
      expect(r.status).toBe(200);
      expect(r.body.rows[0].u).toBe(t.role); // each tenant on its own role, never another's connection
    }
    expect(maxSeen).toBeGreaterThan(0);
    expect(maxSeen).toBeLessThanOrEqual(3);
    expect(maxStats).toBeLessThanOrEqual(3);
    const metrics = (await call(rt.metricsUrl, '/metrics')).body as string;
    expect(Number(/silo_runtime_pool_evictions_total\{[^}]*\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    await rt.close();
  });

  it('does not let a busy tenant starve a quiet one', async () => {
    // Acquire timeout 2 s: a waiter is overdue after 500 ms and may then take a connection from a
    // tenant holding more than it. (Before that a busy tenant with requests queued keeps its own.)
    const rt = await start({ RUNTIME_MAX_CONNECTIONS: '2', RUNTIME_ACQUIRE_TIMEOUT_MS: '2000' });
    const [busy, quiet] = tenants as [SeededTenant, SeededTenant];
    // The busy tenant keeps 8 requests queued on the whole budget for 3 s.
    const until = Date.now() + 3_000;
    const flood = Promise.all(Array.from({ length: 8 }, async () => {
      const statuses: number[] = [];
      while (Date.now() < until) statuses.push((await query(rt, busy, 'SELECT pg_sleep(0.1)')).status);
      return statuses;
    }));
    await new Promise((r) => setTimeout(r, 300));
    const t = Date.now();
    expect((await query(rt, quiet, 'SELECT 1 AS ok')).status).toBe(200);
    // Served once overdue (500 ms) and one of the busy tenant's statements finished, long before the flood ends.
    expect(Date.now() - t).toBeLessThan(1_200);
    // The busy tenant only waited meanwhile: none of its requests failed.
    expect((await flood).flat().every((s) => s === 200)).toBe(true);
    await rt.close();
  });

  it('does not let as many busy tenants as the budget starve another one (found by the reliability load scenario)', async () => {
    const rt = await start({ RUNTIME_MAX_CONNECTIONS: '2', RUNTIME_ACQUIRE_TIMEOUT_MS: '2000' });
    const [a, b, quiet] = tenants as [SeededTenant, SeededTenant, SeededTenant];
    // Two busy tenants, 4 clients each, back to back for 3 s: each holds one connection of the
    // budget and always has its own requests queued, so neither queue ever empties.
    const until = Date.now() + 3_000;
    const flood = Promise.all([a, b].flatMap((t) => [0, 1, 2, 3].map(async () => {
      const statuses: number[] = [];
      while (Date.now() < until) statuses.push((await query(rt, t, 'SELECT pg_sleep(0.01)')).status);
      return statuses;
    })));
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const r = await query(rt, quiet, 'SELECT 1 AS ok');
    // Before the fix the quiet tenant waited for a queue to empty and got 503 POOL_EXHAUSTED after
    // 2 s; now it gets a slot once its request is overdue (a quarter of the acquire timeout).
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect((await flood).flat().every((s) => s === 200)).toBe(true);
    await rt.close();
  });

  it('opens at most RUNTIME_MAX_CONNECTING_PER_SERVER connections to one server at a time', async () => {
    const rt = await start({ RUNTIME_MAX_CONNECTIONS: '20', RUNTIME_MAX_CONNECTING_PER_SERVER: '1', RUNTIME_ACQUIRE_TIMEOUT_MS: '10000' });
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, rt.stats().connecting);
        await new Promise((r) => setImmediate(r));
      }
    })();
    // 5 tenants with no pool, 3 concurrent first requests each: 5-15 connects wanted at once.
    const results = await Promise.all(tenants.flatMap((t) => [0, 1, 2].map(() => query(rt, t, 'SELECT pg_sleep(0.02)'))));
    sampling = false;
    await sampler;
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(rt.stats().connectsStarted).toBeGreaterThanOrEqual(tenants.length);
    expect(most).toBe(1);
    await rt.close();
  });

  it('serves two starved tenants one after the other instead of passing a fresh connection back and forth (found by the reliability load scenario)', async () => {
    const rt = await start({ RUNTIME_MAX_CONNECTIONS: '1', RUNTIME_ACQUIRE_TIMEOUT_MS: '2000' });
    const [holder, a, b] = tenants as [SeededTenant, SeededTenant, SeededTenant];
    const held = query(rt, holder, 'SELECT pg_sleep(0.8)');
    await new Promise((r) => setTimeout(r, 50));
    // Both wait on the budget past the overdue mark (500 ms). Before the fix each new connection went
    // to the other overdue tenant (same size, 0), which did the same: both got 503 after 2 s.
    const first = query(rt, a, 'SELECT 1 AS ok');
    await new Promise((r) => setTimeout(r, 10));
    const second = query(rt, b, 'SELECT 1 AS ok');
    expect((await held).status).toBe(200);
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(rt.stats().connectsStarted).toBe(3); // holder, a, b: no connection opened for nothing
    await rt.close();
  });

  it('creates a tenant pool once for concurrent first requests, and forgets idle pools', async () => {
    const inner = new LocalSecretStore(new Pool({ connectionString: cp.db.url, max: 2 }), decodeKey(cp.config.SILO_MASTER_KEY as string) as Buffer);
    secretPool.push((inner as unknown as { db: Pool }).db);
    let reads = 0;
    const counting: SecretStore = Object.assign(Object.create(inner) as SecretStore, { get: (ref: string) => (reads++, inner.get(ref)) });
    const rt = await start({ RUNTIME_MAX_CONNECTIONS: '20', RUNTIME_IDLE_TIMEOUT_MS: '300' }, counting);
    const t = tenants[2] as SeededTenant;
    const burst = await Promise.all(Array.from({ length: 8 }, () => query(rt, t, 'SELECT 1 AS ok')));
    expect(burst.every((r) => r.status === 200)).toBe(true);
    expect(reads).toBe(1);
    expect(rt.stats().pools).toBe(1);
    expect(rt.stats().connections).toBeGreaterThanOrEqual(1);
    expect(rt.stats().connections).toBeLessThanOrEqual(8);

    // Touch every tenant, then let them all go idle: connections close and pools are forgotten.
    for (const x of tenants) expect((await query(rt, x, 'SELECT 1')).status).toBe(200);
    expect(rt.stats().pools).toBe(tenants.length);
    const after = await waitFor(async () => rt.stats(), (s) => s.pools === 0 && s.connections === 0, 3_000, 50);
    expect(after).toMatchObject({ pools: 0, connections: 0 });
    // Backends exit after their client closes: give a loaded machine a few seconds to show it.
    const left = await waitFor(() => connectionsByRole(tenants.map((x) => x.role)), (c) => Object.values(c).every((n) => n === 0), 5_000);
    expect(Object.values(left).every((n) => n === 0)).toBe(true);
  });

  it('drops only the refused tenant\'s cached credentials when its login fails (28000), not every tenant\'s', async () => {
    const inner = new LocalSecretStore(new Pool({ connectionString: cp.db.url, max: 2 }), decodeKey(cp.config.SILO_MASTER_KEY as string) as Buffer);
    secretPool.push((inner as unknown as { db: Pool }).db);
    const reads = new Map<string, number>();
    const counting: SecretStore = Object.assign(Object.create(inner) as SecretStore, { get: (ref: string) => (reads.set(ref, (reads.get(ref) ?? 0) + 1), inner.get(ref)) });
    const rt = await start({ RUNTIME_MAX_CONNECTIONS: '20' }, counting);
    const [refused, neighbour] = [tenants[3], tenants[4]] as SeededTenant[];
    const refOf = async (t: SeededTenant) => (await cp.sql<{ secret_ref: string }>('SELECT secret_ref FROM tenant_connections WHERE tenant_id = $1', [t.id]))[0]?.secret_ref as string;
    const [refusedRef, neighbourRef] = [await refOf(refused), await refOf(neighbour)];
    for (const t of [refused, neighbour]) expect((await query(rt, t, 'SELECT 1')).status).toBe(200);
    expect([reads.get(refusedRef), reads.get(neighbourRef)]).toEqual([1, 1]);

    // The refused tenant's role can no longer log in; both tenants' open backends go away.
    await adminQuery(`ALTER ROLE ${refused.role} NOLOGIN`);
    try {
      await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1) AND application_name = 'silo-runtime'`, [[refused.role, neighbour.role]]);
      await waitFor(() => connectionsByRole([refused.role, neighbour.role]), (c) => Object.values(c).every((n) => n === 0), 5_000);
      // Its next requests fail to connect (503) and re-read its credentials each time...
      const failed = await waitFor(() => query(rt, refused, 'SELECT 1'), () => (reads.get(refusedRef) ?? 0) >= 2, 3_000, 20);
      expect(failed.status).toBe(503);
      expect(reads.get(refusedRef)).toBeGreaterThanOrEqual(2);
      // ...while the neighbour reconnects with the credentials it already had.
      expect((await waitFor(() => query(rt, neighbour, 'SELECT 1'), (r) => r.status === 200, 3_000, 20)).status).toBe(200);
      expect(reads.get(neighbourRef)).toBe(1);
    } finally {
      await adminQuery(`ALTER ROLE ${refused.role} LOGIN`);
    }
  });
});
