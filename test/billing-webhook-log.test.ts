import { Writable } from 'node:stream';
import { createLogger } from '../common/logger';
import { newSubscription, stripeEvents } from './support/stripe-fixtures';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { deliver } from './support/stripe';

/** One log line per delivery: the request's own line carries what billing did with the event. */
describe('POST /webhooks/stripe: log lines', () => {
  let t: TestControlPlane;
  const lines: Array<Record<string, any>> = [];
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    t = await startTestControlPlane({}, { logger: createLogger({ name: 'webhook-log-test', level: 'info', destination: sink }) });
  });
  afterAll(async () => t.close());

  const settle = () => new Promise((r) => setTimeout(r, 100));

  it('a processed event: one line, the request line, with the event id, type, subscription, tenant and outcome', async () => {
    const s = newSubscription({ slug: 'log-line' });
    const event = stripeEvents.subscriptionCreated(s);
    lines.length = 0;
    const res = await deliver(t, event);
    expect(res.status).toBe(200);
    await settle();
    const mine = lines.filter((l) => l.req?.url === '/webhooks/stripe' || l.id === event.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ event: 'stripe.webhook', id: event.id, type: 'customer.subscription.created', subscriptionId: s.subscriptionId, outcome: 'applied', res: { statusCode: 200 } });
    expect(mine[0].tenantId).toEqual(expect.any(String));
    expect(mine[0].req.headers?.['stripe-signature']).toBeUndefined();
  });

  it('an ignored event type and a refused signature: one request line each, the refusal without event fields', async () => {
    const s = newSubscription();
    const ignored = { ...stripeEvents.subscriptionCreated(s), type: 'customer.updated' };
    lines.length = 0;
    expect((await deliver(t, ignored)).status).toBe(200);
    expect((await deliver(t, stripeEvents.subscriptionCreated(s), { secret: 'whsec_wrong' })).status).toBe(400);
    await settle();
    const mine = lines.filter((l) => l.req?.url === '/webhooks/stripe');
    expect(mine).toHaveLength(2);
    expect(mine[0]).toMatchObject({ event: 'stripe.webhook', id: ignored.id, outcome: 'ignored', why: 'event type has no effect' });
    expect(mine[1]).toMatchObject({ res: { statusCode: 400 } });
    expect(mine[1].event).toBeUndefined();
  });
});
