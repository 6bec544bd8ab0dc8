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

const S = TenantStatus;

/** Allowed transitions. `deleted` is final; `failed` is retryable back into `provisioning`. */
export const TENANT_TRANSITIONS: Readonly<Record<TenantStatus, readonly TenantStatus[]>> = {
  [S.Pending]: [S.Provisioning, S.Suspended, S.Deprovisioning],
  [S.Provisioning]: [S.Active, S.Failed, S.Suspended, S.Deprovisioning],
  [S.Active]: [S.Suspended, S.Deprovisioning],
  [S.Suspended]: [S.Active, S.Deprovisioning, S.Provisioning],
  [S.Failed]: [S.Provisioning, S.Deprovisioning],
  [S.Deprovisioning]: [S.Deleted, S.Failed],
  [S.Deleted]: [],
};

export function canTransition(from: TenantStatus, to: TenantStatus): boolean {
  return TENANT_TRANSITIONS[from].includes(to);
}

export function assertTransition(from: TenantStatus, to: TenantStatus): void {
  if (!canTransition(from, to)) {
    throw new SiloError(ErrorCode.INVALID_TRANSITION, `A tenant cannot go from ${from} to ${to}`, 409, { from, to });
  }
}
