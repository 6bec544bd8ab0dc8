import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

/**
 * Sample Stripe events shaped like the real ones (API version of the installed stripe package:
 * invoices reference their subscription through `parent.subscription_details`, prices sit on
 * subscription items). Used by the tests, `scripts/send-webhook.ts` and the webhook benchmark.
 * Not used by the control plane itself.
 */

export type StripeObject = Record<string, unknown>;

export interface StripeEventFixture {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: StripeObject; previous_attributes?: StripeObject };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export interface FixturePlan {
  priceId: string;
  lookupKey: string;
  productId: string;
  name: string;
  /** Cents per month. */
  amount: number;
}

/** Three monthly prices; `plans.example.json` maps their lookup keys and ids to Silo's tiers. */
export const FIXTURE_PLANS = {
  starter: { priceId: 'price_1SiloStarterMonthly00001', lookupKey: 'silo_starter_monthly', productId: 'prod_SiloStarter0001', name: 'Silo Starter', amount: 2_900 },
  pro: { priceId: 'price_1SiloProMonthly000000001', lookupKey: 'silo_pro_monthly', productId: 'prod_SiloPro000001', name: 'Silo Pro', amount: 9_900 },
  enterprise: { priceId: 'price_1SiloEnterpriseMonthly01', lookupKey: 'silo_enterprise_monthly', productId: 'prod_SiloEnterprise1', name: 'Silo Enterprise', amount: 49_900 },
} satisfies Record<string, FixturePlan>;

export type FixturePlanName = keyof typeof FIXTURE_PLANS;

/** The simulated subscription the events describe. Builders read it; scenarios return the next one. */
export interface SubscriptionState {
  subscriptionId: string;
  customerId: string;
  itemId: string;
  customerName: string | null;
  customerEmail: string | null;
  /** `metadata.tenant_slug` on the checkout session and the subscription (null: let Silo derive one). */
  slug: string | null;
  plan: FixturePlan;
  status: string;
  /** Unix seconds the subscription started. */
  startedAt: number;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A Stripe-looking id: `sub_1Q…` with 24 random alphanumerics. */
export function stripeId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let s = '1';
  for (let i = 1; i < length; i++) s += ALNUM[bytes[i] % ALNUM.length];
  return `${prefix}_${s}`;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function newSubscription(opts: Partial<Omit<SubscriptionState, 'plan'>> & { plan?: FixturePlanName | FixturePlan } = {}): SubscriptionState {
  const { plan, ...rest } = opts;
  return {
    subscriptionId: stripeId('sub'),
    customerId: stripeId('cus', 14),
    itemId: stripeId('si', 14),
    customerName: 'Acme Corp',
    customerEmail: 'billing@acme.example',
    slug: null,
    status: 'active',
    startedAt: nowSeconds(),
    ...rest,
    plan: typeof plan === 'string' ? FIXTURE_PLANS[plan] : plan ?? FIXTURE_PLANS.starter,
  };
}

export function stripeEvent(type: string, object: StripeObject, opts: { created?: number; id?: string; previousAttributes?: StripeObject } = {}): StripeEventFixture {
  return {
    id: opts.id ?? stripeId('evt'),
    object: 'event',
    api_version: Stripe.API_VERSION,
    created: opts.created ?? nowSeconds(),
    data: { object, ...(opts.previousAttributes ? { previous_attributes: opts.previousAttributes } : {}) },
    livemode: false,
    pending_webhooks: 1,
    request: { id: stripeId('req', 14), idempotency_key: randomBytes(16).toString('hex') },
    type,
  };
}

function metadata(s: SubscriptionState): Record<string, string> {
  return s.slug ? { tenant_slug: s.slug } : {};
}

function priceObject(p: FixturePlan): StripeObject {
  return {
    id: p.priceId, object: 'price', active: true, billing_scheme: 'per_unit', created: 1_730_000_000, currency: 'usd',
    custom_unit_amount: null, livemode: false, lookup_key: p.lookupKey, metadata: {}, nickname: `${p.name} monthly`, product: p.productId,
    recurring: { interval: 'month', interval_count: 1, meter: null, usage_type: 'licensed' },
    tax_behavior: 'unspecified', tiers_mode: null, transform_quantity: null, type: 'recurring', unit_amount: p.amount, unit_amount_decimal: String(p.amount),
  };
}

const DAY = 86_400;

export function subscriptionObject(s: SubscriptionState, at: number): StripeObject {
  const periodStart = s.startedAt + Math.floor(Math.max(0, at - s.startedAt) / (30 * DAY)) * 30 * DAY;
  const canceled = s.status === 'canceled';
  return {
    id: s.subscriptionId, object: 'subscription', application: null, application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: s.startedAt, billing_mode: { type: 'flexible' }, cancel_at: null, cancel_at_period_end: false,
    canceled_at: canceled ? at : null, cancellation_details: { comment: null, feedback: null, reason: canceled ? 'cancellation_requested' : null },
    collection_method: 'charge_automatically', created: s.startedAt, currency: 'usd', customer: s.customerId,
    days_until_due: null, default_payment_method: 'pm_1SiloCardVisa000000001', description: null, discounts: [], ended_at: canceled ? at : null,
    invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
    items: {
      object: 'list', has_more: false, total_count: 1, url: `/v1/subscription_items?subscription=${s.subscriptionId}`,
      data: [{
        id: s.itemId, object: 'subscription_item', created: s.startedAt, current_period_start: periodStart, current_period_end: periodStart + 30 * DAY,
        discounts: [], metadata: {}, price: priceObject(s.plan), quantity: 1, subscription: s.subscriptionId, tax_rates: [],
      }],
    },
    latest_invoice: stripeId('in'), livemode: false, metadata: metadata(s), next_pending_invoice_item_invoice: null,
    on_behalf_of: null, pause_collection: null, payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
    pending_invoice_item_interval: null, pending_setup_intent: null, pending_update: null, schedule: null,
    start_date: s.startedAt, status: s.status, test_clock: null, transfer_data: null, trial_end: null,
    trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } }, trial_start: null,
  };
}

