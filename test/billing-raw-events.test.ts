import Stripe from 'stripe';
import { DataSource } from 'typeorm';
import { invoiceObject, newSubscription, nowSeconds, stripeEvent, stripeEvents, stripeId, SubscriptionState } from './support/stripe-fixtures';
import { CONTROL_DB_ENTITIES, CONTROL_DB_MIGRATIONS } from '../control-plane/db/data-source';
import { WebhookRawBody1732690000000 } from '../control-plane/db/migrations/1732690000000-webhook-raw-body';
import { startTestControlPlane, TEST_WEBHOOK_SECRET, TestControlPlane } from './support/control-plane';
import { auditOf, deliver, PLANS_FILE, stripe, tenantOf, tenantsOf } from './support/stripe';
import { createEmptyDatabase, TestDatabase } from './support/test-db';

const OLD_SECRET = 'whsec_old_secret_still_accepted';

/** An invoice as API versions before 2025-03-31 sent it: the subscription at the top level, no `parent`. */
function olderInvoiceObject(s: SubscriptionState, at: number): Record<string, unknown> {
  const current = invoiceObject(s, at, { paid: true });
  const lines = current.lines as { data: Array<Record<string, unknown>> };
  return {
    ...current, parent: undefined, subscription: s.subscriptionId,
    lines: { ...lines, data: lines.data.map(({ parent: _parent, pricing: _pricing, ...l }) => ({ ...l, price: { id: s.plan.priceId, object: 'price' } })) },
  };
}

interface StoredRow {
  raw_body: Buffer;
  signature: string;
  payload: Record<string, any>;
  outcome: string;
  subscription_id: string | null;
}

