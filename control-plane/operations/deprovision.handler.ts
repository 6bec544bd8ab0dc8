import { Inject, Injectable } from '@nestjs/common';
import type { ProvisioningDriver } from '../../provisioning/provisioning-driver';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, PROVISIONING_DRIVER } from '../common/tokens';
import { JobContext, JobHandler } from '../jobs/job-handler';
import { Job } from '../jobs/job.entity';
import { JobRepository } from '../jobs/job.repository';
import { TenantRepository } from '../tenants/tenant.repository';
import { TenantService } from '../tenants/tenant.service';
import { FailedDuring, TenantStatus } from '../tenants/tenant-status';
import { TierCatalog } from '../tenants/tier-catalog';
import { recordedStepContext } from './step-context';

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
    const ctx = await recordedStepContext(this.jobs, { id: tenant.id, slug: tenant.slug, tier: this.tiers.settings(tenant.tier), region: tenant.region }, 'deprovision', log, signal);
    const { exportLocation } = await this.driver.deprovision(ctx, { exportDir: this.config.EXPORT_DIR, connection });

    await this.service.locked(tenant.id, async (t, m) => {
      if (t.status !== TenantStatus.Deprovisioning) return false;
      await this.tenants.deleteConnection(t.id, m);
      await this.tenants.revokeAllApiKeys(t.id, m);
      t.offboardAt = null;
      return this.service.transition(t, TenantStatus.Deleted, { type: 'system', id: `job:${job.id}` }, m, { exportLocation });
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
