import { newSubscription, stripeEvent, stripeEvents } from './support/stripe-fixtures';
import { startTestControlPlane, TEST_WEBHOOK_SECRET, TestControlPlane } from './support/control-plane';
import { deliver, PLANS_FILE, signatureFor, tenantOf } from './support/stripe';

const OLD_SECRET = 'whsec_old_secret_being_rolled_out';

describe('POST /webhooks/stripe: the delivery contract', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    // Two secrets, as during a roll: the new one first, the old one still accepted.
    t = await startTestControlPlane({ STRIPE_WEBHOOK_SECRET: `${TEST_WEBHOOK_SECRET}, ${OLD_SECRET}`, TIERS_FILE: PLANS_FILE });
  });
  afterAll(async () => t.close());

  const count = async (table: string) => Number((await t.sql<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0].n);
  async function expectNothingStored(): Promise<void> {
    expect(await count('webhook_events')).toBe(0);
    expect(await count('tenants')).toBe(0);
  }

  it('acknowledges a correctly signed event with 200 and stores it by id', async () => {
    const s = newSubscription();
    const e = stripeEvents.subscriptionCreated(s);
    const res = await deliver(t, e);
    expect(res).toEqual({ status: 200, body: { received: true, duplicate: false, outcome: 'applied' } });
    expect((await t.sql('SELECT type, outcome, subscription_id FROM webhook_events WHERE id = $1', [e.id]))[0]).toEqual({ type: 'customer.subscription.created', outcome: 'applied', subscription_id: s.subscriptionId });
    expect((await tenantOf(t, s.subscriptionId)).status).toBe('pending');
    await t.sql('TRUNCATE webhook_events, tenants, audit_log, jobs CASCADE');
  });

  it('accepts an event signed with the second (rolled) secret', async () => {
    const e = stripeEvent('customer.created', { id: 'cus_Rolled000001', object: 'customer' });
    const res = await deliver(t, e, { secret: OLD_SECRET });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ received: true, duplicate: false, outcome: 'ignored' });
    await t.sql('TRUNCATE webhook_events');
  });

  it.each([
    ['no Stripe-Signature header', { signature: null }, 'missing_header'],
    ['a signature made with an unknown secret', { secret: 'whsec_attacker' }, 'no_matching_signature'],
    ['a garbled header', { signature: 't=abc,v1=zzz' }, 'no_matching_signature'],
    ['a signature 10 minutes old (replay)', { timestamp: Math.floor(Date.now() / 1000) - 600 }, 'timestamp_outside_tolerance'],
  ])('rejects %s: 400 WEBHOOK_SIGNATURE_INVALID, nothing stored', async (_name, opts, reason) => {
    const res = await deliver(t, stripeEvents.subscriptionCreated(newSubscription()), opts);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID', details: { reason } });
    expect(JSON.stringify(res.body)).not.toMatch(/whsec_|at .*\.(ts|js):\d+/);
    await expectNothingStored();
  });

  it('rejects a body changed after signing (the raw bytes are what is verified)', async () => {
    const e = stripeEvents.subscriptionCreated(newSubscription());
    const signed = JSON.stringify(e);
    const res = await deliver(t, JSON.stringify(e, null, 1), { signature: signatureFor(signed) });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('WEBHOOK_SIGNATURE_INVALID');
    await expectNothingStored();
  });

  it.each([
    ['malformed JSON', '{"id": "evt_1", "object": "event", '],
    ['JSON that is not an event', JSON.stringify({ id: 'evt_1NotAnEvent', object: 'charge', amount: 100 })],
    ['an event without data.object', JSON.stringify({ id: 'evt_1NoData', object: 'event', type: 'invoice.paid', created: 1_700_000_000, data: {} })],
  ])('rejects %s with a valid signature: 400 WEBHOOK_PAYLOAD_INVALID, nothing stored', async (_name, body) => {
    const res = await deliver(t, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('WEBHOOK_PAYLOAD_INVALID');
    await expectNothingStored();
  });

  it('rejects a body over 1 MiB with 413 PAYLOAD_TOO_LARGE, nothing stored', async () => {
    const e = stripeEvent('customer.updated', { id: 'cus_Big', object: 'customer', metadata: { blob: 'x'.repeat(1024 * 1024) } });
    const res = await deliver(t, e);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    await expectNothingStored();
  });

  it('needs no admin token, and is not in the admin OpenAPI document', async () => {
    const doc = await t.api('GET', '/docs/openapi.json', undefined, { token: null });
    expect(Object.keys(doc.body.paths)).not.toContain('/webhooks/stripe');
    expect(Object.keys(doc.body.paths)).toContain('/v1/webhook-events');
  });

  it('lists recent events for admins only (GET /v1/webhook-events), newest first, payload on the detail route', async () => {
    const s = newSubscription();
    const first = stripeEvents.subscriptionCreated(s);
    const second = stripeEvents.invoicePaid(s);
    await deliver(t, first);
    await deliver(t, second);
    expect((await t.api('GET', '/v1/webhook-events', undefined, { token: null })).status).toBe(401);
    const list = await t.api('GET', `/v1/webhook-events?limit=1&subscription=${s.subscriptionId}`);
    expect(list.status).toBe(200);
    // 'applied': the invoice names the customer (customer_name), so the tenant, not live yet, took a slug from it.
    expect(list.body.items).toEqual([expect.objectContaining({ id: second.id, type: 'invoice.paid', subscriptionId: s.subscriptionId, outcome: 'applied' })]);
    expect(list.body.items[0]).not.toHaveProperty('payload');
    const one = await t.api('GET', `/v1/webhook-events/${first.id}`);
    expect(one.body.payload).toMatchObject({ id: first.id, data: { object: { id: s.subscriptionId } } });
    expect((await t.api('GET', '/v1/webhook-events/evt_nope')).status).toBe(404);
    expect((await t.api('GET', '/v1/webhook-events?limit=0')).status).toBe(400);
  });
});

describe('POST /webhooks/stripe without a signing secret', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({ STRIPE_WEBHOOK_SECRET: '' });
  });
  afterAll(async () => t.close());

  it('answers 503 WEBHOOKS_NOT_CONFIGURED and stores nothing', async () => {
    const res = await deliver(t, stripeEvents.subscriptionCreated(newSubscription()));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('WEBHOOKS_NOT_CONFIGURED');
    expect(await t.sql('SELECT id FROM webhook_events')).toEqual([]);
  });
});
