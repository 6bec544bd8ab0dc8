import { checkoutSessionObject, newSubscription, nowSeconds, stripeEvent, stripeEvents, StripeEventFixture, SubscriptionState } from './support/stripe-fixtures';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { auditOf, deliver, deliverAll, jobsOf, PLANS_FILE, tenantOf, tenantsOf } from './support/stripe';

/**
 * A purchase as Stripe delivers it (issue #15 items 1 and 2): the tenant's slug depends on what is
 * known about the purchase, not on the order the events arrive in, and a subscription nobody paid
 * for never gets a usable tenant.
 */
const permutations = <T>(xs: T[]): T[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest])));

/** Checkout (hosted page): the subscription (active), its first invoice paid, the session that names the customer. */
function checkoutPurchase(s: SubscriptionState, at: number): StripeEventFixture[] {
  return [stripeEvents.subscriptionCreated(s, at), stripeEvents.invoicePaid(s, at, 'subscription_create'), stripeEvents.checkoutCompleted(s, at)];
}

describe('billing: a purchase names and activates its tenant the same way in every delivery order', () => {
  let t: TestControlPlane;
  // A long checkout wait: provisioning runs only once the checkout has arrived (or the wait is cut short by the test).
  beforeAll(async () => {
    t = await startTestControlPlane({ TIERS_FILE: PLANS_FILE, BILLING_CHECKOUT_WAIT_SECONDS: '3600' });
  });
  afterAll(async () => t.close());

  const finalState = async (s: SubscriptionState) => {
    await t.drainJobs();
    const row = await tenantOf(t, s.subscriptionId);
    return { slug: row.slug, status: row.status, billing: row.billing_status };
  };

  it('gives a Checkout purchase the slug of the customer\'s name in all 6 orders of its events (and with a duplicate), never one from the customer id', async () => {
    const at = nowSeconds() - 60;
    const orders = permutations([0, 1, 2]);
    for (const [n, order] of orders.entries()) {
      const s = newSubscription({ customerName: `Acme Corp ${n + 1}` });
      const events = checkoutPurchase(s, at);
      const sequence = order.map((i) => events[i] as StripeEventFixture);
      await deliverAll(t, [...sequence, sequence[0] as StripeEventFixture]); // a redelivery too
      expect({ order: order.join(''), ...(await finalState(s)) }).toEqual({ order: order.join(''), slug: `acme-corp-${n + 1}`, status: 'active', billing: 'active' });
    }
    // Whenever the subscription came first, the rename before going live is on record.
    const first = await tenantOf(t, (await t.sql<{ stripe_subscription_id: string }>(`SELECT stripe_subscription_id FROM tenants WHERE slug = 'acme-corp-1'`))[0]?.stripe_subscription_id as string);
    expect((await auditOf(t, first.id)).find((a) => a.action === 'slug_changed')?.detail).toMatchObject({ to: 'acme-corp-1', fromSource: 'customer', toSource: 'name' });
  });

  it('never renames a tenant once its hostname is live', async () => {
    const s = newSubscription({ customerName: 'Live Corp' });
    await deliverAll(t, checkoutPurchase(s, nowSeconds() - 60));
    expect(await finalState(s)).toMatchObject({ slug: 'live-corp', status: 'active' });
    // A later session naming the customer differently (a second checkout of the same subscription).
    await deliver(t, stripeEvents.checkoutCompleted({ ...s, customerName: 'Renamed Corp', slug: 'renamed' }));
    expect(await finalState(s)).toMatchObject({ slug: 'live-corp', status: 'active' });
  });

  it('uses a tenant_slug set only on the checkout session, normalised to a DNS label ("Acme Corp" → acme-corp), in either order', async () => {
    for (const [n, checkoutFirst] of [true, false].entries()) {
      const s = newSubscription({ customerName: 'Someone Else' });
      const session = checkoutSessionObject({ ...s, slug: `Acme Corp ${['One', 'Two'][n]}` }, nowSeconds());
      const checkout = stripeEvent('checkout.session.completed', session);
      const created = stripeEvents.subscriptionCreated(s); // subscription metadata: {}
      await deliverAll(t, checkoutFirst ? [checkout, created] : [created, checkout]);
      expect(await finalState(s)).toMatchObject({ slug: `acme-corp-${['one', 'two'][n]}`, status: 'active' });
    }
  });

  it('holds a subscription without a checkout (Elements, API) for BILLING_CHECKOUT_WAIT_SECONDS, then provisions it', async () => {
    const s = newSubscription({ customerName: null, customerEmail: null });
    await deliver(t, stripeEvents.subscriptionCreated(s));
    expect(await finalState(s)).toMatchObject({ status: 'pending' });
    expect(await jobsOf(t, (await tenantOf(t, s.subscriptionId)).id)).toEqual([expect.objectContaining({ type: 'provision', status: 'queued' })]);
    await t.sql(`UPDATE jobs SET run_at = now() WHERE status = 'queued'`); // the wait is over
    expect(await finalState(s)).toMatchObject({ slug: expect.stringMatching(/^cus-/), status: 'active' });
  });

  it('gives an abandoned Elements payment (incomplete → incomplete_expired) no usable tenant, no database, and frees its slug at once', async () => {
    const s = newSubscription({ status: 'incomplete', slug: 'abandoned-co' });
    await deliverAll(t, [stripeEvents.subscriptionCreated(s), stripeEvents.invoicePaymentFailed(s)]);
    await t.sql(`UPDATE jobs SET run_at = now() WHERE status = 'queued'`);
    const pending = await tenantOf(t, s.subscriptionId);
    // Unpaid: a placeholder slug, so the requested one stays free for whoever pays.
    expect(await finalState(s)).toMatchObject({ slug: expect.stringMatching(/^pending-[0-9a-f]{16}$/), status: 'pending', billing: 'incomplete' });
    expect(await jobsOf(t, pending.id)).toEqual([]); // nothing provisions an unpaid subscription
    expect(await t.sql('SELECT 1 FROM tenant_connections WHERE tenant_id = $1', [pending.id])).toEqual([]);

    await deliver(t, stripeEvents.subscriptionUpdated({ ...s, status: 'incomplete_expired' }, nowSeconds() + 1, { status: 'incomplete' }));
    expect(await finalState(s)).toMatchObject({ status: 'deleted' });
    // The slug is free again: the next purchase that asks for it gets exactly it.
    const again = newSubscription({ slug: 'abandoned-co' });
    await deliverAll(t, checkoutPurchase(again, nowSeconds()));
    expect(await finalState(again)).toMatchObject({ slug: 'abandoned-co', status: 'active' });
  });

  it('lets no number of unpaid subscriptions reserve a slug: 60 abandoned payments asking for "wanted", then a paying customer gets exactly "wanted"', async () => {
    for (let i = 0; i < 60; i++) {
      const unpaid = newSubscription({ status: 'incomplete', slug: 'wanted' });
      await deliver(t, stripeEvents.subscriptionCreated(unpaid));
    }
    expect(await t.sql(`SELECT 1 FROM tenants WHERE slug LIKE 'wanted%'`)).toEqual([]);
    const payer = newSubscription({ slug: 'wanted' });
    await deliverAll(t, checkoutPurchase(payer, nowSeconds()));
    expect(await finalState(payer)).toMatchObject({ slug: 'wanted', status: 'active' });
  });

  it('names an unpaid tenant when it is paid, from the best name any of its events carried, in either order of the paying events', async () => {
    for (const [n, checkoutFirst] of [false, true].entries()) {
      const s = newSubscription({ status: 'incomplete', customerName: `Late Payer ${n + 1}` });
      await deliver(t, stripeEvents.subscriptionCreated(s));
      const paid = { ...s, status: 'active' };
      const events = [stripeEvents.invoicePaid(paid, nowSeconds() + 1, 'subscription_create'), stripeEvents.checkoutCompleted(paid, nowSeconds() + 1)];
      await deliverAll(t, checkoutFirst ? events.reverse() : events);
      const row = await tenantOf(t, s.subscriptionId);
      expect(row.slug).toBe(`late-payer-${n + 1}`);
      expect(await auditOf(t, row.id)).toEqual(expect.arrayContaining([expect.objectContaining({ action: 'slug_changed' })]));
    }
  });

  it('gives a purchase whose cancellation arrives first the slug in-order delivery gives it (the paid events name it after the fact)', async () => {
    const at = nowSeconds() - 120;
    const s = newSubscription({ slug: 'cancelled-first' });
    const purchase = checkoutPurchase(s, at);
    await deliverAll(t, [stripeEvents.subscriptionDeleted(s, at + 60), ...purchase]);
    const row = await tenantOf(t, s.subscriptionId);
    expect({ slug: row.slug, status: row.status, billing: row.billing_status }).toEqual({ slug: 'cancelled-first', status: 'suspended', billing: 'canceled' });
  });

  it('provisions a purchase whose pause arrived before the events that paid for it, and keeps it suspended (as in-order delivery ends)', async () => {
    const at = nowSeconds() - 120;
    const s = newSubscription({ slug: 'paused-first' });
    await deliver(t, stripeEvents.subscriptionPaused(s, at + 60));
    await deliverAll(t, checkoutPurchase(s, at));
    await t.drainJobs();
    const row = await tenantOf(t, s.subscriptionId);
    expect({ slug: row.slug, status: row.status, billing: row.billing_status }).toEqual({ slug: 'paused-first', status: 'suspended', billing: 'paused' });
    expect(await t.sql('SELECT 1 FROM tenant_connections WHERE tenant_id = $1', [row.id])).toHaveLength(1);
  });

  it('provisions an Elements subscription once it is paid (incomplete, then invoice.paid and active)', async () => {
    const s = newSubscription({ status: 'incomplete', slug: 'paid-later' });
    await deliver(t, stripeEvents.subscriptionCreated(s));
    expect(await finalState(s)).toMatchObject({ status: 'pending', billing: 'incomplete' });
    const paid = { ...s, status: 'active' };
    await deliverAll(t, [stripeEvents.invoicePaid(paid, nowSeconds() + 1, 'subscription_create'), stripeEvents.subscriptionUpdated(paid, nowSeconds() + 1, { status: 'incomplete' })]);
    expect(await finalState(s)).toMatchObject({ slug: 'paid-later', status: 'active', billing: 'active' });
  });

  it('orders two subscription events of the same second by what they say, not by arrival: created (incomplete) and updated (active) end active and provisioned either way', async () => {
    for (const [n, createdLast] of [false, true].entries()) {
      const at = nowSeconds() - 5;
      const s = newSubscription({ status: 'incomplete', slug: `same-second-${n + 1}` });
      const created = stripeEvents.subscriptionCreated(s, at);
      const updated = stripeEvents.subscriptionUpdated({ ...s, status: 'active' }, at, { status: 'incomplete' });
      await deliverAll(t, createdLast ? [updated, created] : [created, updated]);
      expect(await finalState(s)).toEqual({ slug: `same-second-${n + 1}`, status: 'active', billing: 'active' });
    }
  });

  it('provisions an unpaid subscription at once with BILLING_PROVISION_ON=subscription (trial-first operators)', async () => {
    const eager = await startTestControlPlane({ TIERS_FILE: PLANS_FILE, BILLING_PROVISION_ON: 'subscription' });
    try {
      const s = newSubscription({ status: 'incomplete', slug: 'eager-co' });
      await deliver(eager, stripeEvents.subscriptionCreated(s));
      await eager.drainJobs();
      expect((await tenantsOf(eager, s.subscriptionId))[0]).toMatchObject({ slug: 'eager-co', status: 'active' });
    } finally {
      await eager.close();
    }
  });
});
