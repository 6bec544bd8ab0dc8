import { SuspendedBy, TenantStatus } from '../tenants/tenant-status';
import { BillingDriftKind as K, billingDrift, TenantBillingFacts } from './billing-reconciler-drift';

const payment = { provisionOn: 'payment' } as const;
const live: TenantBillingFacts = { status: TenantStatus.Active, billingStatus: 'active', tier: 'pro', suspendedBy: null };
const sub = (status: string, tier = 'pro') => ({ status, tier });

describe('billingDrift', () => {
  it('a subscription without a tenant is missing one only when a tenant should exist (paid, or incomplete with BILLING_PROVISION_ON=subscription)', () => {
    for (const s of ['active', 'trialing', 'past_due', 'unpaid', 'paused']) expect(billingDrift(sub(s), null, payment)).toEqual([K.MissingTenant]);
    for (const s of ['incomplete', 'canceled', 'incomplete_expired']) expect(billingDrift(sub(s), null, payment)).toEqual([]);
    expect(billingDrift(sub('incomplete'), null, { provisionOn: 'subscription' })).toEqual([K.MissingTenant]);
  });

  it('matching state is no difference; status and tier are compared separately', () => {
    expect(billingDrift(sub('active'), live, payment)).toEqual([]);
    expect(billingDrift(sub('past_due'), live, payment)).toEqual([K.StatusMismatch]);
    expect(billingDrift(sub('active', 'enterprise'), live, payment)).toEqual([K.TierMismatch]);
    expect(billingDrift(sub('past_due', 'starter'), live, payment)).toEqual([K.StatusMismatch, K.TierMismatch]);
  });

  it('a cancellation Stripe made is one difference whatever else differs; one Silo made is final (a live subscription is only reported)', () => {
    expect(billingDrift(sub('canceled', 'starter'), live, payment)).toEqual([K.SubscriptionCanceled]);
    const canceled = { ...live, status: TenantStatus.Suspended, billingStatus: 'canceled', suspendedBy: SuspendedBy.Billing };
    expect(billingDrift(sub('canceled', 'starter'), canceled, payment)).toEqual([]);
    expect(billingDrift(sub('active'), canceled, payment)).toEqual([K.TenantEnded]);
    expect(billingDrift(sub('active'), { ...live, status: TenantStatus.Deleted }, payment)).toEqual([K.TenantEnded]);
    expect(billingDrift(sub('incomplete'), { ...live, status: TenantStatus.Deleted, billingStatus: 'incomplete_expired' }, payment)).toEqual([]);
  });

  it('good standing lifts only billing\'s suspensions; an admin\'s or a failed tenant is reported', () => {
    const byBilling = { ...live, status: TenantStatus.Suspended, billingStatus: 'past_due', suspendedBy: SuspendedBy.Billing };
    expect(billingDrift(sub('active'), byBilling, payment)).toEqual([K.StatusMismatch, K.SuspendedByBilling]);
    expect(billingDrift(sub('active'), { ...live, status: TenantStatus.Suspended, suspendedBy: SuspendedBy.Admin }, payment)).toEqual([K.TenantHeld]);
    expect(billingDrift(sub('active'), { ...live, status: TenantStatus.Failed }, payment)).toEqual([K.TenantHeld]);
    // A tenant waiting for its provisioning is not a difference.
    expect(billingDrift(sub('active'), { ...live, status: TenantStatus.Pending }, payment)).toEqual([]);
  });

  it('a tenant whose subscription Stripe does not know is reported unless it is gone already', () => {
    expect(billingDrift(null, live, payment)).toEqual([K.UnknownSubscription]);
    expect(billingDrift(null, { ...live, status: TenantStatus.Deleted }, payment)).toEqual([]);
    expect(billingDrift(null, null, payment)).toEqual([]);
  });
});
