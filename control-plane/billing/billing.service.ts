import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { EntityManager } from 'typeorm';
import type { Logger } from '../../common/logger';
import type { ControlPlaneConfig } from '../config';
import { CLOCK, CONFIG, LOGGER } from '../common/tokens';
import { JobType } from '../jobs/job.entity';
import { JobRepository } from '../jobs/job.repository';
import { TenantRepository } from '../tenants/tenant.repository';
import { Cause, TenantService } from '../tenants/tenant.service';
import { PAYMENT_SUSPENSIONS, SlugSource, SuspendCause, SuspendedBy, TenantStatus } from '../tenants/tenant-status';
import { Tenant } from '../tenants/tenant.entity';
import { TierCatalog } from '../tenants/tier-catalog';
import { BillingFacts, GOOD_STANDING_STATUSES, NO_BILLING_FACTS, nextBillingFacts, orderHistory, PAST_DUE_STATUSES, replayBillingHistory } from './billing-history';
import { BillingEvent, BillingSignal, Naming, NAMING_RANK, NamingSource, parseStripeEvent, readBillingEvent, StripeEvent, TERMINAL_STATUSES } from './stripe-event';
import type { SignedPayload } from './stripe-webhook.verifier';
import { WebhookEventRepository } from './webhook-event.repository';
import { WebhookOutcome } from './webhook-event.entity';

export interface WebhookResult {
  duplicate: boolean;
  outcome: WebhookOutcome | null;
  tenantId: string | null;
}

/**
 * Where the line saying what an event did goes: by default its own info line; the webhook controller
 * puts the same fields on the delivery's request log line instead (one line per delivery).
 */
export type WebhookReport = (fields: Record<string, unknown>, message: string) => void;

/** Suspensions billing makes, with the reason people read. Only billing's suspensions are ever lifted by a billing event. */
const BILLING_SUSPENSIONS = {
  paused: { cause: SuspendCause.SubscriptionPaused, reason: 'billing: subscription paused' },
  canceled: { cause: SuspendCause.SubscriptionCanceled, reason: 'billing: subscription canceled' },
} as const;
type BillingSuspension = (typeof BILLING_SUSPENSIONS)[keyof typeof BILLING_SUSPENSIONS];

/** Billing suspended this tenant (a Stripe event, or the grace-period sweep for missing payment). */
const isBillingSuspension = (t: Tenant): boolean => t.status === TenantStatus.Suspended && t.suspendedBy === SuspendedBy.Billing;

/** Billing suspended it for missing payment: what a paid invoice lifts. */
const isPaymentSuspension = (t: Tenant): boolean => isBillingSuspension(t) && PAYMENT_SUSPENSIONS.includes(t.suspendCause as SuspendCause);

/** The billing facts of a tenant, to tell whether an event changed any. */
const billingState = (t: Tenant) => `${t.status}|${t.suspendedBy}|${t.suspendCause}|${t.billingStatus}|${t.pastDueSince?.getTime()}|${t.offboardAt?.getTime()}`;

interface Applied {
  outcome: WebhookOutcome;
  tenant: Tenant | null;
  /** The tenant's previous slug when this event renamed it (before its hostname was live). */
  renamedFrom?: string | null;
}

/** Statuses of a subscription Stripe has been paid for (or that needs no payment yet: a trial). */
const PAID_STATUSES: readonly string[] = ['active', 'trialing', 'past_due', 'unpaid', 'paused'];
const SLUG_SOURCES: Readonly<Record<NamingSource, SlugSource>> = { requested: SlugSource.Requested, name: SlugSource.Name, email: SlugSource.Email, customer: SlugSource.Customer };

/**
 * Stripe events → tenant lifecycle. Each event is stored by its id in the same transaction as the
 * change it causes, so a redelivery finds it and changes nothing. Events of one subscription are
 * serialised by an advisory lock; out-of-order ones are judged by `created` against the newest event
 * applied. Long work (provisioning, reconfiguring, deprovisioning) is only enqueued.
 */
