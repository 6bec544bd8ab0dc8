import {
  checkoutSessionObject, FIXTURE_PLANS, FixturePlan, invoiceObject, newSubscription, nowSeconds, StripeEventFixture, stripeEvent,
  stripeEvents, stripeId, SubscriptionState, subscriptionObject,
} from '../../support/stripe-fixtures';

const HOUR = 3_600;
const DAY = 86_400;

/** Where a simulated subscription is in its life (the model of what Silo should end with). */
export type Phase = 'new' | 'active' | 'past_due' | 'unpaid' | 'paused' | 'canceled';

/** One simulated subscription: its Stripe state and the facts the final tenant must show after in-order delivery. */
export interface SimulatedSubscription {
  state: SubscriptionState;
  phase: Phase;
  /** `created` of the newest event generated for it. */
  at: number;
  /** First failure of the current past-due stretch (unix seconds), null when in good standing. */
  pastDueSince: number | null;
  /** Ever paused (a never-provisioned tenant resumed from a pause goes back to `provisioning`, not `pending`). */
  everSuspended: boolean;
  events: StripeEventFixture[];
}

export interface StripeTraffic {
  /** Every event, in `created` order (ties: generation order). */
  events: StripeEventFixture[];
  subscriptions: SimulatedSubscription[];
  /** Events that are not about any subscription's lifecycle (stored as `ignored`). */
  unrelated: StripeEventFixture[];
}

const COMPANIES = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne', 'Tyrell', 'Cyberdyne', 'Soylent', 'Vandelay', 'Pied Piper'];
const PLANS: FixturePlan[] = [FIXTURE_PLANS.starter, FIXTURE_PLANS.pro, FIXTURE_PLANS.enterprise];

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)] as T;
}

/** Picks a key by weight. */
function weighted<K extends string>(rnd: () => number, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as Array<[K, number]>;
  let r = rnd() * entries.reduce((a, [, w]) => a + w, 0);
  for (const [k, w] of entries) {
    r -= w;
    if (r < 0) return k;
  }
  return entries[entries.length - 1]![0];
}

/**
 * Realistic Stripe traffic for `subscriptions` customers, exactly `total` events: purchases (subscription
 * created, first invoice paid, checkout completed), monthly renewals, plan changes, failed payments with
 * Stripe's retries, `past_due` → `unpaid`, recoveries, pauses and resumes, cancellations, plus events
 * Silo ignores (customers, charges, draft invoices, one-off payment checkouts, trial reminders). Each
 * subscription's events have increasing `created` (a step's events share their second, as Stripe's do),
 * all in the past. Deterministic for a given `rnd` apart from the random Stripe ids.
 */
export function generateStripeTraffic(rnd: () => number, opts: { total: number; subscriptions: number; label: string }): StripeTraffic {
  const now = nowSeconds();
  const horizon = now - 10 * 60; // nothing in the future, nothing in the last 10 minutes
  const subs: SimulatedSubscription[] = Array.from({ length: opts.subscriptions }, (_, i) => {
    const company = `${pick(rnd, COMPANIES)} ${i}`;
    const state = newSubscription({
      slug: `${opts.label}-${i}`,
      customerName: `${company} Inc`,
      customerEmail: `billing+${i}@${company.toLowerCase().replace(/\s+/g, '')}.example`,
      plan: pick(rnd, PLANS),
      status: 'incomplete',
    });
    // Purchases spread over ~four months ago, so lives have room for renewals and retries.
    return { state, phase: 'new', at: now - 150 * DAY + Math.floor(rnd() * 30 * DAY), pastDueSince: null, everSuspended: false, events: [] };
  });

  const unrelatedTarget = Math.round(opts.total * 0.08);
  let lifecycle = 0;
  const live = () => subs.filter((s) => s.phase !== 'canceled' && s.at < horizon - 12 * DAY);
  while (lifecycle < opts.total - unrelatedTarget) {
    const candidates = live();
    if (!candidates.length) break;
    const s = pick(rnd, candidates);
    const before = s.events.length;
    step(s, rnd);
    lifecycle += s.events.length - before;
  }

  // Fill up to exactly `total` with events Silo stores and ignores.
  const unrelated: StripeEventFixture[] = [];
  while (lifecycle + unrelated.length < opts.total) {
    const s = pick(rnd, subs);
    const at = Math.min(horizon, s.at + Math.floor(rnd() * 20 * DAY));
    const kind = Math.floor(rnd() * 8);
    const customer = { id: s.state.customerId, object: 'customer', email: s.state.customerEmail, name: s.state.customerName, metadata: {} };
    switch (kind) {
      case 0: unrelated.push(stripeEvent('customer.created', customer, { created: at })); break;
      case 1: unrelated.push(stripeEvent('customer.updated', customer, { created: at, previousAttributes: { email: null } })); break;
      case 2: unrelated.push(stripeEvent('payment_intent.succeeded', { id: stripeId('pi'), object: 'payment_intent', amount: s.state.plan.amount, currency: 'usd', customer: s.state.customerId, status: 'succeeded' }, { created: at })); break;
      case 3: unrelated.push(stripeEvent('charge.succeeded', { id: stripeId('ch'), object: 'charge', amount: s.state.plan.amount, currency: 'usd', customer: s.state.customerId, paid: true, status: 'succeeded' }, { created: at })); break;
      case 4: unrelated.push(stripeEvent('invoice.finalized', invoiceObject(s.state, at, { paid: false }), { created: at })); break;
      case 5: unrelated.push(stripeEvent('invoice.upcoming', invoiceObject(s.state, at, { paid: false }), { created: at })); break;
      case 6: unrelated.push(stripeEvent('checkout.session.completed', { ...checkoutSessionObject(s.state, at), mode: 'payment', subscription: null, payment_intent: stripeId('pi') }, { created: at })); break;
      default: unrelated.push(stripeEvent('customer.subscription.trial_will_end', subscriptionObject(s.state, at), { created: at }));
    }
  }

  const ordered = [...subs.flatMap((s) => s.events), ...unrelated].map((e, i) => ({ e, i }));
  ordered.sort((a, b) => a.e.created - b.e.created || a.i - b.i);
  return { events: ordered.map((x) => x.e), subscriptions: subs, unrelated };
}

