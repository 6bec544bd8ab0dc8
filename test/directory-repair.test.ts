import { directoryKeys } from '../common/tenant-directory';
import { newSubscription, stripeEvents } from './support/stripe-fixtures';
import { TenantService } from '../control-plane/tenants/tenant.service';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { deliver, tenantOf } from './support/stripe';

/**
 * A process killed between a commit and its directory write used to leave the runtime trusting a
 * stale entry until the next reconcile (300 s by default). `published_version` records what the
 * directory holds; the directory-repair periodic task republishes what is behind.
 */
describe('directory repair: a change whose directory write was lost reaches the directory', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane();
  });
  afterAll(async () => t.close());

  const entryOf = async (slug: string) => JSON.parse((await t.cp.kv.get(directoryKeys.slug(slug))) as string) as { tier: string; status: string };
  const versions = async (id: string) => (await t.sql<{ version: number; published_version: number | null }>('SELECT version, published_version FROM tenants WHERE id = $1', [id]))[0];

  it('records the version each publish wrote, and republishes a tenant committed without one, once', async () => {
    const created = await t.api('POST', '/v1/tenants', { name: 'Lost Write', slug: 'lost-write', tier: 'starter' });
    await t.drainJobs();
    const v = await versions(created.body.id);
    expect(v.published_version).toBe(v.version);
    expect(await entryOf('lost-write')).toMatchObject({ status: 'active', tier: 'starter' });

    // What a process killed right after its commit leaves behind: the row changed, the directory did not.
    await t.sql(`UPDATE tenants SET tier = 'pro', version = version + 1, updated_at = now() - interval '1 minute' WHERE id = $1`, [created.body.id]);
    expect(await entryOf('lost-write')).toMatchObject({ tier: 'starter' });

    const service = t.cp.app.get(TenantService);
    expect(await service.republishUnpublished()).toBe(1);
    expect(await entryOf('lost-write')).toMatchObject({ status: 'active', tier: 'pro' });
    const after = await versions(created.body.id);
    expect(after.published_version).toBe(after.version);
    expect(await service.republishUnpublished()).toBe(0); // converged
  });

  it('leaves a change of the last seconds to the publish still under way', async () => {
    const created = await t.api('POST', '/v1/tenants', { name: 'In Flight', slug: 'in-flight', tier: 'starter' });
    await t.drainJobs();
    await t.sql(`UPDATE tenants SET tier = 'pro', version = version + 1, updated_at = now() WHERE id = $1`, [created.body.id]);
    expect(await t.cp.app.get(TenantService).republishUnpublished(5)).toBe(0);
    expect(await t.cp.app.get(TenantService).republishUnpublished(0)).toBe(1);
  });

  it('marks what a Stripe event published, in the event\'s own transaction', async () => {
    const s = newSubscription({ slug: 'billed-write' });
    expect((await deliver(t, stripeEvents.subscriptionCreated(s))).status).toBe(200);
    const row = await tenantOf(t, s.subscriptionId);
    const v = await versions(row.id as string);
    expect(v.published_version).toBe(v.version);
    expect(await entryOf('billed-write')).toMatchObject({ status: 'pending' });
  });
});
