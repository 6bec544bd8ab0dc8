import { newSubscription, nowSeconds, stripeEvents } from './support/stripe-fixtures';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { auditOf, deliver, deliverAll, jobsOf, PLANS_FILE, storedEvent, tenantOf, tenantsOf } from './support/stripe';

const DAY = 86_400;

describe('Stripe delivery semantics: duplicates, races, out-of-order events', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({ TIERS_FILE: PLANS_FILE });
  });
  afterAll(async () => t.close());

  it('10 deliveries of one event (5 concurrent, then 5 retries) have one effect: one tenant, one audit entry, one job', async () => {
    const s = newSubscription({ slug: 'once-only' });
    const e = stripeEvents.subscriptionCreated(s);
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => deliver(t, e)));
    const retries = [];
    for (let i = 0; i < 5; i++) retries.push(await deliver(t, e));
    const all = [...concurrent, ...retries];
    expect(all.every((r) => r.status === 200 && r.body.received === true)).toBe(true);
    expect(all.filter((r) => r.body.duplicate === false)).toHaveLength(1);
    expect(retries.every((r) => r.body.duplicate === true)).toBe(true);

    const tenant = await tenantOf(t, s.subscriptionId);
    expect(await auditOf(t, tenant.id)).toEqual([expect.objectContaining({ action: 'created', cause_id: e.id })]);
    expect(await jobsOf(t, tenant.id)).toEqual([expect.objectContaining({ type: 'provision', status: 'queued' })]);
    expect(await t.sql('SELECT id FROM webhook_events WHERE id = $1', [e.id])).toHaveLength(1);
  });

  it('10 concurrent deliveries of a state change apply it once', async () => {
    const s = newSubscription({ slug: 'paused-once' });
    await deliver(t, stripeEvents.subscriptionCreated(s, nowSeconds() - 60));
    const paused = stripeEvents.subscriptionPaused(s);
    const results = await Promise.all(Array.from({ length: 10 }, () => deliver(t, paused)));
    expect(results.filter((r) => r.body.duplicate === false)).toEqual([expect.objectContaining({ body: expect.objectContaining({ outcome: 'applied' }) })]);
    const tenant = await tenantOf(t, s.subscriptionId);
    expect((await auditOf(t, tenant.id)).filter((a) => a.action === 'status_changed')).toEqual([expect.objectContaining({ to_status: 'suspended', cause_id: paused.id })]);
  });

  it.each([
    ['checkout first', true],
    ['subscription.created first', false],
  ])('checkout.session.completed and customer.subscription.created make one tenant (%s), named the same either way', async (_name, checkoutFirst) => {
    const s = newSubscription({ slug: checkoutFirst ? 'order-checkout-first' : 'order-created-first', plan: 'pro' });
    const checkout = stripeEvents.checkoutCompleted(s);
    const created = stripeEvents.subscriptionCreated(s);
    await deliverAll(t, checkoutFirst ? [checkout, created] : [created, checkout]);
    const tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ name: 'Acme Corp', tier: 'pro', status: 'pending', billing_status: 'active', stripe_customer_id: s.customerId });
    expect((await auditOf(t, tenant.id)).filter((a) => a.action === 'created')).toHaveLength(1);
    expect(await jobsOf(t, tenant.id)).toHaveLength(1);
  });

  it('checkout.session.completed and customer.subscription.created delivered concurrently make one tenant', async () => {
    const subs = Array.from({ length: 8 }, (_, i) => newSubscription({ slug: `race-${i}` }));
    await Promise.all(subs.flatMap((s) => [deliver(t, stripeEvents.checkoutCompleted(s)), deliver(t, stripeEvents.subscriptionCreated(s))]));
    for (const s of subs) {
      const rows = await tenantsOf(t, s.subscriptionId);
      expect(rows).toHaveLength(1);
      expect((await auditOf(t, rows[0].id)).filter((a) => a.action === 'created')).toHaveLength(1);
      expect(await jobsOf(t, rows[0].id)).toHaveLength(1);
    }
  });

  it('an older event never rolls back a newer one: it is recorded as stale', async () => {
    const s = newSubscription({ slug: 'no-rollback' });
    const t0 = nowSeconds() - 3 * DAY;
    await deliver(t, stripeEvents.subscriptionCreated(s, t0));
    await deliver(t, stripeEvents.subscriptionUpdated({ ...s, status: 'past_due', plan: newSubscription({ plan: 'pro' }).plan }, t0 + 2 * DAY, { status: 'active' }));
    const older = stripeEvents.subscriptionUpdated({ ...s, status: 'active' }, t0 + DAY, { status: 'trialing' });
    expect((await deliver(t, older)).body).toMatchObject({ duplicate: false, outcome: 'stale' });
    expect((await deliver(t, stripeEvents.invoicePaid(s, t0 + DAY))).body.outcome).toBe('stale');
    expect(await tenantOf(t, s.subscriptionId)).toMatchObject({ billing_status: 'past_due', tier: 'pro', past_due_since: new Date((t0 + 2 * DAY) * 1000), last_event_created: String(t0 + 2 * DAY) });
    expect((await storedEvent(t, older.id))?.outcome).toBe('stale');
  });

  it('a late event that matters is replayed into the history: a resume delivered after a newer failed payment still lifts the pause', async () => {
    const s = newSubscription({ slug: 'late-resume' });
    const t0 = nowSeconds() - 5 * DAY;
    await deliver(t, stripeEvents.subscriptionCreated(s, t0));
    await deliver(t, stripeEvents.subscriptionPaused({ ...s, status: 'paused' }, t0 + DAY));
    await deliver(t, stripeEvents.invoicePaymentFailed({ ...s, status: 'past_due' }, t0 + 3 * DAY));
    expect(await tenantOf(t, s.subscriptionId)).toMatchObject({ status: 'suspended', suspend_reason: 'billing: subscription paused' });
    const resumed = stripeEvents.subscriptionResumed(s, t0 + 2 * DAY);
    expect((await deliver(t, resumed)).body).toMatchObject({ duplicate: false, outcome: 'applied' });
    // In order: resumed on day 2, then the payment failed on day 3.
    const tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ status: 'provisioning', suspend_reason: null, billing_status: 'past_due', past_due_since: new Date((t0 + 3 * DAY) * 1000), last_event_created: String(t0 + 3 * DAY) });
    expect((await auditOf(t, tenant.id)).filter((a) => a.cause_id === resumed.id).map((a) => a.to_status)).toEqual(['provisioning']);
  });

  it('a subscription.updated that arrives before created creates the tenant from the snapshot; created is then stale', async () => {
    const s = newSubscription({ slug: 'updated-first', plan: 'enterprise' });
    const t0 = nowSeconds() - DAY;
    const updated = stripeEvents.subscriptionUpdated({ ...s, status: 'past_due' }, t0 + 3600, { status: 'active' });
    expect((await deliver(t, updated)).body.outcome).toBe('applied');
    expect((await deliver(t, stripeEvents.subscriptionCreated(s, t0))).body.outcome).toBe('stale');
    const tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ slug: 'updated-first', name: s.customerId, tier: 'enterprise', stripe_customer_id: s.customerId, billing_status: 'past_due', status: 'pending' });
    expect(await auditOf(t, tenant.id)).toEqual([expect.objectContaining({ action: 'created', cause_id: updated.id })]);
  });

  it('an invoice event that arrives before created creates the tenant (tier from the invoice line, name from the customer)', async () => {
    const s = newSubscription({ plan: 'pro', customerName: 'Invoice First Ltd' });
    const failed = stripeEvents.invoicePaymentFailed(s, nowSeconds() - 600);
    expect((await deliver(t, failed)).body.outcome).toBe('applied');
    const tenant = await tenantOf(t, s.subscriptionId);
    // A failed payment is not a paid subscription: the tenant holds a placeholder slug until it is.
    expect(tenant).toMatchObject({ slug: expect.stringMatching(/^pending-/), name: 'Invoice First Ltd', tier: 'pro', billing_status: 'past_due', status: 'pending' });
    expect(tenant.past_due_since).toEqual(new Date(failed.created * 1000));
  });

  it('deleted before created: one tenant, suspended with offboarding scheduled, nothing provisioned; created afterwards changes nothing', async () => {
    const s = newSubscription({ slug: 'deleted-first' });
    const t0 = nowSeconds() - DAY;
    expect((await deliver(t, stripeEvents.subscriptionDeleted(s, t0 + 600))).body.outcome).toBe('applied');
    for (const e of [stripeEvents.subscriptionCreated(s, t0), stripeEvents.checkoutCompleted(s, t0), stripeEvents.invoicePaid(s, t0 + 7200)]) {
      expect((await deliver(t, e)).body.outcome).toBe('final');
    }
    const rows = await tenantsOf(t, s.subscriptionId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'suspended', billing_status: 'canceled', suspend_reason: 'billing: subscription canceled' });
    expect(rows[0].offboard_at).not.toBeNull();
    expect(await jobsOf(t, rows[0].id)).toEqual([]); // never paid for while live: no provisioning job was ever queued
  });

  describe('tenant naming', () => {
    it('uses metadata.tenant_slug when it is a valid, free, unreserved DNS label', async () => {
      const s = newSubscription({ slug: 'globex' });
      await deliver(t, stripeEvents.checkoutCompleted(s));
      expect((await tenantOf(t, s.subscriptionId)).slug).toBe('globex');
    });

    it('falls back to a slug derived from the customer when the requested one is reserved or taken, and records why', async () => {
      const reserved = newSubscription({ slug: 'admin', customerName: 'Initech' });
      await deliver(t, stripeEvents.checkoutCompleted(reserved));
      const a = await tenantOf(t, reserved.subscriptionId);
      expect(a.slug).toBe('initech');
      expect((await auditOf(t, a.id))[0].detail).toMatchObject({ requestedSlug: 'admin', slugFallback: 'is reserved' });

      const taken = newSubscription({ slug: 'globex', customerName: 'Globex' });
      await deliver(t, stripeEvents.checkoutCompleted(taken));
      const b = await tenantOf(t, taken.subscriptionId);
      expect(b.slug).toBe('globex-2');
      expect((await auditOf(t, b.id))[0].detail).toMatchObject({ requestedSlug: 'globex', slugFallback: 'taken' });
    });

    it('derives a DNS label from the customer name, or the email when there is no name, suffixing duplicates', async () => {
      const first = newSubscription({ customerName: 'Ünïcode Café GmbH!' });
      const second = newSubscription({ customerName: 'Ünïcode Café GmbH!' });
      const emailOnly = newSubscription({ customerName: null, customerEmail: 'jane.doe@example.com' });
      for (const s of [first, second, emailOnly]) await deliver(t, stripeEvents.checkoutCompleted(s));
      expect((await tenantOf(t, first.subscriptionId)).slug).toBe('unicode-cafe-gmbh');
      expect((await tenantOf(t, second.subscriptionId)).slug).toBe('unicode-cafe-gmbh-2');
      expect(await tenantOf(t, emailOnly.subscriptionId)).toMatchObject({ slug: 'jane-doe', name: 'jane.doe@example.com' });
    });

    it('names a tenant created from a bare subscription after its customer id', async () => {
      const s = newSubscription({ customerId: 'cus_QxY7Zz9AbCdEf1' });
      await deliver(t, stripeEvents.subscriptionCreated(s));
      expect(await tenantOf(t, s.subscriptionId)).toMatchObject({ slug: 'cus-qxy7zz9abcdef1', name: 'cus_QxY7Zz9AbCdEf1' });
    });
  });
});