export function checkoutSessionObject(s: SubscriptionState, at: number): StripeObject {
  return {
    id: `cs_test_a1${stripeId('x', 56).slice(3)}`, object: 'checkout.session', after_expiration: null, allow_promotion_codes: null,
    amount_subtotal: s.plan.amount, amount_total: s.plan.amount, automatic_tax: { enabled: false, liability: null, status: null },
    billing_address_collection: null, cancel_url: 'https://example.com/pricing', client_reference_id: null, created: at - 60, currency: 'usd',
    customer: s.customerId, customer_creation: 'always',
    customer_details: { address: null, email: s.customerEmail, name: s.customerName, phone: null, tax_exempt: 'none', tax_ids: [] },
    customer_email: null, expires_at: at + DAY, invoice: stripeId('in'), livemode: false, locale: null, metadata: metadata(s),
    mode: 'subscription', payment_intent: null, payment_method_types: ['card'], payment_status: 'paid', status: 'complete',
    submit_type: null, subscription: s.subscriptionId, success_url: 'https://example.com/welcome?session_id={CHECKOUT_SESSION_ID}',
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 }, ui_mode: 'hosted', url: null,
  };
}

export function invoiceObject(s: SubscriptionState, at: number, opts: { paid: boolean; billingReason?: string }): StripeObject {
  const id = stripeId('in');
  const amount = s.plan.amount;
  return {
    id, object: 'invoice', account_country: 'US', account_name: 'Silo Example Inc.', amount_due: amount, amount_overpaid: 0,
    amount_paid: opts.paid ? amount : 0, amount_remaining: opts.paid ? 0 : amount, attempt_count: 1, attempted: true,
    auto_advance: !opts.paid, billing_reason: opts.billingReason ?? 'subscription_cycle', collection_method: 'charge_automatically',
    created: at, currency: 'usd', customer: s.customerId, customer_email: s.customerEmail, customer_name: s.customerName,
    hosted_invoice_url: `https://invoice.stripe.com/i/acct_1SiloExample/test_${id}`,
    lines: {
      object: 'list', has_more: false, total_count: 1, url: `/v1/invoices/${id}/lines`,
      data: [{
        id: stripeId('il'), object: 'line_item', amount, currency: 'usd', description: `1 × ${s.plan.name} (at $${(amount / 100).toFixed(2)} / month)`,
        invoice: id, livemode: false, metadata: {},
        parent: { type: 'subscription_item_details', invoice_item_details: null, subscription_item_details: { invoice_item: null, proration: false, proration_details: { credited_items: null }, subscription: s.subscriptionId, subscription_item: s.itemId } },
        period: { start: at, end: at + 30 * DAY },
        pricing: { type: 'price_details', price_details: { price: s.plan.priceId, product: s.plan.productId }, unit_amount_decimal: String(amount) },
        quantity: 1, taxes: [],
      }],
    },
    livemode: false, metadata: {}, next_payment_attempt: opts.paid ? null : at + 3 * DAY, number: `SILO-${randomBytes(3).toString('hex').toUpperCase()}-0001`,
    parent: { type: 'subscription_details', quote_details: null, subscription_details: { metadata: metadata(s), subscription: s.subscriptionId } },
    period_end: at, period_start: at - 30 * DAY, status: opts.paid ? 'paid' : 'open',
    status_transitions: { finalized_at: at, marked_uncollectible_at: null, paid_at: opts.paid ? at : null, voided_at: null },
    subtotal: amount, total: amount,
  };
}

