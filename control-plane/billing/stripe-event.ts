import { webhookPayloadInvalid } from './billing.errors';

/**
 * A verified Stripe event envelope. Only the envelope is validated strictly; `data.object` is read
 * defensively (below) because its shape depends on the event type and the account's API version.
 */
export interface StripeEvent {
  /** 1 to 255 characters. */
  id: string;
  object: 'event';
  /** 1 to 255 characters. */
  type: string;
  /** Unix seconds, a non-negative integer. */
  created: number;
  api_version?: string | null;
  livemode?: boolean;
  data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> | null };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

const isName = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= 255;

/**
 * Validates a verified body as a Stripe event envelope (400 WEBHOOK_PAYLOAD_INVALID naming up to five
 * problems otherwise) and returns it as it is: hand-written checks, because this runs on every
 * delivery and a schema library's parse was a measurable part of one.
 */
export function parseStripeEvent(json: unknown): StripeEvent {
  if (!isPlainObject(json)) throw webhookPayloadInvalid('body: must be an object');
  const problems: string[] = [];
  if (!isName(json.id)) problems.push('id: must be a string of 1 to 255 characters');
  if (json.object !== 'event') problems.push('object: must be "event"');
  if (!isName(json.type)) problems.push('type: must be a string of 1 to 255 characters');
  if (!(typeof json.created === 'number' && Number.isInteger(json.created) && json.created >= 0)) problems.push('created: must be a non-negative integer');
  if (json.api_version != null && typeof json.api_version !== 'string') problems.push('api_version: must be a string');
  if (json.livemode !== undefined && typeof json.livemode !== 'boolean') problems.push('livemode: must be a boolean');
  const data = json.data;
  if (!isPlainObject(data)) problems.push('data: must be an object');
  else {
    if (!isPlainObject(data.object)) problems.push('data.object: must be an object');
    if (data.previous_attributes != null && !isPlainObject(data.previous_attributes)) problems.push('data.previous_attributes: must be an object');
  }
  if (problems.length) throw webhookPayloadInvalid(problems.slice(0, 5).join('; '));
  return json as unknown as StripeEvent;
}

/** What an event says about a subscription, reduced to the signals the lifecycle reacts to. */
export type BillingSignal =
  /** A subscription snapshot (`customer.subscription.*`): Stripe's status at `created`. */
  | { kind: 'status'; status: string }
  /** `invoice.payment_failed`: the subscription is past due. */
  | { kind: 'payment_failed' }
  /** `invoice.paid`: past-due debt is settled. */
  | { kind: 'payment_succeeded' }
  /** `checkout.session.completed` in subscription mode: a purchase, no status of its own. */
  | { kind: 'checkout' };

export interface BillingEvent {
  id: string;
  type: string;
  /** Unix seconds. */
  created: number;
  subscriptionId: string | null;
  customerId: string | null;
  /** Null: recorded and acknowledged, no effect (`ignoredBecause` says why). */
  signal: BillingSignal | null;
  ignoredBecause?: string;
  /** The subscription's first item price, when the event carries it. */
  price: { id: string | null; lookupKey: string | null } | null;
  /** How to name a tenant created from this event. */
  naming: Naming;
  /** Checkout only: Stripe says the session is paid (or needs no payment). */
  paid?: boolean;
  /** Invoices only: the subscription's first invoice (`billing_reason: subscription_create`). */
  firstInvoice?: boolean;
  /** Subscription snapshots: the status before this change (`previous_attributes.status`), when Stripe says. */
  previousStatus?: string | null;
}

/** Where a slug would come from, best first. */
export type NamingSource = 'requested' | 'name' | 'email' | 'customer';
export const NAMING_RANK: Readonly<Record<NamingSource, number>> = { requested: 4, name: 3, email: 2, customer: 1 };

/**
 * A tenant's name and slug as one event knows them: `slug` a requested `tenant_slug` (normalised
 * later if it is not a DNS label), else `slugSource` (free text: a name, an email, the customer id)
 * to derive one from; `source` says which, so a later event can tell whether it knows better.
 */
export interface Naming {
  slug: string | null;
  name: string | null;
  slugSource: string | null;
  source: NamingSource | null;
}

function naming(requested: string | null, displayName: string | null, customerName: string | null, email: string | null, customerId: string | null): Naming {
  const name = displayName ?? customerName; // metadata.tenant_name, else the customer's name
  const source: NamingSource | null = requested ? 'requested' : name ? 'name' : email ? 'email' : customerId ? 'customer' : null;
  return { slug: requested, name: name ?? email ?? customerId, slugSource: name ?? email ?? customerId, source };
}

/** Statuses after which a subscription never comes back: its tenant is offboarded, later events are ignored. */
export const TERMINAL_STATUSES: readonly string[] = ['canceled', 'incomplete_expired'];

type Obj = Record<string, unknown>;

const SUBSCRIPTION_EVENTS = new Set([
  'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted',
  'customer.subscription.paused', 'customer.subscription.resumed',
]);