@Injectable()
export class BillingService {
  constructor(
    private readonly events: WebhookEventRepository,
    private readonly tenants: TenantRepository,
    private readonly service: TenantService,
    private readonly jobs: JobRepository,
    private readonly tiers: TierCatalog,
    @Inject(CONFIG) private readonly config: ControlPlaneConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {}

  /**
   * Ids of events known to be committed, so a redelivery to this process costs no database round trip.
   * Bounded; a miss (another replica, a restart, an old event) falls back to the primary-key probe.
   */
  private readonly stored = new LRUCache<string, true>({ max: 50_000 });

  /** A verified delivery: a redelivery this process has seen costs nothing more; anything else is validated and handled. */
  receive(json: unknown, raw: SignedPayload, report?: WebhookReport): Promise<WebhookResult> {
    const id = (json as { id?: unknown } | null)?.id;
    if (typeof id === 'string' && this.stored.has(id)) return Promise.resolve({ duplicate: true, outcome: null, tenantId: null });
    return this.handle(parseStripeEvent(json), raw, report);
  }

  private readonly logReport: WebhookReport = (fields, message) => this.logger.info(fields, message);

  /**
   * A new event costs, for a new subscription, 3 round trips to the control database plus the
   * directory write between the last two: [BEGIN, event insert under the subscription lock, tenant +
   * connection], the tenant insert, then [audit, job, tenant update, outcome, published_version,
   * COMMIT] (pipelinedTransaction holds deferred writes until the COMMIT). A duplicate another process
   * stored: [BEGIN, insert finds it], ROLLBACK.
   */
  async handle(event: StripeEvent, raw: SignedPayload, report: WebhookReport = this.logReport): Promise<WebhookResult> {
    const duplicate: WebhookResult = { duplicate: true, outcome: null, tenantId: null };
    if (this.stored.has(event.id)) return duplicate;
    const be = readBillingEvent(event);
    const record = { id: be.id, type: be.type, payload: raw, created: be.created, subscriptionId: be.subscriptionId, tenantId: null };

    if (!be.signal || !be.subscriptionId) {
      const inserted = await this.events.insert({ ...record, outcome: WebhookOutcome.Ignored });
      this.stored.set(be.id, true);
      report({ event: 'stripe.webhook', id: be.id, type: be.type, outcome: inserted ? WebhookOutcome.Ignored : 'duplicate', why: be.ignoredBecause }, 'stripe event recorded');
      return { duplicate: !inserted, outcome: inserted ? WebhookOutcome.Ignored : null, tenantId: null };
    }

    const subscriptionId = be.subscriptionId;
    const signal = be.signal;
    const result = await this.events.pipelined(async (tx): Promise<Applied | null> => {
      const m = tx.manager;
      // Stored first, under the subscription lock: a concurrent delivery of the same id waits, then sees
      // the duplicate. The tenant is read in the same round trip, after the lock is held.
      const stored = this.events.insertLocked({ ...record, subscriptionId, outcome: 'processing' }, m);
      const found = this.tenants.findBySubscriptionForUpdate(subscriptionId, m);
      if (!(await stored)) {
        await found.catch(() => undefined);
        return null;
      }
      const { tenant, connection } = await found;
      const applied = await this.apply(be, subscriptionId, signal, tenant, m);
      await this.events.setOutcome(be.id, applied.outcome, applied.tenant?.id ?? null, m);
      // Published before the commit, with the row still locked: the entry cannot be overtaken by an
      // older state. The deferred writes (tenant update, outcome, audit) are still held here and go
      // out with the COMMIT (saves predict the version they bump to); if any of them or the commit
      // fails, the entry is ahead until Stripe redelivers the unacknowledged event.
      const t = applied.tenant;
      if (t && applied.renamedFrom) await this.service.unpublishSlug(applied.renamedFrom, t.id);
      if (t && (applied.outcome === WebhookOutcome.Applied || applied.renamedFrom)) {
        // A write the cache refused (Redis down, or not connected yet) is left unmarked: the repair redoes it.
        if (await this.service.publishLocked(t, t.id === tenant?.id ? connection : null)) await this.tenants.markPublished(t.id, t.version, m);
      }
      return applied;
    });
    this.stored.set(be.id, true);
    if (!result) return duplicate;

    report({ event: 'stripe.webhook', id: be.id, type: be.type, subscriptionId, tenantId: result.tenant?.id, outcome: result.outcome }, 'stripe event processed');
    return { duplicate: false, outcome: result.outcome, tenantId: result.tenant?.id ?? null };
  }

  private async apply(be: BillingEvent, subscriptionId: string, signal: BillingSignal, found: Tenant | null, m: EntityManager): Promise<Applied> {
    const cause: Cause = { type: 'stripe_event', id: be.id };
    const terminal = signal.kind === 'status' && TERMINAL_STATUSES.includes(signal.status);
    let tenant = found;
    let changed = false;

    let renamedFrom: string | null = null;
    const created = !tenant;
    if (!tenant) {
      // Whichever event of a subscription comes first creates its one tenant (keyed by subscription id);
      // provisioning waits for payment, and briefly for the checkout that names the customer.
      // Not paid for yet: a placeholder slug, so abandoned payments reserve no name a paying customer wants.
      const paid = this.isPaid(be, signal);
      tenant = await this.service.create({
        name: be.naming.name ?? be.customerId ?? subscriptionId,
        slug: be.naming.slug,
        slugSource: be.naming.slugSource ?? be.customerId,
        slugFrom: !paid ? SlugSource.Unpaid : be.naming.source ? SLUG_SOURCES[be.naming.source] : SlugSource.Customer,
        tier: be.price ? this.tiers.tierForPrice(be.price.id, be.price.lookupKey) : null,
        stripeCustomerId: be.customerId,
        stripeSubscriptionId: subscriptionId,
        provisionAt: null,
      }, cause, m);
      changed = true;
    } else {
      changed = await this.fillIn(tenant, be, cause, m);
      // Not live yet and this event knows the customer better (a checkout after the subscription): re-choose the slug.
      if (be.naming.source && tenant.slugSource !== SlugSource.Unpaid) {
        renamedFrom = await this.service.renameBeforeLive(tenant, { slug: be.naming.slug, slugSource: be.naming.slugSource, name: tenant.name, slugFrom: SLUG_SOURCES[be.naming.source] }, cause, m);
        changed = changed || renamedFrom !== null;
      }
      // Cancellation is final whenever it arrives; anything else older than the newest applied event is late.
      const final = TERMINAL_STATUSES.includes(tenant.billingStatus ?? '') || tenant.status === TenantStatus.Deleted;
      // Same second as the newest applied event counts too: the order within a second is decided by content (orderHistory).
      const stale = !terminal && tenant.lastEventCreated !== null && be.created <= tenant.lastEventCreated;
      if (final) {
        // A paid event arriving after the cancellation still names a tenant created unpaid, as in-order delivery would have.
        renamedFrom = (await this.claimSlugWhenPaid(tenant, be, signal, subscriptionId, cause, m)) ?? renamedFrom;
        if (changed || renamedFrom) await this.tenants.save(tenant, m);
        return { outcome: WebhookOutcome.Final, tenant, renamedFrom };
      }
      if (stale) {
        const replayed = await this.replay(tenant, subscriptionId, cause, m);
        changed = replayed.changed || changed;
        // A status event counts with the status the whole history ends in; other events as themselves.
        const effective: BillingSignal = signal.kind === 'status' ? { kind: 'status', status: replayed.status ?? signal.status } : signal;
        renamedFrom = (await this.claimSlugWhenPaid(tenant, be, effective, subscriptionId, cause, m)) ?? renamedFrom;
        changed = (await this.startProvisioningWhenPaid(tenant, be, effective, m)) || renamedFrom !== null || changed;
        await this.tenants.save(tenant, m);
        const older = be.created < (tenant.lastEventCreated as number);
        return { outcome: changed ? WebhookOutcome.Applied : older ? WebhookOutcome.Stale : WebhookOutcome.Unchanged, tenant, renamedFrom };
      }
      // Only subscription snapshots change the plan (an invoice line may be a proration of the old one). A
      // cancellation's snapshot too, without reconfiguring, so every delivery order ends on the same tier.
      if (be.price && signal.kind === 'status') changed = (await this.changeTier(tenant, be.price, cause, m, !terminal)) || changed;
    }

    changed = (await this.applySignal(tenant, be, signal, cause, m)) || changed;
    renamedFrom = (await this.claimSlugWhenPaid(tenant, be, signal, subscriptionId, cause, m)) ?? renamedFrom;
    changed = (await this.startProvisioningWhenPaid(tenant, be, signal, m, created)) || renamedFrom !== null || changed;
    if (tenant.lastEventCreated === null || be.created > tenant.lastEventCreated) tenant.lastEventCreated = be.created;
    await this.tenants.save(tenant, m);
    return { outcome: changed ? WebhookOutcome.Applied : WebhookOutcome.Unchanged, tenant, renamedFrom };
  }

  /**
   * A pending tenant gets its provisioning job once the subscription is paid for (BILLING_PROVISION_ON),
   * at once if the slug is final (a checkout named the customer, or a tenant_slug was requested), else
   * after BILLING_CHECKOUT_WAIT_SECONDS (the checkout usually follows the subscription within seconds).
   * A checkout arriving while a held job waits starts it now.
   */
  private async startProvisioningWhenPaid(tenant: Tenant, be: BillingEvent, signal: BillingSignal, m: EntityManager, created = false): Promise<boolean> {
    const paid = this.isPaid(be, signal);
    // Paused before it was ever provisioned (the pause arrived before the events that paid for it):
    // in-order delivery provisions it and then suspends it, so it gets its database now and stays
    // suspended (ProvisionHandler leaves a suspended tenant suspended). Not after a cancellation.
    if (tenant.status === TenantStatus.Suspended && paid && tenant.suspendedBy === SuspendedBy.Billing && tenant.suspendCause === SuspendCause.SubscriptionPaused) {
      return !(await this.tenants.findConnection(tenant.id, m)) && (await this.service.enqueueProvision(tenant.id, m, this.now())) !== null;
    }
    if (tenant.status !== TenantStatus.Pending) return false;
    const final = signal.kind === 'checkout' || tenant.slugSource === SlugSource.Requested;
    if (!paid) {
      // A checkout of a subscription already paid for: the name is final now, start a held job.
      if (final) return (await this.jobs.reschedule(tenant.id, JobType.Provision, this.now(), m)) > 0;
      return false;
    }
    const at = final ? this.now() : new Date(this.now().getTime() + this.config.BILLING_CHECKOUT_WAIT_SECONDS * 1000);
    // A tenant created by this event has no job yet: its first one is enqueued without waiting for the answer.
    if (await this.service.enqueueProvision(tenant.id, m, at, created)) return true;
    return final ? (await this.jobs.reschedule(tenant.id, JobType.Provision, at, m)) > 0 : false;
  }

  /** This event says the subscription is paid for (or, with BILLING_PROVISION_ON=subscription, exists and is not over). */
  private isPaid(be: BillingEvent, signal: BillingSignal): boolean {
    return (
      (signal.kind === 'status' && (PAID_STATUSES.includes(signal.status) || (this.config.BILLING_PROVISION_ON === 'subscription' && !TERMINAL_STATUSES.includes(signal.status)))) ||
      signal.kind === 'payment_succeeded' ||
      (signal.kind === 'checkout' && (be.paid === true || this.config.BILLING_PROVISION_ON === 'subscription'))
    );
  }

  /**
   * The first paid event of a tenant created unpaid gives it its real slug, from the best naming any
   * stored event of the subscription carries (this one included), so delivery order does not matter.
   * Returns the placeholder slug it replaced.
   */
  private async claimSlugWhenPaid(tenant: Tenant, be: BillingEvent, signal: BillingSignal, subscriptionId: string, cause: Cause, m: EntityManager): Promise<string | null> {
    if (tenant.slugSource !== SlugSource.Unpaid || !this.isPaid(be, signal)) return null;
    // Never live under the placeholder: pending, or suspended (a cancellation that came first) without a database.
    const notLive = tenant.status === TenantStatus.Pending || (tenant.status === TenantStatus.Suspended && !(await this.tenants.findConnection(tenant.id, m)));
    if (!notLive) return null;
    let best: Naming = be.naming;
    for (const p of await this.events.historyOf(subscriptionId, m)) {
      const n = readBillingEvent(parseStripeEvent(p)).naming;
      if (n.source && (!best.source || NAMING_RANK[n.source] > NAMING_RANK[best.source])) best = n;
    }
    const input = best.source
      ? { slug: best.slug, slugSource: best.slugSource, slugFrom: SLUG_SOURCES[best.source] }
      : { slug: null, slugSource: tenant.stripeCustomerId ?? subscriptionId, slugFrom: SlugSource.Customer };
    return this.service.renameBeforeLive(tenant, { ...input, name: tenant.name }, cause, m, { notLive: true });
  }

  /** Facts a later event may complete without rolling anything back: the customer id, a real name. */
  private async fillIn(tenant: Tenant, be: BillingEvent, cause: Cause, m: EntityManager): Promise<boolean> {
    let changed = false;
    if (!tenant.stripeCustomerId && be.customerId) {
      tenant.stripeCustomerId = be.customerId;
      changed = true;
    }
    // Created from a subscription that only knew the customer id: checkout brings the customer's name.
    if (be.signal?.kind === 'checkout' && be.naming.name && tenant.name === tenant.stripeCustomerId && be.naming.name !== tenant.name) {
      await this.tenants.audit({ tenantId: tenant.id, action: 'renamed', causeType: cause.type, causeId: cause.id, detail: { from: tenant.name, to: be.naming.name } }, m);
      tenant.name = be.naming.name.slice(0, 200);
      changed = true;
    }
    return changed;
  }

  /**
   * A late event: an older one must not roll the tenant back, yet it may matter (a resume that arrives
   * after a newer failed payment; the first failure of a past-due stretch after a retry). Replays the
   * subscription's stored events, this one included, in `created` order and brings the tenant to where
   * in-order delivery would have left it. Cancellation never gets here (it is final whenever it arrives).
   */
  private async replay(tenant: Tenant, subscriptionId: string, cause: Cause, m: EntityManager): Promise<{ changed: boolean; status: string | null }> {
    const payloads = await this.events.historyOf(subscriptionId, m);
    const h = replayBillingHistory(orderHistory(payloads.map((p) => readBillingEvent(parseStripeEvent(p)))));
    const before = billingState(tenant);
    const tierChanged = h.price ? await this.changeTier(tenant, h.price, cause, m, true) : false;
    tenant.billingStatus = h.billingStatus;
    tenant.pastDueSince = h.pastDueSince === null ? null : new Date(h.pastDueSince * 1000);
    if (h.paused) {
      await this.suspend(tenant, BILLING_SUSPENSIONS.paused, cause, m);
    } else if (isBillingSuspension(tenant)) {
      // Lift what in-order delivery would have lifted: a pause that was resumed, a payment suspension that was paid.
      const lifted = tenant.suspendCause === SuspendCause.SubscriptionPaused || (isPaymentSuspension(tenant) && !PAST_DUE_STATUSES.includes(h.billingStatus ?? ''));
      if (lifted) await this.service.resume(tenant, cause, m);
    }
    return { changed: tierChanged || before !== billingState(tenant), status: h.billingStatus };
  }

  /** A plan change: record it and re-run provisioning with the new tier (as the admin API's PATCH does). */
  private async changeTier(tenant: Tenant, price: NonNullable<BillingEvent['price']>, cause: Cause, m: EntityManager, reconfigure: boolean): Promise<boolean> {
    const tier = this.tiers.tierForPrice(price.id, price.lookupKey);
    if (tier === tenant.tier) return false;
    await this.tenants.audit({ tenantId: tenant.id, action: 'tier_changed', causeType: cause.type, causeId: cause.id, detail: { from: tenant.tier, to: tier, priceId: price.id, lookupKey: price.lookupKey } }, m);
    tenant.tier = tier;
    // Pending/provisioning tenants pick the tier up when their provisioning job runs.
    if (reconfigure && (tenant.status === TenantStatus.Active || tenant.status === TenantStatus.Suspended)) {
      await this.jobs.enqueue({ type: JobType.Provision, tenantId: tenant.id, payload: { operation: `reconfigure:${tenant.version + 1}` }, dedupeKey: `reconfigure:${tenant.id}` }, m);
    }
    return true;
  }

  /** The event's billing facts onto the tenant (nextBillingFacts), then what they mean for its lifecycle. */
  private async applySignal(tenant: Tenant, be: BillingEvent, signal: BillingSignal, cause: Cause, m: EntityManager): Promise<boolean> {
    const before = billingState(tenant);
    const was: BillingFacts = { ...NO_BILLING_FACTS, billingStatus: tenant.billingStatus, pastDueSince: tenant.pastDueSince ? Math.floor(tenant.pastDueSince.getTime() / 1000) : null };
    const next = nextBillingFacts(was, be);
    tenant.billingStatus = next.billingStatus;
    if (next.pastDueSince !== was.pastDueSince) tenant.pastDueSince = next.pastDueSince === null ? null : new Date(next.pastDueSince * 1000);
    if (signal.kind === 'payment_succeeded') {
      if (isPaymentSuspension(tenant)) await this.service.resume(tenant, cause, m);
    } else if (signal.kind === 'status') {
      if (GOOD_STANDING_STATUSES.includes(signal.status)) {
        if (isBillingSuspension(tenant)) await this.service.resume(tenant, cause, m);
      } else if (next.paused) {
        await this.suspend(tenant, BILLING_SUSPENSIONS.paused, cause, m);
      } else if (next.canceled) {
        await this.cancel(tenant, cause, m, signal.status === 'incomplete_expired');
      }
    }
    return before !== billingState(tenant);
  }

  /**
   * Suspends for a billing reason. Already suspended by billing: the newer billing reason replaces the
   * old one (so a cancellation is not lifted like a pause). Suspended by an admin: left alone.
   */
  private async suspend(tenant: Tenant, s: BillingSuspension, cause: Cause, m: EntityManager): Promise<void> {
    if (tenant.status !== TenantStatus.Suspended) {
      await this.service.suspend(tenant, cause, s.reason, m, { by: SuspendedBy.Billing, cause: s.cause });
      return;
    }
    if (!isBillingSuspension(tenant) || tenant.suspendCause === s.cause) return;
    await this.tenants.audit({ tenantId: tenant.id, action: 'suspend_reason_changed', causeType: cause.type, causeId: cause.id, detail: { from: tenant.suspendCause, to: s.cause } }, m);
    Object.assign(tenant, { suspendCause: s.cause, suspendReason: s.reason });
  }

  /** Suspend now; offboard after the retention period (an admin can cancel or expedite it). */
  private async cancel(tenant: Tenant, cause: Cause, m: EntityManager, neverPaid = false): Promise<void> {
    tenant.pastDueSince = null;
    if (tenant.status === TenantStatus.Deprovisioning) return;
    // An abandoned payment (incomplete_expired) never got a database: offboard now, freeing its slug.
    if (neverPaid && !(await this.tenants.findConnection(tenant.id, m))) {
      await this.service.startOffboarding(tenant, cause, m);
      return;
    }
    await this.suspend(tenant, BILLING_SUSPENSIONS.canceled, cause, m);
    // Never provisioned: do not build a database nobody pays for (an admin resume re-enqueues it).
    if (!(await this.tenants.findConnection(tenant.id, m))) await this.jobs.cancelOpen(tenant.id, JobType.Provision, m);
    if (!tenant.offboardAt) {
      const at = new Date(this.now().getTime() + this.config.OFFBOARD_RETENTION_DAYS * 86_400_000);
      await this.service.scheduleOffboarding(tenant, at, cause, m, true);
    }
  }
}