/** Appends the next step of one subscription's life (1 to 3 events, one `created` second). */
function step(s: SimulatedSubscription, rnd: () => number): void {
  const e = stripeEvents;
  const gap = s.phase === 'new' ? 0 : s.phase === 'past_due' ? 2 * DAY + Math.floor(rnd() * 3 * DAY) : HOUR + Math.floor(rnd() * 12 * DAY);
  const at = s.at + gap;
  const set = (status: string, phase: Phase) => {
    s.state = { ...s.state, status };
    s.phase = phase;
  };
  const push = (...events: StripeEventFixture[]) => {
    s.events.push(...events);
    s.at = at;
  };

  switch (s.phase) {
    case 'new': {
      s.state = { ...s.state, status: 'active', startedAt: at };
      s.phase = 'active';
      push(e.subscriptionCreated(s.state, at), e.invoicePaid(s.state, at, 'subscription_create'), e.checkoutCompleted(s.state, at));
      return;
    }
    case 'active': {
      const next = weighted(rnd, { renew: 30, plan: 14, fail: 20, pause: 7, cancel: 2 });
      if (next === 'renew') return push(e.invoicePaid(s.state, at));
      if (next === 'plan') {
        const previous = subscriptionObject(s.state, at).items;
        s.state = { ...s.state, plan: pick(rnd, PLANS.filter((p) => p !== s.state.plan)) };
        return push(e.subscriptionUpdated(s.state, at, { items: previous }));
      }
      if (next === 'fail') {
        set('past_due', 'past_due');
        s.pastDueSince = at;
        return push(e.invoicePaymentFailed(s.state, at), e.subscriptionUpdated(s.state, at, { status: 'active' }));
      }
      if (next === 'pause') {
        set('paused', 'paused');
        s.everSuspended = true;
        return push(e.subscriptionUpdated(s.state, at, { status: 'active' }), e.subscriptionPaused(s.state, at));
      }
      return cancel(s, at, push);
    }
    case 'past_due':
    case 'unpaid': {
      const next = weighted(rnd, s.phase === 'past_due' ? { retry: 35, recover: 35, unpaid: 15, cancel: 5 } : { retry: 0, recover: 65, unpaid: 0, cancel: 35 });
      if (next === 'retry') return push(e.invoicePaymentFailed(s.state, at)); // Smart Retries: the invoice fails again, the subscription is unchanged
      if (next === 'unpaid') {
        set('unpaid', 'unpaid');
        return push(e.invoicePaymentFailed(s.state, at), e.subscriptionUpdated(s.state, at, { status: 'past_due' }));
      }
      if (next === 'recover') {
        const was = s.state.status;
        set('active', 'active');
        s.pastDueSince = null;
        return push(e.invoicePaid(s.state, at), e.subscriptionUpdated(s.state, at, { status: was }));
      }
      return cancel(s, at, push);
    }
    case 'paused': {
      if (rnd() < 0.75) {
        set('active', 'active');
        return push(e.subscriptionUpdated(s.state, at, { status: 'paused' }), e.subscriptionResumed(s.state, at));
      }
      return cancel(s, at, push);
    }
    case 'canceled':
      return;
  }
}

function cancel(s: SimulatedSubscription, at: number, push: (...events: StripeEventFixture[]) => void): void {
  s.state = { ...s.state, status: 'canceled' };
  s.phase = 'canceled';
  s.pastDueSince = null;
  push(stripeEvents.subscriptionDeleted(s.state, at));
}
