import Redis from 'ioredis';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { call, createTenants, freePort, issueKey, SeededTenant, startTestRuntime, ThrowawayRedis, waitFor } from './support/runtime-fixtures';

/**
 * The runtime talks to a redis-server this file owns (the control plane keeps the shared one), so
 * the test can kill it mid-run and bring it back on the same port.
 */
describe('tenant runtime through a Redis outage', () => {
  let cp: TestControlPlane;
  let redis: ThrowawayRedis;
  let rt: RunningTenantRuntime;
  let alpha: SeededTenant, beta: SeededTenant;
  let keyAlpha: { id: string; key: string }, keyBeta: string;
  const q = (t: SeededTenant, key: string) => call(rt.url, '/v1/query', { host: `${t.slug}.localhost`, key, body: { sql: 'SELECT current_user AS u' } });
  const ready = () => call(rt.url, '/health/ready');

  beforeAll(async () => {
    cp = await startTestControlPlane();
    [alpha, beta] = await createTenants(cp, [{ slug: 'alpha' }, { slug: 'beta' }]);
    keyAlpha = await issueKey(cp, alpha);
    keyBeta = (await issueKey(cp, beta)).key;
    redis = new ThrowawayRedis(await freePort());
    await redis.start();
    rt = await startTestRuntime(cp, { REDIS_URL: redis.url, RUNTIME_DEGRADED_TTL_MS: '300' }, { kvPrefix: '' });
  });
  afterAll(async () => {
    await rt?.close();
    await redis?.stop();
    await cp?.close();
  });

  it('keeps serving cached and uncached tenants while Redis is down, and recovers when it returns', async () => {
    expect((await q(alpha, keyAlpha.key)).status).toBe(200);
    const direct = new Redis(redis.url);
    expect(await direct.get('silo:tenant:slug:alpha')).toContain('"slug":"alpha"'); // written through on the DB hit
    expect(await direct.get('silo:tenant:slug:alpha')).not.toMatch(/password/i);
    direct.disconnect();

    await redis.stop();
    const degraded = await waitFor(ready, (r) => r.body.checks?.cache === 'down', 3_000, 50);
    expect(degraded.status).toBe(200); // still in rotation: it can serve
    expect(degraded.body).toEqual({ status: 'degraded', checks: { database: 'up', cache: 'down', invalidations: 'down' } });

    // Past the degraded TTL, entries are re-read from the control database; nothing fails.
    for (let i = 0; i < 5; i++) {
      expect((await q(alpha, keyAlpha.key)).body.rows).toEqual([{ u: alpha.role }]);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await q(beta, keyBeta)).body.rows).toEqual([{ u: beta.role }]); // never cached: database fallback

    // Without invalidations, a revoked key still stops working within a second (short TTLs).
    const revokedAt = Date.now();
    expect((await cp.api('DELETE', `/v1/tenants/${alpha.id}/api-keys/${keyAlpha.id}`)).status).toBe(200);
    const refused = await waitFor(() => q(alpha, keyAlpha.key), (r) => r.status === 401, 2_000, 20);
    expect(refused.status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1_000);
    keyAlpha = await issueKey(cp, alpha);

    expect(rt.stats().directoryEntries).toBeGreaterThan(0);
    await redis.start();
    const back = await waitFor(ready, (r) => r.body.status === 'ready' && r.body.checks.invalidations === 'up', 5_000, 50);
    expect(back.body).toEqual({ status: 'ready', checks: { database: 'up', cache: 'up', invalidations: 'up' } });
    // Invalidations may have been missed while it was down: the local caches were dropped on reconnect.
    expect(rt.stats().directoryEntries).toBe(0);
    expect((await q(alpha, keyAlpha.key)).status).toBe(200);
    expect((await q(beta, keyBeta)).status).toBe(200);
    const again = new Redis(redis.url);
    expect(await again.get('silo:tenant:slug:beta')).toContain('"slug":"beta"');
    again.disconnect();
  });
});
