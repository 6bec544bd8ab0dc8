import { BillingEvent, TERMINAL_STATUSES } from './stripe-event';

export const PAST_DUE_STATUSES: readonly string[] = ['past_due', 'unpaid'];
export const GOOD_STANDING_STATUSES: readonly string[] = ['active', 'trialing'];
/** Billing states an `invoice.paid` settles. */
export const SETTLED_BY_PAYMENT: readonly (string | null)[] = [null, 'past_due', 'unpaid', 'incomplete'];

/** What a subscription's events say about its billing once applied in `created` order. */
export interface BillingHistory {
  billingStatus: string | null;
  /** Unix seconds of the first failure of the current past-due stretch. */
  pastDueSince: number | null;
  /** The newest status is `paused` (billing wants the tenant suspended). */
  paused: boolean;
  canceled: boolean;
  /** The price of the newest subscription snapshot that carried one (only snapshots change the plan). */
  price: BillingEvent['price'];
}

/**
 * Applies a subscription's events in the order given (`created`, then arrival) with the same rules
 * as in-order delivery (docs/billing.md, "Event mapping"). Pure. Used when an event arrives late, so
 * that the tenant ends where in-order delivery would have left it whatever order Stripe chose.
 */
export function replayBillingHistory(events: readonly BillingEvent[]): BillingHistory {
  const h: BillingHistory = { billingStatus: null, pastDueSince: null, paused: false, canceled: false, price: null };
  for (const be of events) {
    const signal = be.signal;
    if (!signal || h.canceled) continue;
    switch (signal.kind) {
      case 'checkout':
        break;
      case 'payment_failed':
        h.billingStatus = h.billingStatus === 'unpaid' ? 'unpaid' : 'past_due';
        h.pastDueSince ??= be.created;
        break;
      case 'payment_succeeded':
        if (SETTLED_BY_PAYMENT.includes(h.billingStatus)) h.billingStatus = 'active';
        h.pastDueSince = null;
        break;
      case 'status':
        if (be.price) h.price = be.price;
        h.billingStatus = signal.status.slice(0, 40);
        if (GOOD_STANDING_STATUSES.includes(signal.status)) {
          h.pastDueSince = null;
          h.paused = false;
        } else if (PAST_DUE_STATUSES.includes(signal.status)) {
          h.pastDueSince ??= be.created;
        } else if (signal.status === 'paused') {
          h.paused = true;
        } else if (TERMINAL_STATUSES.includes(signal.status)) {
          h.canceled = true;
          h.pastDueSince = null;
        }
        break;
    }
  }
  return h;
}
