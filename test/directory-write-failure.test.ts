import { createServer } from 'node:net';
import { directoryKeys } from '../common/tenant-directory';
import { TenantService } from '../control-plane/tenants/tenant.service';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { ThrowawayRedis } from './support/runtime-fixtures';

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  });
});

/**
 * A directory write the cache refuses (Redis down, or not connected yet) is reported, not thrown:
 * the change still commits. It must then not be recorded as published, or the repair would never
 * redo it and the runtime would trust the old entry until the tenant next changed.
 */
describe('directory: a write Redis refused is left for the repair', () => {
  let redis: ThrowawayRedis;
  let t: TestControlPlane;
  beforeAll(async () => {
    redis = new ThrowawayRedis(await freePort());
    await redis.start();
    t = await startTestControlPlane({ REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
  });

  const versions = async (id: string) => (await t.sql<{ version: number; published_version: number | null }>('SELECT version, published_version FROM tenants WHERE id = $1', [id]))[0];
  const entryOf = async (slug: string) => JSON.parse((await t.cp.kv.get(directoryKeys.slug(slug))) as string) as { status: string };

  it('does not mark a change published while Redis is down, and republishes it once Redis is back', async () => {
    const created = await t.api('POST', '/v1/tenants', { name: 'Cache Outage', slug: 'cache-outage', tier: 'starter' });
    expect(created.status).toBe(202);
    await t.drainJobs();
    const before = await versions(created.body.id);
    expect(before.published_version).toBe(before.version);
    expect(await entryOf('cache-outage')).toMatchObject({ status: 'active' });

    await redis.stop();
    const suspended = await t.api('POST', `/v1/tenants/${created.body.id}/suspend`, { reason: 'cache outage test' });
    expect(suspended.status).toBe(200); // the cache is optional: the change commits
    const during = await versions(created.body.id);
    expect(during.version).toBeGreaterThan(before.version);
    expect(during.published_version).toBe(before.version); // ...but is not recorded as published

    await redis.start();
    await t.cp.kv.ready?.(5_000);
    expect(await t.cp.app.get(TenantService).republishUnpublished(0)).toBe(1);
    expect(await entryOf('cache-outage')).toMatchObject({ status: 'suspended' });
    const after = await versions(created.body.id);
    expect(after.published_version).toBe(after.version);
  }, 30_000);
});
