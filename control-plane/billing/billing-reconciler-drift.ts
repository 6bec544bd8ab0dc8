import { SuspendedBy, TenantStatus } from '../tenants/tenant-status';
import { GOOD_STANDING_STATUSES } from './billing-history';
import { TERMINAL_STATUSES } from './stripe-event';

/** How a tenant differs from its Stripe subscription. */
export enum BillingDriftKind {
  /** Stripe has a paid (or trialing, past-due, paused) subscription and Silo no tenant for it: every webhook of it was lost. */
  MissingTenant = 'missing_tenant',
  /** Stripe canceled the subscription; the tenant is still billed as live. */
  SubscriptionCanceled = 'subscription_canceled',
  /** The billing status Silo recorded is not Stripe's (a lost update, payment or pause). */
  StatusMismatch = 'status_mismatch',
  /** The tenant's tier is not the one the subscription's price buys. */
  TierMismatch = 'tier_mismatch',
  /** Stripe says the subscription is in good standing; billing suspended the tenant. */
  SuspendedByBilling = 'suspended_by_billing',
  /** Stripe does not know the tenant's subscription (deleted, another account, test vs live mode). Report only. */
  UnknownSubscription = 'unknown_subscription',
  /** A live subscription whose tenant Silo already canceled, offboarded or deleted. Report only: cancellation is final. */
  TenantEnded = 'tenant_ended',
  /** A subscription in good standing whose tenant an admin or the system suspended, or that failed. Report only: an admin decides. */
  TenantHeld = 'tenant_held',
}

/** Differences a replay of Stripe's current state through the webhook rules repairs; the others are only reported. */
export const REPAIRABLE_DRIFT: readonly BillingDriftKind[] = [
  BillingDriftKind.MissingTenant, BillingDriftKind.SubscriptionCanceled, BillingDriftKind.StatusMismatch, BillingDriftKind.TierMismatch, BillingDriftKind.SuspendedByBilling,
];

/** What the reconciler read of one subscription, reduced to what is compared. */
export interface StripeSubscriptionFacts {
  status: string;
  /** The tier its first item's price buys (TierCatalog.tierForPrice). */
  tier: string;
}

/** The tenant's billing as Silo holds it. */
export interface TenantBillingFacts {
  status: TenantStatus;
  billingStatus: string | null;
  tier: string;
  suspendedBy: SuspendedBy | null;
}

export interface DriftPolicy {
  /** BILLING_PROVISION_ON: with `subscription`, an `incomplete` subscription has a tenant too. */
  provisionOn: 'payment' | 'subscription';
}

/** Statuses of a subscription a tenant should exist for. */
const PAID_STATUSES: readonly string[] = ['active', 'trialing', 'past_due', 'unpaid', 'paused'];
const ENDED: readonly TenantStatus[] = [TenantStatus.Deprovisioning, TenantStatus.Deleted];

/**
 * The differences between a Stripe subscription (null: Stripe does not know it) and its tenant
 * (null: none). Pure. Mirrors the webhook rules: a canceled tenant stays canceled, an admin's
 * suspension stays, a pending tenant waiting for payment or its checkout is not a difference.
 */
export function billingDrift(sub: StripeSubscriptionFacts | null, tenant: TenantBillingFacts | null, policy: DriftPolicy): BillingDriftKind[] {
  if (!sub) return tenant && !ENDED.includes(tenant.status) ? [BillingDriftKind.UnknownSubscription] : [];
  const stripeEnded = TERMINAL_STATUSES.includes(sub.status);
  const shouldExist = PAID_STATUSES.includes(sub.status) || (policy.provisionOn === 'subscription' && sub.status === 'incomplete');
  if (!tenant) return shouldExist ? [BillingDriftKind.MissingTenant] : [];

  const tenantEnded = ENDED.includes(tenant.status) || TERMINAL_STATUSES.includes(tenant.billingStatus ?? '');
  if (tenantEnded) return stripeEnded || !shouldExist ? [] : [BillingDriftKind.TenantEnded];
  if (stripeEnded) return [BillingDriftKind.SubscriptionCanceled];

  const drift: BillingDriftKind[] = [];
  if (tenant.billingStatus !== sub.status) drift.push(BillingDriftKind.StatusMismatch);
  if (tenant.tier !== sub.tier) drift.push(BillingDriftKind.TierMismatch);
  if (GOOD_STANDING_STATUSES.includes(sub.status)) {
    if (tenant.status === TenantStatus.Suspended && tenant.suspendedBy === SuspendedBy.Billing) drift.push(BillingDriftKind.SuspendedByBilling);
    else if (tenant.status === TenantStatus.Failed || tenant.status === TenantStatus.Suspended) drift.push(BillingDriftKind.TenantHeld);
  }
  return drift;
}
