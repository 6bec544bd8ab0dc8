import { BillingEvent, TERMINAL_STATUSES } from './stripe-event';

export const PAST_DUE_STATUSES: readonly string[] = ['past_due', 'unpaid'];
export const GOOD_STANDING_STATUSES: readonly string[] = ['active', 'trialing'];
/** Billing states an `invoice.paid` settles. */
export const SETTLED_BY_PAYMENT: readonly (string | null)[] = [null, 'past_due', 'unpaid', 'incomplete'];

/** What a subscription's events say about its billing. */
export interface BillingFacts {
  billingStatus: string | null;
  /** Unix seconds of the first failure of the current past-due stretch. */
  pastDueSince: number | null;
  /** The newest status is `paused` (billing wants the tenant suspended). */
  paused: boolean;
  canceled: boolean;
  /** The price of the newest subscription snapshot that carried one (only snapshots change the plan). */
  price: BillingEvent['price'];
}

export const NO_BILLING_FACTS: BillingFacts = { billingStatus: null, pastDueSince: null, paused: false, canceled: false, price: null };

/**
 * One event's effect on the billing facts: the rules of docs/billing.md ("Event mapping"), in one
 * place. Pure. The live path applies it to the tenant and then acts on what changed (resume,
 * suspend, cancel); a late event replays the subscription's whole history through it.
 */
export function nextBillingFacts(f: BillingFacts, be: BillingEvent): BillingFacts {
  const signal = be.signal;
  if (!signal || f.canceled) return f;
  const n = { ...f };
  switch (signal.kind) {
    case 'checkout':
      break; // the purchase itself: creating the tenant is its effect
    case 'payment_failed':
      // The first payment of a subscription never paid for (Elements): Stripe keeps it `incomplete`, nothing is past due.
      if (n.billingStatus === 'incomplete' || (n.billingStatus === null && be.firstInvoice)) {
        n.billingStatus = 'incomplete';
        break;
      }
      n.billingStatus = n.billingStatus === 'unpaid' ? 'unpaid' : 'past_due';
      n.pastDueSince ??= be.created; // the grace period runs from the first failure
      break;
    case 'payment_succeeded':
      if (SETTLED_BY_PAYMENT.includes(n.billingStatus)) n.billingStatus = 'active';
      n.pastDueSince = null;
      break;
    case 'status':
      if (be.price) n.price = be.price;
      n.billingStatus = signal.status.slice(0, 40);
      if (GOOD_STANDING_STATUSES.includes(signal.status)) {
        n.pastDueSince = null;
        n.paused = false;
      } else if (PAST_DUE_STATUSES.includes(signal.status)) {
        n.pastDueSince ??= be.created;
      } else if (signal.status === 'paused') {
        n.paused = true;
      } else if (TERMINAL_STATUSES.includes(signal.status)) {
        n.canceled = true;
        n.pastDueSince = null;
      }
      // incomplete and unknown statuses: recorded, no lifecycle change.
      break;
  }
  return n;
}

/** How far along its life a status is: within one second, the later status is the newer event. */
const STATUS_STAGE: Readonly<Record<string, number>> = { incomplete: 0, trialing: 1, active: 2, past_due: 3, unpaid: 4, paused: 5, canceled: 9, incomplete_expired: 9 };
const TYPE_STAGE = (type: string): number => (type === 'checkout.session.completed' ? 0 : type === 'customer.subscription.created' ? 1 : 2);

/**
 * Orders a subscription's events by `created`, and events of the same second by what they say
 * rather than by arrival (Stripe stamps a subscription's `created` and first `updated` with the
 * same second): the one whose `previous_attributes.status` is the other's status comes after it;
 * else `customer.subscription.created` before other events; else the status further along
 * (incomplete < trialing < active < past_due < unpaid < paused < canceled). Stable otherwise.
 */
export function orderHistory(events: readonly BillingEvent[]): BillingEvent[] {
  const statusOf = (e: BillingEvent) => (e.signal?.kind === 'status' ? e.signal.status : null);
  const sameSecond = (a: BillingEvent, b: BillingEvent): number => {
    if (b.previousStatus && b.previousStatus === statusOf(a) && a.previousStatus !== statusOf(b)) return -1;
    if (a.previousStatus && a.previousStatus === statusOf(b) && b.previousStatus !== statusOf(a)) return 1;
    const byType = TYPE_STAGE(a.type) - TYPE_STAGE(b.type);
    if (byType) return byType;
    const sa = statusOf(a);
    const sb = statusOf(b);
    return sa !== null && sb !== null ? (STATUS_STAGE[sa] ?? 2) - (STATUS_STAGE[sb] ?? 2) : 0;
  };
  return events.map((e, i) => ({ e, i })).sort((x, y) => x.e.created - y.e.created || sameSecond(x.e, y.e) || x.i - y.i).map((x) => x.e);
}

/**
 * A subscription's events applied in the order given (`created`, then arrival). Used when an event
 * arrives late, so that the tenant ends where in-order delivery would have left it whatever order
 * Stripe chose.
 */
export function replayBillingHistory(events: readonly BillingEvent[]): BillingFacts {
  return events.reduce(nextBillingFacts, NO_BILLING_FACTS);
}