describe('Stripe events are stored as signed (raw body, signature header) beside a jsonb copy', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({ STRIPE_WEBHOOK_SECRET: `${TEST_WEBHOOK_SECRET}, ${OLD_SECRET}`, TIERS_FILE: PLANS_FILE });
  });
  afterAll(async () => t.close());

  const stored = async (id: string): Promise<StoredRow[]> => t.sql<StoredRow & Record<string, unknown>>('SELECT raw_body, signature, payload, outcome, subscription_id FROM webhook_events WHERE id = $1', [id]);

  it('a signed event with \\u0000 in its fields is acknowledged, stored once, applied once; a redelivery is a duplicate', async () => {
    const s = newSubscription({ customerName: 'Acme\u0000 Corp' });
    const created = stripeEvents.subscriptionCreated(s);
    created.data.object.metadata = { tenant_name: 'Nul\u0000 Industries', 'note\u0000': 'x\u0000y' };
    const body = JSON.stringify(created, null, 2);
    expect(body).toContain('\\u0000'); // JSON.stringify escapes NUL: six ASCII characters on the wire

    const first = await deliver(t, body);
    expect(first).toEqual({ status: 200, body: { received: true, duplicate: false, outcome: 'applied' } });
    const again = await deliver(t, body);
    expect(again).toMatchObject({ status: 200, body: { received: true, duplicate: true } });

    const rows = await stored(created.id);
    expect(rows).toHaveLength(1);
    expect(rows[0].raw_body.equals(Buffer.from(body, 'utf8'))).toBe(true);
    expect(rows[0].payload.data.object.metadata).toEqual({ tenant_name: 'Nul\ufffd Industries', 'note\ufffd': 'x\ufffdy' });
    expect(rows[0]).toMatchObject({ outcome: 'applied', subscription_id: s.subscriptionId });

    const tenant = await tenantOf(t, s.subscriptionId);
    expect(tenant.name).toBe('Nul\ufffd Industries');
    expect(tenant.name).not.toContain('\u0000');
    expect((await auditOf(t, tenant.id)).filter((a) => a.action === 'created')).toEqual([expect.objectContaining({ cause_id: created.id })]);
  });

  it('a checkout whose customer name holds \\u0000 updates the tenant, and a late event replays the stored history that holds it', async () => {
    const t0 = nowSeconds() - 600;
    const s = newSubscription({ customerName: 'Zero\u0000Byte GmbH', slug: 'zero-byte' });
    expect((await deliver(t, stripeEvents.subscriptionCreated(s, t0))).status).toBe(200);
    const checkout = stripeEvents.checkoutCompleted(s, t0 + 10);
    expect((await deliver(t, checkout)).body).toMatchObject({ duplicate: false });
    const paused = stripeEvents.subscriptionPaused(s, t0 + 300);
    expect((await deliver(t, paused)).body).toMatchObject({ duplicate: false, outcome: 'applied' });
    // Older than the pause: replayed through the stored (jsonb) history, checkout included.
    const late = stripeEvents.subscriptionUpdated({ ...s, customerName: 'Late\u0000Name' }, t0 + 100, { status: 'trialing' });
    expect((await deliver(t, late)).status).toBe(200);

    const rows = await tenantsOf(t, s.subscriptionId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'suspended', billing_status: 'paused' });
    expect(rows[0].name).not.toContain('\u0000');
    expect((await stored(checkout.id))[0].payload.data.object.customer_details.name).toBe('Zero\ufffdByte GmbH');
  });

  it('an unpaired surrogate escape (valid JSON, refused by jsonb) is stored too, replaced by U+FFFD in the jsonb copy', async () => {
    const e = stripeEvent('customer.updated', { id: stripeId('cus', 14), object: 'customer', name: 'PLACEHOLDER', metadata: {} });
    const body = JSON.stringify(e).replace('"PLACEHOLDER"', '"half \\ud83d of an emoji, and \\ude00 the other, whole: \\ud83d\\ude00"');
    expect((await deliver(t, body))).toMatchObject({ status: 200, body: { duplicate: false, outcome: 'ignored' } });
    const [row] = await stored(e.id);
    expect(row.raw_body.toString('utf8')).toBe(body);
    expect(row.payload.data.object.name).toBe('half \ufffd of an emoji, and \ufffd the other, whole: \u{1f600}');
  });

  it("the stored raw body re-verifies with Stripe's own constructEvent and the stored signature header", async () => {
    const s = newSubscription({ customerName: 'Verify\u0000 Me' });
    const e = stripeEvents.checkoutCompleted(s);
    const body = JSON.stringify(e);
    expect((await deliver(t, body)).status).toBe(200);
    const [row] = await stored(e.id);
    expect(row.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}/);

    const verified = stripe.webhooks.constructEvent(row.raw_body, row.signature, TEST_WEBHOOK_SECRET);
    expect(verified.id).toBe(e.id);
    expect((verified.data.object as Stripe.Checkout.Session).customer_details?.name).toBe('Verify\u0000 Me'); // the bytes, not the jsonb copy
    expect(() => stripe.webhooks.constructEvent(Buffer.concat([row.raw_body, Buffer.from(' ')]), row.signature, TEST_WEBHOOK_SECRET)).toThrow(Stripe.errors.StripeSignatureVerificationError);

    const check = await t.api('GET', `/v1/webhook-events/${e.id}/verification`);
    expect(check).toMatchObject({ status: 200, body: { id: e.id, verified: true, secretIndex: 0 } });
    expect(Math.abs(new Date(check.body.signedAt).getTime() - Date.now())).toBeLessThan(60_000);
    expect((await t.api('GET', `/v1/webhook-events/${e.id}/verification`, undefined, { token: null })).status).toBe(401);
    expect((await t.api('GET', '/v1/webhook-events/evt_nope/verification')).status).toBe(404);
  });

  it('re-verification names the rolled secret that signed an event, and fails for a body altered in the database or stored before bodies were kept', async () => {
    const rolled = stripeEvent('customer.created', { id: stripeId('cus', 14), object: 'customer' });
    expect((await deliver(t, rolled, { secret: OLD_SECRET })).status).toBe(200);
    expect((await t.api('GET', `/v1/webhook-events/${rolled.id}/verification`)).body).toMatchObject({ verified: true, secretIndex: 1 });

    const altered = stripeEvent('customer.created', { id: stripeId('cus', 14), object: 'customer', name: 'Original' });
    expect((await deliver(t, altered)).status).toBe(200);
    await t.sql(`UPDATE webhook_events SET raw_body = convert_to(replace(convert_from(raw_body, 'UTF8'), 'Original', 'Tampered'), 'UTF8') WHERE id = $1`, [altered.id]);
    expect((await t.api('GET', `/v1/webhook-events/${altered.id}/verification`)).body).toEqual({ id: altered.id, verified: false, reason: 'no_matching_signature' });

    await t.sql('UPDATE webhook_events SET raw_body = NULL, signature = NULL WHERE id = $1', [rolled.id]);
    expect((await t.api('GET', `/v1/webhook-events/${rolled.id}/verification`)).body).toEqual({ id: rolled.id, verified: false, reason: 'no_raw_body' });
  });

  it('GET /v1/webhook-events?subscription= lists the ignored invoice events of a subscription, current and older API shapes', async () => {
    const s = newSubscription();
    const created = stripeEvents.subscriptionCreated(s, nowSeconds() - 60);
    const current = stripeEvent('invoice.payment_succeeded', invoiceObject(s, nowSeconds() - 30, { paid: true }));
    expect(current.data.object).not.toHaveProperty('subscription'); // current API: only parent.subscription_details names it
    const older = { ...stripeEvent('invoice.payment_succeeded', olderInvoiceObject(s, nowSeconds() - 20)), api_version: '2024-06-20' };
    const finalized = stripeEvent('invoice.finalized', invoiceObject(s, nowSeconds() - 10, { paid: false }));
    for (const e of [created, current, older, finalized]) expect((await deliver(t, e)).status).toBe(200);

    const list = await t.api('GET', `/v1/webhook-events?subscription=${s.subscriptionId}`);
    expect(list.status).toBe(200);
    expect(new Map(list.body.items.map((i: { id: string; outcome: string }) => [i.id, i.outcome]))).toEqual(new Map([
      [finalized.id, 'ignored'], [older.id, 'ignored'], [current.id, 'ignored'], [created.id, 'applied'],
    ]));
    expect(list.body.items.every((i: { subscriptionId: string }) => i.subscriptionId === s.subscriptionId)).toBe(true);
  });

  it('an ignored invoice event of a subscription Silo does not know is indexed by it too, and creates no tenant', async () => {
    const unknown = newSubscription();
    const e = stripeEvent('invoice.upcoming', { ...invoiceObject(unknown, nowSeconds(), { paid: false }), id: undefined });
    expect((await deliver(t, e)).body).toMatchObject({ duplicate: false, outcome: 'ignored' });
    expect((await t.api('GET', `/v1/webhook-events?subscription=${unknown.subscriptionId}`)).body.items).toEqual([expect.objectContaining({ id: e.id, outcome: 'ignored' })]);
    expect(await tenantsOf(t, unknown.subscriptionId)).toEqual([]);
  });
});

