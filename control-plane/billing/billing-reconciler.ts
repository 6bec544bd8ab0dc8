import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import Stripe from 'stripe';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import type { ControlPlaneConfig } from '../config';
import { CLOCK, CONFIG, LOGGER } from '../common/tokens';
import { Tenant } from '../tenants/tenant.entity';
import { TenantRepository } from '../tenants/tenant.repository';
import { TierCatalog } from '../tenants/tier-catalog';
import { BillingDriftKind, billingDrift, REPAIRABLE_DRIFT, StripeSubscriptionFacts, TenantBillingFacts } from './billing-reconciler-drift';
import { BillingService } from './billing.service';
import { jsonbDocument } from './jsonb-document';
import { idOf, parseStripeEvent, readBillingEvent } from './stripe-event';
import { WebhookSource } from './webhook-event.entity';

/** One difference between Stripe and Silo, and what the run did about it. */
export interface BillingDifference {
  kind: BillingDriftKind;
  subscriptionId: string;
  tenantId: string | null;
  slug: string | null;
  /** What Stripe says (null: Stripe does not know the subscription). `cancelAt`: a scheduled cancellation, unix seconds. */
  stripe: { status: string; tier: string; priceId: string | null; lookupKey: string | null; cancelAt: number | null } | null;
  /** What Silo holds (null: no tenant). */
  tenant: { status: string; billingStatus: string | null; tier: string } | null;
  /** A replay of Stripe's state through the webhook rules may repair it. */
  repairable: boolean;
  repaired: boolean;
  /** The replayed event (webhook_events, source `reconciler`), when one was made. */
  eventId: string | null;
  /** What was done, or why nothing was. */
  repair: string;
}

export interface BillingReconcileReport {
  checked: { subscriptions: number; tenants: number; scheduledCancellations: number };
  differences: BillingDifference[];
}

type Subscription = Record<string, unknown> & { id: string };

/**
 * Compares Stripe's subscriptions with the tenants billed by them and repairs what a webhook would
 * have: it replays the subscription as Stripe's API returns it now, as a `customer.subscription.updated`
 * event, through BillingService.handle, so payment gating, naming, tier mapping and the finality of a
 * cancellation all apply as they do to webhooks. The event id is a hash of what was compared (Stripe's
 * state and the tenant's row version): two replicas reconciling the same state make the same event,
 * and the second is a duplicate. Report-only differences are left to an admin.
 */
@Injectable()
export class BillingReconciler {
  private client: Stripe | null = null;

