import { BillingReconciler, BillingReconcileReport } from '../control-plane/billing/billing-reconciler';
import { BillingDriftKind } from '../control-plane/billing/billing-reconciler-drift';
import { newSubscription, nowSeconds, scenarioEvents, stripeEvents, SubscriptionState } from './support/stripe-fixtures';
import { PeriodicRunner } from '../control-plane/jobs/periodic-runner';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { FAKE_STRIPE_KEY, FakeStripeApi, startFakeStripeApi } from './support/fake-stripe-api';
import { silo } from './support/migration-fixtures';
import { auditOf, deliverAll, jobsOf, PLANS_FILE, tenantOf, tenantsOf } from './support/stripe';

const DAY = 86_400;

/** Issue #15 item 4: Stripe's subscriptions against the tenants, with the real stripe client against a local fake of its API. */
describe('billing reconciler', () => {
  let fake: FakeStripeApi;
  let t: TestControlPlane;
  const boughtAt = nowSeconds() - 5 * DAY;
  // lost: Stripe knows it, no webhook ever arrived. canceled/upgraded: purchased by webhook, the later change lost.
  let lost: SubscriptionState;
  let canceled: SubscriptionState;
  let upgraded: SubscriptionState;
  const reconciler = () => t.cp.app.get(BillingReconciler);
  const kinds = (r: BillingReconcileReport, sub: SubscriptionState) => r.differences.filter((d) => d.subscriptionId === sub.subscriptionId).map((d) => d.kind).sort();

  beforeAll(async () => {
    fake = await startFakeStripeApi();
    t = await startTestControlPlane({ TIERS_FILE: PLANS_FILE, STRIPE_SECRET_KEY: FAKE_STRIPE_KEY, STRIPE_API_BASE_URL: fake.url, BILLING_RECONCILE_INTERVAL_SECONDS: '1' });
    lost = fake.put({ ...newSubscription({ customerName: 'Lost Webhooks Ltd', customerEmail: 'ops@lost.example', plan: 'pro' }), startedAt: boughtAt });
    for (const name of ['canceled', 'upgraded'] as const) {
      const purchase = scenarioEvents('purchase', newSubscription({ slug: `${name}-story` }), { at: boughtAt });
      await deliverAll(t, purchase.events);
      fake.put(purchase.state);
      if (name === 'canceled') canceled = purchase.state;
      else upgraded = purchase.state;
    }
    // Enough subscriptions that the list takes two pages of 100 (auto-pagination).
    for (let i = 0; i < 120; i++) fake.put({ ...newSubscription({ status: 'canceled' }), startedAt: boughtAt - DAY - i });
    await t.drainJobs();
    // The webhooks of these changes are lost: only Stripe's API knows.
    canceled = fake.put({ ...canceled, status: 'canceled' });
    fake.overrides.set(canceled.subscriptionId, { canceled_at: nowSeconds(), ended_at: nowSeconds() });
    upgraded = fake.put({ ...upgraded, plan: newSubscription({ plan: 'enterprise' }).plan });
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it('reports without repairing: a subscription whose webhooks were all lost, a lost cancellation, a lost plan change', async () => {
    const r = await reconciler().run({ repair: false });
    expect(r.checked).toMatchObject({ subscriptions: 123, tenants: 2 });
    expect(kinds(r, lost)).toEqual([BillingDriftKind.MissingTenant]);
    expect(kinds(r, canceled)).toEqual([BillingDriftKind.SubscriptionCanceled]);
    expect(kinds(r, upgraded)).toEqual([BillingDriftKind.TierMismatch]);
    expect(r.differences).toHaveLength(3);
    expect(r.differences.every((d) => d.repairable && !d.repaired)).toBe(true);
    expect(r.differences.find((d) => d.kind === BillingDriftKind.TierMismatch)).toMatchObject({ stripe: { status: 'active', tier: 'enterprise', lookupKey: 'silo_enterprise_monthly' }, tenant: { status: 'active', tier: 'starter' } });
    expect(await tenantsOf(t, lost.subscriptionId)).toHaveLength(0);
    // The real stripe client, paginated (starting_after), expanding the customer, with the key; nothing else was asked.
    const lists = fake.requests.filter((q) => q.path === '/v1/subscriptions');
    expect(lists.length).toBe(2);
    expect(lists[0].query.get('status')).toBe('all');
    expect(lists[0].query.get('limit')).toBe('100');
    expect([...lists[0].query.values()]).toContain('data.customer');
    expect(lists[1].query.get('starting_after')).toBeTruthy();
    expect(fake.requests.every((q) => q.authorized && q.method === 'GET' && q.path.startsWith('/v1/subscriptions'))).toBe(true);
  });

  it('repairs by replaying Stripe\'s state through the webhook rules: the lost subscription gets its tenant, provisioned with its tier and a slug from the customer', async () => {
    const r = await reconciler().run({ repair: true });
    expect(r.differences.map((d) => [d.kind, d.repaired])).toEqual(expect.arrayContaining([
      [BillingDriftKind.MissingTenant, true], [BillingDriftKind.SubscriptionCanceled, true], [BillingDriftKind.TierMismatch, true],
    ]));
    expect(r.differences).toHaveLength(3);

    const created = await tenantOf(t, lost.subscriptionId);
    expect(created).toMatchObject({ slug: 'lost-webhooks-ltd', name: 'Lost Webhooks Ltd', status: 'pending', tier: 'pro', billing_status: 'active', stripe_customer_id: lost.customerId });
    const repairEvent = r.differences.find((d) => d.kind === BillingDriftKind.MissingTenant)?.eventId as string;
    expect(repairEvent).toMatch(new RegExp(`^evt_reconcile_${lost.subscriptionId}_[0-9a-f]{20}$`));
    const [stored] = await t.sql('SELECT type, outcome, source, tenant_id, subscription_id, signature FROM webhook_events WHERE id = $1', [repairEvent]);
    expect(stored).toEqual({ type: 'customer.subscription.updated', outcome: 'applied', source: 'reconciler', tenant_id: created.id, subscription_id: lost.subscriptionId, signature: null });
    expect((await auditOf(t, created.id))[0]).toMatchObject({ action: 'created', cause_type: 'stripe_event', cause_id: repairEvent });
    await t.drainJobs();
    expect(await tenantOf(t, lost.subscriptionId)).toMatchObject({ status: 'active', tier: 'pro' });
    expect(await jobsOf(t, created.id)).toEqual([expect.objectContaining({ type: 'provision', status: 'succeeded' })]);

    // Canceled as a webhook would have: suspended by billing now, offboarding scheduled after the retention period.
    const gone = await tenantOf(t, canceled.subscriptionId);
    expect(gone).toMatchObject({ status: 'suspended', suspended_by: 'billing', suspend_cause: 'subscription_canceled', billing_status: 'canceled' });
    expect(gone.offboard_at?.getTime()).toBeGreaterThan(Date.now() + 29 * DAY * 1000);

    // The plan change: audited and the tenant reconfigured for its new tier.
    const up = await tenantOf(t, upgraded.subscriptionId);
    expect(up).toMatchObject({ status: 'active', tier: 'enterprise' });
    expect(await auditOf(t, up.id)).toContainEqual(expect.objectContaining({ action: 'tier_changed', detail: expect.objectContaining({ from: 'starter', to: 'enterprise' }) }));
    expect(await jobsOf(t, up.id)).toContainEqual(expect.objectContaining({ type: 'provision', payload: expect.objectContaining({ operation: expect.stringMatching(/^reconfigure:/) }) }));
    await t.drainJobs();
  });

  it('a second run over the repaired state finds nothing; two concurrent runs replay a lost update once', async () => {
    const again = await reconciler().run({ repair: true });
    expect(again.differences).toEqual([]);
    const events = await t.sql<{ n: string }>(`SELECT count(*)::text AS n FROM webhook_events WHERE source = 'reconciler'`);
    expect(events[0].n).toBe('3');

    // Two replicas racing over the same lost update: the one that saw the same tenant row makes the same
    // event id (a duplicate), the one that saw the repaired row finds nothing; either way one replay.
    upgraded = fake.put({ ...upgraded, status: 'past_due' });
    const [a, b] = await Promise.all([reconciler().run({ repair: true }), reconciler().run({ repair: true })]);
    const both = [...a.differences, ...b.differences];
    expect(both.length).toBeGreaterThanOrEqual(1);
    expect(both.every((d) => d.kind === BillingDriftKind.StatusMismatch && d.repaired)).toBe(true);
    expect(new Set(both.map((d) => d.eventId)).size).toBe(1);
    expect(await t.sql('SELECT id FROM webhook_events WHERE subscription_id = $1 AND source = $2', [upgraded.subscriptionId, 'reconciler'])).toHaveLength(2);
    expect(await tenantOf(t, upgraded.subscriptionId)).toMatchObject({ status: 'active', billing_status: 'past_due' });
    expect((await reconciler().run({ repair: true })).differences).toEqual([]);
  });

  it('a tenant whose subscription Stripe does not know is reported, never repaired', async () => {
    const ghost = newSubscription({ slug: 'ghost-story' });
    await deliverAll(t, scenarioEvents('purchase', ghost, { at: boughtAt }).events);
    const before = await tenantOf(t, ghost.subscriptionId);
    const r = await reconciler().run({ repair: true });
    expect(r.differences).toEqual([expect.objectContaining({ kind: BillingDriftKind.UnknownSubscription, subscriptionId: ghost.subscriptionId, slug: 'ghost-story', stripe: null, repairable: false, repaired: false, eventId: null })]);
    // Asked for by id before being called unknown.
    expect(fake.requests.some((q) => q.path === `/v1/subscriptions/${ghost.subscriptionId}`)).toBe(true);
    expect(await tenantOf(t, ghost.subscriptionId)).toEqual(before);
  });

  it('a late webhook of a replayed subscription still applies by the webhook rules', async () => {
    // The lost plan change's own webhook finally arrives, older than the replay: stale, nothing rolls back.
    const late = stripeEvents.subscriptionUpdated({ ...upgraded, status: 'active' }, nowSeconds() - 60);
    await deliverAll(t, [late]);
    expect(await tenantOf(t, upgraded.subscriptionId)).toMatchObject({ tier: 'enterprise', billing_status: 'past_due' });
  });

  it('silo reconcile --billing --json: exit 1 with the pending differences; exit 2 with a one-line reason without STRIPE_SECRET_KEY', async () => {
    const env = {
      DATABASE_URL: t.config.DATABASE_URL, SILO_MASTER_KEY: t.config.SILO_MASTER_KEY as string, TENANT_DATABASE_URL: t.config.TENANT_DATABASE_URL as string,
      TENANT_TEMPLATE_DATABASE: t.config.TENANT_TEMPLATE_DATABASE as string, TIERS_FILE: PLANS_FILE, LOG_LEVEL: 'silent',
    };
    const run = await silo(['reconcile', '--billing', '--json'], { ...env, STRIPE_SECRET_KEY: FAKE_STRIPE_KEY, STRIPE_API_BASE_URL: fake.url });
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as BillingReconcileReport;
    expect(report.differences.map((d) => [d.kind, d.repaired])).toEqual([[BillingDriftKind.UnknownSubscription, false]]);
    expect(run.stdout + run.stderr).not.toContain(FAKE_STRIPE_KEY);

    const text = await silo(['reconcile', '--billing'], { ...env, STRIPE_SECRET_KEY: FAKE_STRIPE_KEY, STRIPE_API_BASE_URL: fake.url });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/not repaired\s+unknown_subscription\s+sub_\S+\s+tenant ghost-story/);

    expect((await silo(['reconcile', '--billing', '--apply'], { ...env, STRIPE_SECRET_KEY: FAKE_STRIPE_KEY, STRIPE_API_BASE_URL: fake.url })).code).toBe(2);
    const unset = await silo(['reconcile', '--billing', '--json'], env);
    expect(unset.code).toBe(2);
    expect(unset.stderr.trim()).toBe('error: STRIPE_SECRET_KEY is not set: billing reconciliation reads subscriptions from the Stripe API');
    expect(unset.stdout).toBe('');

    // A key Stripe rejects: one line naming the problem, no stack, no key.
    const wrongKey = 'sk_test_silo_wrong_key_9876543210';
    const rejected = await silo(['reconcile', '--billing'], { ...env, STRIPE_SECRET_KEY: wrongKey, STRIPE_API_BASE_URL: fake.url });
    expect(rejected.code).toBe(1);
    expect(rejected.stderr.trim()).toMatch(/^error: Stripe rejected STRIPE_SECRET_KEY \(authentication failed\), HTTP 401, request req_fake_\d+$/);
    expect(rejected.stderr + rejected.stdout).not.toContain('9876543210');
  });

  it('Stripe API failures are one clear error; the periodic task records them and its result once Stripe answers', async () => {
    const runner = t.cp.app.get(PeriodicRunner);
    await runner.runDue(); // schedules the task: its first run waits one interval (BILLING_RECONCILE_INTERVAL_SECONDS=1)
    fake.failWith = { status: 500, type: 'api_error', message: 'Something went wrong on Stripe\'s end.' };
    await expect(reconciler().run({ repair: true })).rejects.toThrow(/^Stripe API error \(api_error\): Something went wrong on Stripe's end\., HTTP 500/);
    await new Promise((r) => setTimeout(r, 1_100));
    await runner.runDue();
    const failed = (await t.api('GET', '/v1/periodic-tasks')).body.items.find((x: { name: string }) => x.name === 'billing-reconcile');
    expect(failed.lastRun).toMatchObject({ outcome: 'failed', error: expect.stringMatching(/^Stripe API error \(api_error\)/) });

    fake.failWith = null;
    await new Promise((r) => setTimeout(r, 1_100));
    await runner.runDue();
    const ok = (await t.api('GET', '/v1/periodic-tasks')).body.items.find((x: { name: string }) => x.name === 'billing-reconcile');
    expect(ok.lastRun).toMatchObject({ outcome: 'ok', result: { differences: 1, repaired: 0, kinds: [BillingDriftKind.UnknownSubscription] } });
  });
});