describe('control-db migration 1732690000000: raw body columns, subscription index of stored events', () => {
  let db: TestDatabase;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createEmptyDatabase('cpmigraw');
    const before = CONTROL_DB_MIGRATIONS.filter((m) => m !== WebhookRawBody1732690000000);
    ds = new DataSource({ type: 'postgres', url: db.url, entities: CONTROL_DB_ENTITIES, migrations: before, migrationsTableName: 'control_migrations', logging: false });
    await ds.initialize();
    await ds.runMigrations();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('indexes already stored events by the subscription their object names; keeps the old rows without a raw body', async () => {
    const s = newSubscription();
    const rows: Array<[string, object, string | null]> = [
      ['current-invoice', stripeEvent('invoice.payment_succeeded', invoiceObject(s, nowSeconds(), { paid: true })), s.subscriptionId],
      ['older-invoice', stripeEvent('invoice.payment_succeeded', olderInvoiceObject(s, nowSeconds())), s.subscriptionId],
      ['expanded', stripeEvent('invoice.created', { object: 'invoice', subscription: { id: s.subscriptionId, object: 'subscription' } }), s.subscriptionId],
      ['line-only', stripeEvent('invoice.created', { object: 'invoice', lines: { data: [{ subscription: s.subscriptionId }] } }), s.subscriptionId],
      ['subscription', stripeEvent('customer.subscription.trial_will_end', { id: s.subscriptionId, object: 'subscription' }), s.subscriptionId],
      ['customer', stripeEvent('customer.created', { id: s.customerId, object: 'customer' }), null],
    ];
    for (const [id, payload] of rows) {
      await ds.query(`INSERT INTO webhook_events (id, type, payload, stripe_created_at, outcome) VALUES ($1, 'x', $2, now(), 'ignored')`, [id, JSON.stringify(payload)]);
    }
    ds.setOptions({ migrations: CONTROL_DB_MIGRATIONS });
    await ds.destroy();
    await ds.initialize();
    expect((await ds.runMigrations()).map((m) => m.name)).toEqual(['WebhookRawBody1732690000000']);
    const got: Array<{ id: string; subscription_id: string | null; raw_body: Buffer | null }> = await ds.query('SELECT id, subscription_id, raw_body FROM webhook_events');
    expect(Object.fromEntries(got.map((r) => [r.id, r.subscription_id]))).toEqual(Object.fromEntries(rows.map(([id, , sub]) => [id, sub])));
    expect(got.every((r) => r.raw_body === null)).toBe(true);
  });
});