  constructor(
    private readonly billing: BillingService,
    private readonly tenants: TenantRepository,
    private readonly tiers: TierCatalog,
    @Inject(CONFIG) private readonly config: ControlPlaneConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {}

  /** Whether STRIPE_SECRET_KEY is set (nothing else in Silo needs it). */
  get configured(): boolean {
    return Boolean(this.config.STRIPE_SECRET_KEY);
  }

  async run(opts: { repair: boolean }): Promise<BillingReconcileReport> {
    const stripe = this.stripe();
    const subscriptions = new Map<string, Subscription>();
    await callStripe(async () => {
      for await (const s of stripe.subscriptions.list({ status: 'all', limit: 100, expand: ['data.customer'] })) {
        const o = plain(s);
        subscriptions.set(o.id, o);
      }
    });
    const billed = await this.tenants.withSubscription();
    const bySubscription = new Map(billed.map((t) => [t.stripeSubscriptionId as string, t]));
    // A tenant's subscription the list did not return (created since, or a list Stripe truncated): asked for by id.
    for (const t of billed) {
      const id = t.stripeSubscriptionId as string;
      if (subscriptions.has(id) || t.status === 'deleted') continue;
      const s = await this.retrieve(stripe, id);
      if (s) subscriptions.set(id, s);
    }

    const differences: BillingDifference[] = [];
    let scheduledCancellations = 0;
    const ids = new Set([...subscriptions.keys(), ...bySubscription.keys()]);
    for (const id of ids) {
      const sub = subscriptions.get(id) ?? null;
      if (sub && typeof sub.cancel_at === 'number' && !isEnded(sub)) scheduledCancellations++;
      let tenant = bySubscription.get(id) ?? null;
      const found = this.compare(id, sub, tenant);
      if (!found.length) continue;
      if (opts.repair && sub && found.some((d) => d.repairable)) {
        const eventId = replayId(sub, tenant);
        try {
          const event = this.snapshotEvent(sub, eventId);
          const result = await this.billing.handle(parseStripeEvent(event), this.payload(event));
          tenant = await this.tenants.findBySubscription(id);
          const left = new Set(this.compare(id, sub, tenant).map((d) => d.kind));
          for (const d of found) {
            if (!d.repairable) continue;
            d.eventId = eventId;
            d.repaired = !left.has(d.kind);
            d.repair = d.repaired ? `replayed Stripe's subscription (${result.duplicate ? 'already replayed by another run' : result.outcome})` : `replayed Stripe's subscription, still differs (outcome ${result.outcome ?? 'duplicate'})`;
            if (tenant) Object.assign(d, { tenantId: tenant.id, slug: tenant.slug });
          }
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          this.logger.warn({ event: 'billing.reconcile.repair_failed', subscriptionId: id, err }, 'billing reconcile repair failed');
          for (const d of found) if (d.repairable) d.repair = `replay failed: ${message.slice(0, 200)}`;
        }
      }
      differences.push(...found);
    }

    const report = { checked: { subscriptions: subscriptions.size, tenants: billed.length, scheduledCancellations }, differences };
    const pending = differences.filter((d) => !d.repaired);
    this.logger[pending.length ? 'warn' : 'info']({
      event: 'billing.reconcile', checked: report.checked, differences: differences.length, repaired: differences.length - pending.length,
      kinds: [...new Set(differences.map((d) => d.kind))], subscriptions: [...new Set(pending.map((d) => d.subscriptionId))].slice(0, 20),
    }, pending.length ? 'billing differs from Stripe' : 'billing matches Stripe');
    return report;
  }

  private compare(id: string, sub: Subscription | null, tenant: Tenant | null): BillingDifference[] {
    const facts = sub ? this.factsOf(sub) : null;
    const tenantFacts: TenantBillingFacts | null = tenant ? { status: tenant.status, billingStatus: tenant.billingStatus, tier: tenant.tier, suspendedBy: tenant.suspendedBy } : null;
    return billingDrift(facts, tenantFacts, { provisionOn: this.config.BILLING_PROVISION_ON }).map((kind) => {
      const repairable = REPAIRABLE_DRIFT.includes(kind);
      return {
        kind, subscriptionId: id, tenantId: tenant?.id ?? null, slug: tenant?.slug ?? null,
        stripe: facts && sub ? { ...facts, ...priceOf(sub), cancelAt: typeof sub.cancel_at === 'number' ? sub.cancel_at : null } : null,
        tenant: tenantFacts ? { status: tenantFacts.status, billingStatus: tenantFacts.billingStatus, tier: tenantFacts.tier } : null,
        repairable, repaired: false, eventId: null,
        repair: repairable ? 'not repaired (report only run)' : REPORT_ONLY[kind] ?? 'report only',
      };
    });
  }

  private factsOf(sub: Subscription): StripeSubscriptionFacts {
    const price = priceOf(sub);
    return { status: typeof sub.status === 'string' ? sub.status : 'unknown', tier: this.tiers.tierForPrice(price.priceId, price.lookupKey) };
  }

  /** Stripe's current state of the subscription as the event a webhook would have carried. `created`: now, so it is the newest thing applied. */
  private snapshotEvent(sub: Subscription, id: string): Record<string, unknown> {
    return {
      id, object: 'event', type: 'customer.subscription.updated', api_version: Stripe.API_VERSION,
      created: Math.floor(this.now().getTime() / 1000), livemode: sub.livemode === true,
      data: { object: sub, previous_attributes: {} }, pending_webhooks: 0, request: { id: null, idempotency_key: null },
    };
  }

  private payload(event: Record<string, unknown>) {
    const text = JSON.stringify(event);
    const doc = jsonbDocument(text, event);
    return { body: Buffer.from(text, 'utf8'), signature: '', document: doc.text, source: WebhookSource.Reconciler };
  }

  private async retrieve(stripe: Stripe, id: string): Promise<Subscription | null> {
    try {
      return plain(await stripe.subscriptions.retrieve(id, { expand: ['customer'] }));
    } catch (err) {
      if (err instanceof Stripe.errors.StripeInvalidRequestError && (err.code === 'resource_missing' || err.statusCode === 404)) return null;
      throw stripeFailure(err);
    }
  }

  private stripe(): Stripe {
    const key = this.config.STRIPE_SECRET_KEY;
    if (!key) throw new SiloError(ErrorCode.CONFIG_INVALID, 'STRIPE_SECRET_KEY is not set: billing reconciliation reads subscriptions from the Stripe API', 503);
    if (!this.client) {
      const base = this.config.STRIPE_API_BASE_URL ? new URL(this.config.STRIPE_API_BASE_URL) : null;
      this.client = new Stripe(key, {
        maxNetworkRetries: 2, timeout: 30_000, telemetry: false, appInfo: { name: 'silo-billing-reconciler' },
        ...(base ? { host: base.hostname, port: base.port || (base.protocol === 'http:' ? 80 : 443), protocol: base.protocol === 'http:' ? 'http' : 'https' } : {}),
      });
    }
    return this.client;
  }
}

const REPORT_ONLY: Partial<Record<BillingDriftKind, string>> = {
  [BillingDriftKind.UnknownSubscription]: 'report only: Stripe does not know this subscription (check the account and mode of STRIPE_SECRET_KEY)',
  [BillingDriftKind.TenantEnded]: 'report only: the tenant was canceled or offboarded and cancellation is final',
  [BillingDriftKind.TenantHeld]: 'report only: suspended by an admin or the system, or failed; an admin decides',
};

/** The id of the replayed event: the same for the same Stripe state and tenant row version. */
function replayId(sub: Subscription, tenant: Tenant | null): string {
  const price = priceOf(sub);
  const state = JSON.stringify([sub.id, sub.status, price.priceId, price.lookupKey, sub.cancel_at ?? null, idOf(sub.customer), tenant ? [tenant.id, tenant.version] : null]);
  return `evt_reconcile_${sub.id}_${createHash('sha256').update(state).digest('hex').slice(0, 20)}`;
}

function isEnded(sub: Subscription): boolean {
  return sub.status === 'canceled' || sub.status === 'incomplete_expired';
}

/** The price of the subscription's first item, as readBillingEvent reads it. */
function priceOf(sub: Subscription): { priceId: string | null; lookupKey: string | null } {
  const be = readBillingEvent({ id: 'evt_probe', object: 'event', type: 'customer.subscription.updated', created: 0, data: { object: sub } });
  return { priceId: be.price?.id ?? null, lookupKey: be.price?.lookupKey ?? null };
}

/** A Stripe SDK object as plain JSON (what a webhook would carry). */
function plain(o: unknown): Subscription {
  return JSON.parse(JSON.stringify(o)) as Subscription;
}

async function callStripe<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw stripeFailure(err);
  }
}