/** Reduces a Stripe event to what billing acts on. Pure: no I/O, never throws on odd shapes. */
export function readBillingEvent(event: StripeEvent): BillingEvent {
  const o = event.data.object;
  const base = { id: event.id, type: event.type, created: event.created };
  const none = (why: string, subscriptionId: string | null = null, customerId: string | null = null): BillingEvent =>
    ({ ...base, subscriptionId, customerId, signal: null, ignoredBecause: why, price: null, naming: naming(null, null, null, null, null) });

  if (event.type === 'checkout.session.completed') {
    const subscriptionId = idOf(o.subscription);
    if (o.mode !== 'subscription') return none(`checkout mode ${text(o.mode) ?? 'unknown'}`, subscriptionId, idOf(o.customer));
    if (!subscriptionId) return none('checkout session without a subscription', null, idOf(o.customer));
    const details = obj(o.customer_details);
    const meta = obj(o.metadata);
    const lineItems = obj(o.line_items); // only present when the endpoint expands it
    return {
      ...base, subscriptionId, customerId: idOf(o.customer), signal: { kind: 'checkout' },
      price: priceOf(obj(first(lineItems.data)).price),
      naming: naming(text(meta.tenant_slug), text(meta.tenant_name), text(details.name), text(details.email) ?? text(o.customer_email), idOf(o.customer)),
      paid: o.payment_status === 'paid' || o.payment_status === 'no_payment_required',
    };
  }

  if (SUBSCRIPTION_EVENTS.has(event.type)) {
    const subscriptionId = text(o.id);
    if (!subscriptionId) return none('subscription object without an id');
    const status = subscriptionStatus(event.type, text(o.status));
    if (!status) return none('subscription object without a status', subscriptionId, idOf(o.customer));
    const item = obj(first(obj(o.items).data));
    return {
      ...base, subscriptionId, customerId: idOf(o.customer), signal: { kind: 'status', status },
      price: priceOf(item.price ?? item.plan), naming: subscriptionNaming(o),
      previousStatus: text(obj(event.data.previous_attributes).status),
    };
  }

  if (event.type === 'invoice.paid' || event.type === 'invoice.payment_failed') {
    const parent = obj(obj(o.parent).subscription_details);
    const line = obj(first(obj(o.lines).data));
    const subscriptionId = subscriptionOf(o);
    if (!subscriptionId) return none('invoice without a subscription', null, idOf(o.customer));
    const meta = { ...obj(obj(o.subscription_details).metadata), ...obj(parent.metadata) };
    const customerId = idOf(o.customer);
    const pricing = obj(obj(line.pricing).price_details);
    return {
      ...base, subscriptionId, customerId,
      signal: event.type === 'invoice.paid' ? { kind: 'payment_succeeded' } : { kind: 'payment_failed' },
      price: priceOf(line.price) ?? (text(pricing.price) ? { id: text(pricing.price), lookupKey: null } : null),
      naming: naming(text(meta.tenant_slug), text(meta.tenant_name), text(o.customer_name), text(o.customer_email), customerId),
      firstInvoice: o.billing_reason === 'subscription_create',
    };
  }

  // Still indexed by the subscription it names (GET /v1/webhook-events?subscription=).
  return none('event type has no effect', subscriptionOf(o), idOf(o.customer));
}

/**
 * The subscription an event's object names, whatever the event type: a subscription's own id; else
 * `parent.subscription_details.subscription` (invoices and invoice items, API 2025-03-31 and later),
 * else `subscription` (older invoices, checkout sessions, schedules), else an invoice's first line's.
 * Null when it names none.
 */
export function subscriptionOf(o: Obj): string | null {
  if (o.object === 'subscription') return text(o.id);
  const line = obj(first(obj(o.lines).data));
  return idOf(obj(obj(o.parent).subscription_details).subscription) ?? idOf(o.subscription)
    ?? idOf(obj(obj(line.parent).subscription_item_details).subscription) ?? idOf(line.subscription);
}

/** `deleted` is always a cancellation, `paused`/`resumed` imply their status whatever the snapshot says. */
function subscriptionStatus(type: string, status: string | null): string | null {
  if (type === 'customer.subscription.deleted') return status && TERMINAL_STATUSES.includes(status) ? status : 'canceled';
  if (type === 'customer.subscription.paused') return 'paused';
  if (type === 'customer.subscription.resumed') return status && status !== 'paused' ? status : 'active';
  return status;
}

function subscriptionNaming(o: Obj): Naming {
  const meta = obj(o.metadata);
  const customer = obj(o.customer); // an expanded customer carries a name/email; usually it is just an id
  return naming(text(meta.tenant_slug), text(meta.tenant_name), text(customer.name), text(customer.email), idOf(o.customer));
}

function priceOf(v: unknown): BillingEvent['price'] {
  if (typeof v === 'string') return { id: v, lookupKey: null };
  const p = obj(v);
  const id = text(p.id);
  const lookupKey = text(p.lookup_key);
  return id || lookupKey ? { id, lookupKey } : null;
}

/** A Stripe reference: an id string, or an expanded object with an id. */
export function idOf(v: unknown): string | null {
  if (typeof v === 'string') return text(v);
  return text(obj(v).id);
}

function obj(v: unknown): Obj {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
}

function first(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : undefined;
}

function text(v: unknown, max = 500): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t ? t.slice(0, max) : null;
}
