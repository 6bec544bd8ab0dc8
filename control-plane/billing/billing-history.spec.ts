import { orderHistory, replayBillingHistory } from './billing-history';
import type { BillingEvent } from './stripe-event';

const ev = (id: string, type: string, created: number, status: string | null, previousStatus?: string): BillingEvent => ({
  id, type, created, subscriptionId: 'sub_1', customerId: 'cus_1', price: null,
  signal: status ? { kind: 'status', status } : { kind: 'checkout' },
  naming: { slug: null, name: null, slugSource: null, source: null }, previousStatus: previousStatus ?? null,
});

describe('orderHistory', () => {
  it('puts the event whose previous status is the other one\'s status after it, within one second', () => {
    const created = ev('a', 'customer.subscription.created', 100, 'incomplete');
    const updated = ev('b', 'customer.subscription.updated', 100, 'active', 'incomplete');
    expect(orderHistory([updated, created]).map((e) => e.id)).toEqual(['a', 'b']);
    expect(replayBillingHistory(orderHistory([updated, created])).billingStatus).toBe('active');
  });

  it('without previous_attributes: created before updated, then the status further along; seconds always win', () => {
    const u1 = ev('u1', 'customer.subscription.updated', 100, 'past_due');
    const u2 = ev('u2', 'customer.subscription.updated', 100, 'active');
    const c = ev('c', 'customer.subscription.created', 100, 'active');
    const later = ev('l', 'customer.subscription.updated', 101, 'incomplete');
    expect(orderHistory([later, u1, u2, c]).map((e) => e.id)).toEqual(['c', 'u2', 'u1', 'l']);
  });

  it('keeps arrival order for events it cannot tell apart', () => {
    const x = ev('x', 'invoice.paid', 100, null);
    const y = ev('y', 'invoice.paid', 100, null);
    expect(orderHistory([y, x]).map((e) => e.id)).toEqual(['y', 'x']);
  });
});
