import { resolve } from 'node:path';
import Stripe from 'stripe';
import type { StripeEventFixture } from './stripe-fixtures';
import { TEST_WEBHOOK_SECRET, TestControlPlane } from './control-plane';

/** Signs like Stripe does; the key is a placeholder (no API calls). */
export const stripe = new Stripe('sk_test_silo_tests');

/** The shipped example plans file: Silo's tiers for the fixture prices. */
export const PLANS_FILE = resolve(__dirname, '../../control-plane/billing/plans.example.json');

export interface DeliveryOptions {
  secret?: string;
  /** Unix seconds for the signature's `t=` (default now). */
  timestamp?: number;
  /** Override the whole Stripe-Signature header (null: send none). */
  signature?: string | null;
}

export function signatureFor(payload: string, opts: DeliveryOptions = {}): string {
  return stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? TEST_WEBHOOK_SECRET, timestamp: opts.timestamp });
}

/** POSTs an event (or raw text) to /webhooks/stripe the way Stripe does. */
export async function deliver(t: Pick<TestControlPlane, 'url'>, event: StripeEventFixture | string, opts: DeliveryOptions = {}): Promise<{ status: number; body: any }> {
  const payload = typeof event === 'string' ? event : JSON.stringify(event, null, 2);
  const signature = opts.signature === undefined ? signatureFor(payload, opts) : opts.signature;
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' };
  if (signature !== null) headers['stripe-signature'] = signature;
  const res = await fetch(`${t.url}/webhooks/stripe`, { method: 'POST', headers, body: payload });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body: body as never };
}

/** Delivers each event in turn, failing loudly on anything but 200. */
export async function deliverAll(t: Pick<TestControlPlane, 'url'>, events: StripeEventFixture[]): Promise<void> {
  for (const e of events) {
    const res = await deliver(t, e);
    if (res.status !== 200) throw new Error(`${e.type} ${e.id}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
}

export interface TenantRow {
  id: string;
  slug: string;
  name: string;
  status: string;
  tier: string;
  billing_status: string | null;
  past_due_since: Date | null;
  suspend_reason: string | null;
  suspended_by: string | null;
  suspend_cause: string | null;
  offboard_at: Date | null;
  stripe_customer_id: string | null;
  last_event_created: string | null;
}

export async function tenantsOf(t: TestControlPlane, subscriptionId: string): Promise<TenantRow[]> {
  return t.sql<TenantRow & Record<string, unknown>>('SELECT * FROM tenants WHERE stripe_subscription_id = $1', [subscriptionId]);
}

export async function tenantOf(t: TestControlPlane, subscriptionId: string): Promise<TenantRow> {
  const rows = await tenantsOf(t, subscriptionId);
  if (rows.length !== 1) throw new Error(`expected one tenant for ${subscriptionId}, found ${rows.length}`);
  return rows[0];
}

export async function auditOf(t: TestControlPlane, tenantId: string): Promise<Array<{ action: string; from_status: string | null; to_status: string | null; cause_type: string; cause_id: string | null; detail: Record<string, unknown> }>> {
  return t.sql('SELECT action, from_status, to_status, cause_type, cause_id, detail FROM audit_log WHERE tenant_id = $1 ORDER BY id', [tenantId]);
}

export async function jobsOf(t: TestControlPlane, tenantId: string): Promise<Array<{ type: string; status: string; payload: Record<string, unknown> }>> {
  return t.sql('SELECT type, status, payload FROM jobs WHERE tenant_id = $1 ORDER BY created_at', [tenantId]);
}

export async function storedEvent(t: TestControlPlane, id: string): Promise<{ outcome: string; tenant_id: string | null; subscription_id: string | null } | undefined> {
  return (await t.sql<{ outcome: string; tenant_id: string | null; subscription_id: string | null }>('SELECT outcome, tenant_id, subscription_id FROM webhook_events WHERE id = $1', [id]))[0];
}