/** A Stripe API failure as one clear line: never the key, never a stack. */
function stripeFailure(err: unknown): Error {
  if (!(err instanceof Stripe.errors.StripeError)) return err instanceof Error ? err : new Error(String(err));
  const status = err.statusCode ? `HTTP ${err.statusCode}` : 'no response';
  const why =
    err instanceof Stripe.errors.StripeAuthenticationError ? 'Stripe rejected STRIPE_SECRET_KEY (authentication failed)'
      : err instanceof Stripe.errors.StripePermissionError ? 'STRIPE_SECRET_KEY may not read subscriptions (a restricted key needs read access to Subscriptions and Customers)'
        : err instanceof Stripe.errors.StripeConnectionError ? 'Stripe API unreachable'
          : err instanceof Stripe.errors.StripeRateLimitError ? 'Stripe API rate limit reached'
            : `Stripe API error (${err.rawType ?? err.type}${err.code ? `, ${err.code}` : ''}): ${redactKeys(err.message).slice(0, 300)}`;
  return new SiloError(ErrorCode.STRIPE_API_FAILED, `${why}, ${status}${err.requestId ? `, request ${err.requestId}` : ''}`, 502);
}

function redactKeys(s: string): string {
  return s.replace(/\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9*]+/g, '[redacted key]');
}
