import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

/** Tenant lifecycle states: the only place they are declared. */
export enum TenantStatus {
  Pending = 'pending',
  Provisioning = 'provisioning',
  Active = 'active',
  Suspended = 'suspended',
  Failed = 'failed',
  Deprovisioning = 'deprovisioning',
  Deleted = 'deleted',
}

/** Who suspended a tenant. Billing events lift only billing's suspensions; an admin's stays until an admin resumes it. */
export enum SuspendedBy {
  Billing = 'billing',
  Admin = 'admin',
  System = 'system',
}

/** Why, as data (the free-text `suspendReason` is for people). */
export enum SuspendCause {
  SubscriptionPaused = 'subscription_paused',
  SubscriptionCanceled = 'subscription_canceled',
  PaymentPastDue = 'payment_past_due',
  PaymentUnpaid = 'payment_unpaid',
  Admin = 'admin',
  DatabaseMissing = 'database_missing',
}

export interface Suspension {
  by: SuspendedBy;
  cause: SuspendCause;
}

/** Suspensions for missing payment: what a paid invoice lifts. */
export const PAYMENT_SUSPENSIONS: readonly SuspendCause[] = [SuspendCause.PaymentPastDue, SuspendCause.PaymentUnpaid];

/** Where a tenant's slug came from, best first: billing may rename a tenant not yet live when a later event knows better. */
export enum SlugSource {
  Requested = 'requested',
  Name = 'name',
  Email = 'email',
  Customer = 'customer',
  /** Created through the admin API: never renamed by billing. */
  Admin = 'admin',
  /**
   * Billing created it before the subscription was paid for: a random `pending-…` slug that reserves
   * nothing a paying customer might want; the real slug is chosen when payment arrives.
   */
  Unpaid = 'unpaid',
}

/** The operation a `failed` tenant failed in: an admin retry repeats that operation. */
export enum FailedDuring {
  Provisioning = 'provisioning',
  Offboarding = 'offboarding',
}

const S = TenantStatus;

/**
 * Allowed transitions. `deleted` is final; `failed` is retryable back into `provisioning`.
 * `deprovisioning → suspended` and `failed → suspended` are an admin cancelling an offboarding
 * (TenantAdminService.cancelOffboarding) before the data is gone; never a suspension (see canSuspend).
 */
export const TENANT_TRANSITIONS: Readonly<Record<TenantStatus, readonly TenantStatus[]>> = {
  [S.Pending]: [S.Provisioning, S.Suspended, S.Deprovisioning],
  [S.Provisioning]: [S.Active, S.Failed, S.Suspended, S.Deprovisioning],
  [S.Active]: [S.Suspended, S.Deprovisioning],
  [S.Suspended]: [S.Active, S.Deprovisioning, S.Provisioning],
  [S.Failed]: [S.Provisioning, S.Deprovisioning, S.Suspended],
  [S.Deprovisioning]: [S.Deleted, S.Failed, S.Suspended],
  [S.Deleted]: [],
};

/** States whose way to `suspended` is only a cancelled offboarding: billing, grace periods and admin suspends leave them alone. */
export const SUSPENDED_ONLY_BY_CANCEL: readonly TenantStatus[] = [S.Failed, S.Deprovisioning];

/** Whether a suspension (billing, grace period, admin) may move a tenant in `from` to `suspended`. */
export function canSuspend(from: TenantStatus): boolean {
  return canTransition(from, S.Suspended) && !SUSPENDED_ONLY_BY_CANCEL.includes(from);
}

/**
 * Whether the retention sweep may start a due offboarding. Not for a tenant whose offboarding
 * failed: it stays `failed` until an admin retries or cancels (else the sweep restarts it forever).
 */
export function sweepMayOffboard(t: { status: TenantStatus; failedDuring: FailedDuring | null }): boolean {
  if (t.status === S.Failed) return t.failedDuring !== FailedDuring.Offboarding;
  return OFFBOARDABLE_BY_SWEEP.includes(t.status);
}

/** States a due `offboard_at` moves into `deprovisioning` (failed ones only if not failed during offboarding). */
export const OFFBOARDABLE_BY_SWEEP: readonly TenantStatus[] = [S.Pending, S.Active, S.Suspended, S.Failed];

export function canTransition(from: TenantStatus, to: TenantStatus): boolean {
  return TENANT_TRANSITIONS[from].includes(to);
}

export function assertTransition(from: TenantStatus, to: TenantStatus): void {
  if (!canTransition(from, to)) {
    throw new SiloError(ErrorCode.INVALID_TRANSITION, `A tenant cannot go from ${from} to ${to}`, 409, { from, to });
  }
}
