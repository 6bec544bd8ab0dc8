import { canSuspend, canTransition, FailedDuring, sweepMayOffboard, TenantStatus as S } from './tenant-status';

describe('tenant state machine: offboarding cancel and the retention sweep', () => {
  it('lets a cancelled offboarding return deprovisioning and failed tenants to suspended', () => {
    expect(canTransition(S.Deprovisioning, S.Suspended)).toBe(true);
    expect(canTransition(S.Failed, S.Suspended)).toBe(true);
    expect(canTransition(S.Deleted, S.Suspended)).toBe(false);
  });

  it('never lets a suspension take a deprovisioning or failed tenant (only a cancel does)', () => {
    expect(canSuspend(S.Deprovisioning)).toBe(false);
    expect(canSuspend(S.Failed)).toBe(false);
    expect(canSuspend(S.Deleted)).toBe(false);
    for (const s of [S.Pending, S.Provisioning, S.Active]) expect(canSuspend(s)).toBe(true);
  });

  it('the sweep starts due offboardings, except for a tenant whose offboarding failed', () => {
    expect(sweepMayOffboard({ status: S.Failed, failedDuring: FailedDuring.Offboarding })).toBe(false);
    expect(sweepMayOffboard({ status: S.Failed, failedDuring: FailedDuring.Provisioning })).toBe(true);
    expect(sweepMayOffboard({ status: S.Failed, failedDuring: null })).toBe(true);
    for (const s of [S.Pending, S.Active, S.Suspended]) expect(sweepMayOffboard({ status: s, failedDuring: null })).toBe(true);
    for (const s of [S.Provisioning, S.Deprovisioning, S.Deleted]) expect(sweepMayOffboard({ status: s, failedDuring: null })).toBe(false);
  });
});