/** One builder per event type billing reacts to. `s` is the subscription as it is after the event. */
export const stripeEvents = {
  checkoutCompleted: (s: SubscriptionState, at = nowSeconds()) => stripeEvent('checkout.session.completed', checkoutSessionObject(s, at), { created: at }),
  subscriptionCreated: (s: SubscriptionState, at = nowSeconds()) => stripeEvent('customer.subscription.created', subscriptionObject(s, at), { created: at }),
  subscriptionUpdated: (s: SubscriptionState, at = nowSeconds(), previous?: StripeObject) =>
    stripeEvent('customer.subscription.updated', subscriptionObject(s, at), { created: at, previousAttributes: previous ?? {} }),
  subscriptionDeleted: (s: SubscriptionState, at = nowSeconds()) => stripeEvent('customer.subscription.deleted', subscriptionObject({ ...s, status: 'canceled' }, at), { created: at }),
  subscriptionPaused: (s: SubscriptionState, at = nowSeconds()) => stripeEvent('customer.subscription.paused', subscriptionObject({ ...s, status: 'paused' }, at), { created: at }),
  subscriptionResumed: (s: SubscriptionState, at = nowSeconds()) => stripeEvent('customer.subscription.resumed', subscriptionObject({ ...s, status: 'active' }, at), { created: at }),
  invoicePaid: (s: SubscriptionState, at = nowSeconds(), billingReason = 'subscription_cycle') => stripeEvent('invoice.paid', invoiceObject(s, at, { paid: true, billingReason }), { created: at }),
  invoicePaymentFailed: (s: SubscriptionState, at = nowSeconds()) => stripeEvent('invoice.payment_failed', invoiceObject(s, at, { paid: false }), { created: at }),
};

export const SCENARIOS = ['purchase', 'past-due', 'recover', 'cancel', 'pause', 'resume', 'plan-change'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/**
 * The events Stripe sends for one step of a subscription's life, in Stripe's usual order, and the
 * subscription afterwards. `plan` is the new plan for `plan-change` (default: the next plan up).
 */
export function scenarioEvents(name: ScenarioName, s: SubscriptionState, opts: { at?: number; plan?: FixturePlanName } = {}): { events: StripeEventFixture[]; state: SubscriptionState } {
  const at = opts.at ?? nowSeconds();
  const e = stripeEvents;
  switch (name) {
    case 'purchase': {
      const state = { ...s, status: 'active', startedAt: at };
      return { state, events: [e.subscriptionCreated(state, at), e.invoicePaid(state, at, 'subscription_create'), e.checkoutCompleted(state, at)] };
    }
    case 'past-due': {
      const state = { ...s, status: 'past_due' };
      return { state, events: [e.invoicePaymentFailed(state, at), e.subscriptionUpdated(state, at, { status: s.status })] };
    }
    case 'recover': {
      const state = { ...s, status: 'active' };
      return { state, events: [e.invoicePaid(state, at), e.subscriptionUpdated(state, at, { status: s.status })] };
    }
    case 'cancel': {
      const state = { ...s, status: 'canceled' };
      return { state, events: [e.subscriptionDeleted(state, at)] };
    }
    case 'pause': {
      const state = { ...s, status: 'paused' };
      return { state, events: [e.subscriptionUpdated(state, at, { status: s.status }), e.subscriptionPaused(state, at)] };
    }
    case 'resume': {
      const state = { ...s, status: 'active' };
      return { state, events: [e.subscriptionUpdated(state, at, { status: s.status }), e.subscriptionResumed(state, at)] };
    }
    case 'plan-change': {
      const next = opts.plan ? FIXTURE_PLANS[opts.plan] : s.plan === FIXTURE_PLANS.starter ? FIXTURE_PLANS.pro : FIXTURE_PLANS.enterprise;
      const state = { ...s, plan: next };
      return { state, events: [e.subscriptionUpdated(state, at, { items: subscriptionObject(s, at).items })] };
    }
  }
}
