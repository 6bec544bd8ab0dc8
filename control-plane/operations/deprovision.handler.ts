import { Inject, Injectable } from '@nestjs/common';
import type { DriverContext, ProvisioningDriver } from '../../provisioning/provisioning-driver';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, PROVISIONING_DRIVER } from '../common/tokens';
import { JobContext, JobHandler } from '../jobs/job-handler';
import { Job } from '../jobs/job.entity';
import { JobRepository } from '../jobs/job.repository';
import { TenantRepository } from '../tenants/tenant.repository';
import { TenantService } from '../tenants/tenant.service';
import { FailedDuring, TenantStatus } from '../tenants/tenant-status';
import { TierCatalog } from '../tenants/tier-catalog';
import { DEPROVISION_OPERATION, isReversibleDeprovisionStep, POINT_OF_NO_RETURN } from './deprovision-steps';
import { recordedStepContext } from './step-context';

class OffboardingCancelled extends Error {}

/** deprovisioning → deleted: export, drop, delete secret, unpublish, revoke keys. */
@Injectable()
export class DeprovisionHandler implements JobHandler {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly service: TenantService,
    private readonly jobs: JobRepository,
    private readonly tiers: TierCatalog,
    @Inject(PROVISIONING_DRIVER) private readonly driver: ProvisioningDriver,
    @Inject(CONFIG) private readonly config: ControlPlaneConfig,
  ) {}

  async run({ job, log, signal }: JobContext): Promise<void> {
    const tenant = await this.tenants.findById(job.tenantId as string);
    if (!tenant || tenant.status !== TenantStatus.Deprovisioning) {
      log(`tenant is ${tenant?.status ?? 'gone'}: nothing to offboard`);
      return;
    }
    // Stop routing first: replicas drop the tenant before its database disappears.
    await this.service.publish(tenant);
    const connection = await this.tenants.findConnection(tenant.id);
    const recorded = await recordedStepContext(this.jobs, { id: tenant.id, slug: tenant.slug, tier: this.tiers.settings(tenant.tier), region: tenant.region }, DEPROVISION_OPERATION, log, signal);
    // Before every step: stop if an admin cancelled meanwhile (the tenant left deprovisioning).
    const ctx: DriverContext = { ...recorded, step: async (name, fn) => (await this.checkpoint(tenant.id, name), recorded.step(name, fn)) };
    let exportLocation: string | null;
    try {
      ({ exportLocation } = await this.driver.deprovision(ctx, { exportDir: this.config.EXPORT_DIR, connection }));
    } catch (err) {
      if (!(err instanceof OffboardingCancelled)) throw err;
      // The cancel cleared the steps; one that finished since was recorded again. A later offboarding starts afresh.
      await this.jobs.clearSteps(tenant.id, DEPROVISION_OPERATION);
      log(err.message);
      return;
    }

    await this.service.locked(tenant.id, async (t, m) => {
      if (t.status !== TenantStatus.Deprovisioning) return false;
      await this.tenants.deleteConnection(t.id, m);
      await this.tenants.revokeAllApiKeys(t.id, m);
      t.offboardAt = null;
      return this.service.transition(t, TenantStatus.Deleted, { type: 'system', id: `job:${job.id}` }, m, { exportLocation });
    });
  }

  /**
   * In the tenant's row lock: refuses to start `step` unless the tenant is still deprovisioning,
   * and marks the point of no return before an irreversible one. An admin cancel takes the same
   * lock, so it either sees the mark (and refuses) or this sees the cancel (and stops).
   */
  private async checkpoint(tenantId: string, step: string): Promise<void> {
    await this.tenants.transaction(async (m) => {
      const t = await this.tenants.findById(tenantId, m, true);
      if (t?.status !== TenantStatus.Deprovisioning) throw new OffboardingCancelled(`tenant is ${t?.status ?? 'gone'}: offboarding cancelled before step ${step}`);
      if (!isReversibleDeprovisionStep(step)) await this.jobs.recordStep(tenantId, DEPROVISION_OPERATION, POINT_OF_NO_RETURN, step, m);
    });
  }

  async onExhausted(job: Job, error: Error): Promise<void> {
    await this.service.locked(job.tenantId as string, async (t, m) => {
      if (t.status !== TenantStatus.Deprovisioning) return false;
      t.failureReason = `offboarding: ${error.message}`.slice(0, 500);
      t.failedDuring = FailedDuring.Offboarding;
      return this.service.transition(t, TenantStatus.Failed, { type: 'system', id: `job:${job.id}` }, m, { reason: t.failureReason, operation: 'deprovision' });
    });
  }
}
