import { newSubscription, nowSeconds, scenarioEvents, stripeEvent, stripeEvents, SubscriptionState } from './support/stripe-fixtures';
import { TenantService } from '../control-plane/tenants/tenant.service';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { auditOf, deliver, deliverAll, jobsOf, PLANS_FILE, storedEvent, tenantOf, tenantsOf } from './support/stripe';

const DAY = 86_400;

describe('billing events drive the tenant lifecycle', () => {
  let t: TestControlPlane;
  const boughtAt = nowSeconds() - 10 * DAY;
  // One provisioned tenant per story; provisioning is the slow part, so it runs once for all of them.
  const subs: Record<'purchase' | 'payment' | 'invoices' | 'pause' | 'admin' | 'takeover' | 'cancel', SubscriptionState> = {
    purchase: newSubscription({ slug: 'acme', customerName: 'Acme Corp' }),
    payment: newSubscription({ slug: 'payment-story' }),
    invoices: newSubscription({ slug: 'invoice-story' }),
    pause: newSubscription({ slug: 'pause-story' }),
    admin: newSubscription({ slug: 'admin-story' }),
    takeover: newSubscription({ slug: 'takeover-story' }),
    cancel: newSubscription({ slug: 'cancel-story', plan: 'pro' }),
  };
  const purchaseEvents = scenarioEvents('purchase', subs.purchase, { at: boughtAt });

  beforeAll(async () => {
    t = await startTestControlPlane({ TIERS_FILE: PLANS_FILE });
    await deliverAll(t, purchaseEvents.events);
    for (const [name, s] of Object.entries(subs)) {
      if (name === 'purchase') continue;
      const purchase = scenarioEvents('purchase', s, { at: boughtAt });
      subs[name as keyof typeof subs] = purchase.state;
      await deliverAll(t, purchase.events);
    }
    await t.drainJobs();
  });
  afterAll(async () => t.close());

  const sweep = () => t.cp.app.get(TenantService).runScheduledTransitions();

  it('a purchase creates one pending tenant with provisioning queued, active once the job ran', async () => {
    const tenant = await tenantOf(t, subs.purchase.subscriptionId);
    expect(tenant).toMatchObject({ slug: 'acme', name: 'Acme Corp', status: 'active', tier: 'starter', billing_status: 'active', stripe_customer_id: subs.purchase.customerId });
    const [created] = purchaseEvents.events;
    // subscription.created came first (named after the customer id); checkout brought the customer's name.
    expect((await auditOf(t, tenant.id)).slice(0, 4)).toEqual([
      expect.objectContaining({ action: 'created', to_status: 'pending', cause_type: 'stripe_event', cause_id: created.id }),
      expect.objectContaining({ action: 'renamed', cause_type: 'stripe_event', cause_id: purchaseEvents.events[2].id, detail: { from: subs.purchase.customerId, to: 'Acme Corp' } }),
      expect.objectContaining({ action: 'status_changed', from_status: 'pending', to_status: 'provisioning', cause_type: 'system' }),
      expect.objectContaining({ action: 'status_changed', from_status: 'provisioning', to_status: 'active', cause_type: 'system' }),
    ]);
    expect(await jobsOf(t, tenant.id)).toEqual([expect.objectContaining({ type: 'provision', status: 'succeeded' })]);
    expect((await storedEvent(t, created.id))?.outcome).toBe('applied');
    const checkout = purchaseEvents.events[2];
    expect(await storedEvent(t, checkout.id)).toMatchObject({ outcome: 'applied', tenant_id: tenant.id, subscription_id: subs.purchase.subscriptionId });
    expect((await storedEvent(t, purchaseEvents.events[1].id))?.outcome).toBe('unchanged'); // invoice.paid: already active
    const shown = await t.api('GET', `/v1/tenants/${tenant.id}`);
    expect(shown.body).toMatchObject({ status: 'active', stripe: { subscriptionId: subs.purchase.subscriptionId, status: 'active' } });
  });

  it('a plan change (subscription.updated with a new price) changes the tier, is audited and reconfigures the tenant', async () => {
    const { state, events } = scenarioEvents('plan-change', subs.purchase, { plan: 'pro', at: nowSeconds() - 2 * DAY });
    subs.purchase = state;
    await deliverAll(t, events);
    const tenant = await tenantOf(t, state.subscriptionId);
    expect(tenant.tier).toBe('pro');
    expect((await auditOf(t, tenant.id)).filter((a) => a.action === 'tier_changed')).toEqual([
      expect.objectContaining({ cause_type: 'stripe_event', cause_id: events[0].id, detail: expect.objectContaining({ from: 'starter', to: 'pro', lookupKey: 'silo_pro_monthly' }) }),
    ]);
    const reconfigure = (await jobsOf(t, tenant.id)).filter((j) => String(j.payload.operation ?? '').startsWith('reconfigure:'));
    expect(reconfigure).toEqual([expect.objectContaining({ type: 'provision', status: 'queued' })]);
    await t.drainJobs();
    expect((await jobsOf(t, tenant.id)).every((j) => j.status === 'succeeded')).toBe(true);
    expect((await tenantOf(t, state.subscriptionId)).status).toBe('active');
  });

  it('past_due is recorded at once, suspends only after the grace period (sweep), and a recovery resumes the tenant', async () => {
    const failedAt = nowSeconds() - 4 * DAY; // older than the default 3-day grace period
    const pastDue = scenarioEvents('past-due', subs.payment, { at: failedAt });
    await deliverAll(t, pastDue.events);
    let tenant = await tenantOf(t, subs.payment.subscriptionId);
    expect(tenant).toMatchObject({ status: 'active', billing_status: 'past_due', past_due_since: new Date(failedAt * 1000) });

    expect(await sweep()).toBeGreaterThanOrEqual(1);
    tenant = await tenantOf(t, subs.payment.subscriptionId);
    expect(tenant).toMatchObject({ status: 'suspended', suspend_reason: 'payment past_due' });

    const recover = scenarioEvents('recover', pastDue.state);
    await deliverAll(t, recover.events);
    tenant = await tenantOf(t, subs.payment.subscriptionId);
    expect(tenant).toMatchObject({ status: 'active', billing_status: 'active', past_due_since: null, suspend_reason: null });
    expect((await auditOf(t, tenant.id)).slice(-2)).toEqual([
      expect.objectContaining({ action: 'status_changed', from_status: 'active', to_status: 'suspended', cause_type: 'system', cause_id: 'grace-period' }),
      expect.objectContaining({ action: 'status_changed', from_status: 'suspended', to_status: 'active', cause_type: 'stripe_event', cause_id: recover.events[0].id }),
    ]);
  });

  it('invoice.payment_failed marks past due without suspending (grace not over); unpaid keeps it; invoice.paid clears it', async () => {
    const s = subs.invoices;
    const failedAt = nowSeconds() - 3600; // read once: a second boundary between two reads made this flaky
    await deliver(t, stripeEvents.invoicePaymentFailed(s, failedAt));
    await sweep();
    let tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ status: 'active', billing_status: 'past_due' });
    const since = tenant.past_due_since;
    expect(since).toEqual(new Date(failedAt * 1000));

    await deliver(t, stripeEvents.subscriptionUpdated({ ...s, status: 'unpaid' }, nowSeconds() - 60, { status: 'past_due' }));
    tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ status: 'active', billing_status: 'unpaid', past_due_since: since });

    await deliver(t, stripeEvents.invoicePaid(s));
    tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ status: 'active', billing_status: 'active', past_due_since: null });
  });

  it('customer.subscription.paused suspends the tenant and resumed brings it back', async () => {
    const paused = scenarioEvents('pause', subs.pause, { at: nowSeconds() - 60 });
    await deliverAll(t, paused.events);
    let tenant = await tenantOf(t, subs.pause.subscriptionId);
    expect(tenant).toMatchObject({ status: 'suspended', billing_status: 'paused', suspend_reason: 'billing: subscription paused', suspended_by: 'billing', suspend_cause: 'subscription_paused' });

    const resumed = scenarioEvents('resume', paused.state);
    await deliverAll(t, resumed.events);
    tenant = await tenantOf(t, subs.pause.subscriptionId);
    expect(tenant).toMatchObject({ status: 'active', billing_status: 'active', suspend_reason: null, suspended_by: null, suspend_cause: null });
  });

  it('an admin who suspends a tenant billing already suspended takes the suspension over: billing no longer lifts it', async () => {
    const paused = scenarioEvents('pause', subs.takeover, { at: nowSeconds() - 60 });
    await deliverAll(t, paused.events);
    const tenant = await tenantOf(t, subs.takeover.subscriptionId);
    expect(tenant).toMatchObject({ status: 'suspended', suspended_by: 'billing' });
    expect((await t.api('POST', `/v1/tenants/${tenant.id}/suspend`, { reason: 'chargeback under review' })).body.suspension).toEqual({ by: 'admin', cause: 'admin', reason: 'chargeback under review' });
    await deliverAll(t, scenarioEvents('resume', paused.state).events);
    expect(await tenantOf(t, subs.takeover.subscriptionId)).toMatchObject({ status: 'suspended', suspended_by: 'admin', billing_status: 'active' });
    expect((await t.api('POST', `/v1/tenants/${tenant.id}/resume`)).body.status).toBe('active');
  });

  it('never lifts an admin suspension, even one whose reason reads like billing\'s: resumed, active and paid events leave it suspended', async () => {
    const s = subs.admin;
    const tenant = await tenantOf(t, s.subscriptionId);
    // Who suspended is a column, not a prefix of the reason: "billing: fraud" is still the admin's.
    expect((await t.api('POST', `/v1/tenants/${tenant.id}/suspend`, { reason: 'billing: fraud' })).status).toBe(200);
    const paused = scenarioEvents('pause', s, { at: nowSeconds() - 60 });
    await deliverAll(t, paused.events);
    expect(await tenantOf(t, s.subscriptionId)).toMatchObject({ status: 'suspended', suspend_reason: 'billing: fraud', suspended_by: 'admin', suspend_cause: 'admin' });
    await deliverAll(t, [...scenarioEvents('resume', paused.state).events, stripeEvents.invoicePaid(s)]);
    expect(await tenantOf(t, s.subscriptionId)).toMatchObject({ status: 'suspended', suspend_reason: 'billing: fraud', suspended_by: 'admin', billing_status: 'active' });
    expect((await t.api('GET', `/v1/tenants/${tenant.id}`)).body.suspension).toEqual({ by: 'admin', cause: 'admin', reason: 'billing: fraud' });
    // The admin can still resume it.
    expect((await t.api('POST', `/v1/tenants/${tenant.id}/resume`)).body.status).toBe('active');
  });

  it('customer.subscription.deleted suspends now and schedules offboarding after the retention period; an admin can cancel or expedite it', async () => {
    const s = subs.cancel;
    const deleted = stripeEvents.subscriptionDeleted(s);
    expect((await deliver(t, deleted)).body.outcome).toBe('applied');
    const tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ status: 'suspended', billing_status: 'canceled', suspend_reason: 'billing: subscription canceled', tier: 'pro' });
    const expected = Date.now() + 30 * DAY * 1000;
    expect(Math.abs((tenant.offboard_at as Date).getTime() - expected)).toBeLessThan(60_000);
    expect((await auditOf(t, tenant.id)).map((a) => [a.action, a.cause_id])).toEqual(expect.arrayContaining([
      ['status_changed', deleted.id], ['offboarding_scheduled', deleted.id],
    ]));

    const cancelled = await t.api('DELETE', `/v1/tenants/${tenant.id}/offboarding`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.offboardAt).toBeNull();
    const expedited = await t.api('POST', `/v1/tenants/${tenant.id}/offboard`, {});
    expect(expedited.status).toBe(202);
    expect(expedited.body.status).toBe('deprovisioning');
    await t.drainJobs();
    expect((await tenantOf(t, s.subscriptionId)).status).toBe('deleted');

    // Deleted is final: later (or replayed) events of the subscription never resurrect it or make another tenant.
    const later = [stripeEvents.subscriptionUpdated({ ...s, status: 'active' }, nowSeconds() + 5), stripeEvents.invoicePaid(s, nowSeconds() + 5), stripeEvents.subscriptionCreated(s, nowSeconds() + 5)];
    for (const e of later) expect((await deliver(t, e)).body).toMatchObject({ received: true, outcome: 'final' });
    const rows = await tenantsOf(t, s.subscriptionId);
    expect(rows).toHaveLength(1);
    expect(rows[0].status).toBe('deleted');
  });

  it('subscription.updated with status canceled is a cancellation too (before provisioning ran: none is built), and the sweep offboards it when due', async () => {
    const s = newSubscription({ slug: 'canceled-early' });
    await deliver(t, stripeEvents.subscriptionCreated(s, nowSeconds() - 60));
    await deliver(t, stripeEvents.subscriptionUpdated({ ...s, status: 'canceled' }, nowSeconds(), { status: 'active' }));
    const tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant).toMatchObject({ status: 'suspended', billing_status: 'canceled', suspend_reason: 'billing: subscription canceled' });
    expect(tenant.offboard_at).not.toBeNull();
    expect(await jobsOf(t, tenant.id)).toEqual([expect.objectContaining({ type: 'provision', status: 'cancelled' })]);

    await t.sql(`UPDATE tenants SET offboard_at = now() - interval '1 minute' WHERE id = $1`, [tenant.id]);
    await sweep();
    expect((await tenantOf(t, s.subscriptionId)).status).toBe('deprovisioning');
    await t.drainJobs();
    expect((await tenantOf(t, s.subscriptionId)).status).toBe('deleted');
  });

  it('records and acknowledges other event types (and non-subscription checkouts) with no effect', async () => {
    const before = await t.sql('SELECT id, status, tier, billing_status, version FROM tenants ORDER BY id');
    const others = [
      stripeEvent('customer.created', { id: 'cus_Other0000001', object: 'customer', email: 'x@example.com' }),
      stripeEvent('invoice.finalized', { id: 'in_1Other', object: 'invoice', customer: subs.purchase.customerId, parent: { subscription_details: { subscription: subs.purchase.subscriptionId } } }),
      stripeEvent('customer.subscription.trial_will_end', { id: subs.purchase.subscriptionId, object: 'subscription', status: 'trialing' }),
      stripeEvent('checkout.session.completed', { id: 'cs_test_a1Payment', object: 'checkout.session', mode: 'payment', customer: 'cus_Other0000001', subscription: null }),
      stripeEvent('invoice.paid', { id: 'in_1OneOff', object: 'invoice', customer: 'cus_Other0000001', parent: null, lines: { data: [] } }),
    ];
    for (const e of others) {
      expect((await deliver(t, e)).body).toEqual({ received: true, duplicate: false, outcome: 'ignored' });
      expect((await storedEvent(t, e.id))?.outcome).toBe('ignored');
    }
    expect(await t.sql('SELECT id, status, tier, billing_status, version FROM tenants ORDER BY id')).toEqual(before);
  });
});
