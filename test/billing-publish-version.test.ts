import { directoryKeys } from '../common/tenant-directory';
import { newSubscription, nowSeconds, stripeEvents } from './support/stripe-fixtures';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { deliver, tenantOf } from './support/stripe';

/**
 * A webhook writes its directory entry before its commit, while its tenant update is still held in
 * the process (pipelinedTransaction sends deferred writes with the COMMIT): the entry and the
 * `published_version` mark carry the version the commit leaves, however many saves the event made.
 */
describe('billing webhooks: the directory entry written before the commit names the committed version', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane();
  });
  afterAll(async () => t.close());

  const entryOf = async (slug: string) => {
    const raw = await t.cp.kv.get(directoryKeys.slug(slug));
    return raw ? (JSON.parse(raw) as { tenantId: string; status: string; revision: string }) : null;
  };
  const row = async (id: string) => (await t.sql<{ slug: string; version: number; published_version: number | null }>('SELECT slug, version, published_version FROM tenants WHERE id = $1', [id]))[0];
  const jobsOf = async (id: string) => (await t.sql<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE tenant_id = $1 AND type = 'provision'`, [id]))[0].n;

  it('a new subscription: one round of saves, its first provisioning job enqueued once', async () => {
    const s = newSubscription({ slug: 'version-new' });
    const event = stripeEvents.subscriptionCreated(s);
    const res = await deliver(t, event);
    expect(res.status).toBe(200);
    expect(res.body.outcome).toBe('applied');
    const tenant = await tenantOf(t, s.subscriptionId);
    const r = await row(tenant.id as string);
    expect(r.version).toBeGreaterThan(1); // inserted, then updated in the same transaction
    expect(r.published_version).toBe(r.version);
    expect(await entryOf('version-new')).toMatchObject({ tenantId: tenant.id, status: 'pending', revision: `${r.version}:0` });
    expect(await jobsOf(tenant.id as string)).toBe(1);
    // A redelivery changes nothing and enqueues nothing.
    expect((await deliver(t, event)).body.duplicate).toBe(true);
    expect(await jobsOf(tenant.id as string)).toBe(1);
  });

  it('an unpaid subscription paid later: the rename and the status change are two saves in one transaction', async () => {
    const s = newSubscription({ slug: 'version-paid', status: 'incomplete' });
    const at = nowSeconds();
    expect((await deliver(t, stripeEvents.subscriptionCreated(s, at))).status).toBe(200);
    const tenant = await tenantOf(t, s.subscriptionId);
    const placeholder = (await row(tenant.id as string)).slug;
    expect(placeholder).not.toBe('version-paid');
    const before = await row(tenant.id as string);

    const res = await deliver(t, stripeEvents.subscriptionUpdated({ ...s, status: 'active' }, at + 1, { status: 'incomplete' }));
    expect(res.body.outcome).toBe('applied');
    const after = await row(tenant.id as string);
    expect(after.slug).toBe('version-paid');
    expect(after.version).toBeGreaterThanOrEqual(before.version + 2);
    expect(after.published_version).toBe(after.version);
    expect(await entryOf('version-paid')).toMatchObject({ tenantId: tenant.id, revision: `${after.version}:0` });
    expect(await entryOf(placeholder)).toBeNull();
    expect(await jobsOf(tenant.id as string)).toBe(1);
  });

  it('an event for an existing tenant: the entry moves to the version its commit leaves', async () => {
    const s = newSubscription({ slug: 'version-existing' });
    const at = nowSeconds();
    expect((await deliver(t, stripeEvents.subscriptionCreated(s, at))).status).toBe(200);
    const tenant = await tenantOf(t, s.subscriptionId);
    const before = await row(tenant.id as string);
    const res = await deliver(t, stripeEvents.subscriptionUpdated({ ...s, status: 'past_due' }, at + 1, { status: 'active' }));
    expect(res.body.outcome).toBe('applied');
    const after = await row(tenant.id as string);
    expect(after.version).toBe(before.version + 1);
    expect(after.published_version).toBe(after.version);
    expect(await entryOf('version-existing')).toMatchObject({ revision: `${after.version}:0` });
  });
});
