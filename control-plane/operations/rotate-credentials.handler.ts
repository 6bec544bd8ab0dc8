import { Inject, Injectable } from '@nestjs/common';
import type { ProvisioningDriver } from '../../provisioning/provisioning-driver';
import { PROVISIONING_DRIVER } from '../common/tokens';
import { JobContext, JobHandler } from '../jobs/job-handler';
import { JobRepository } from '../jobs/job.repository';
import { TenantRepository } from '../tenants/tenant.repository';
import { TenantService } from '../tenants/tenant.service';
import { TierCatalog } from '../tenants/tier-catalog';
import { recordedStepContext } from './step-context';

/** New password → secret store → database; then a new directory revision so runtimes reconnect. */
@Injectable()
export class RotateCredentialsHandler implements JobHandler {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly service: TenantService,
    private readonly jobs: JobRepository,
    private readonly tiers: TierCatalog,
    @Inject(PROVISIONING_DRIVER) private readonly driver: ProvisioningDriver,
  ) {}

  async run({ job, log, signal }: JobContext): Promise<void> {
    const tenant = await this.tenants.findById(job.tenantId as string);
    const connection = tenant ? await this.tenants.findConnection(tenant.id) : null;
    if (!tenant || !connection) {
      log('tenant has no database: nothing to rotate');
      return;
    }
    const operation = `rotate:${job.id}`;
    const ctx = await recordedStepContext(this.jobs, { id: tenant.id, slug: tenant.slug, tier: this.tiers.settings(tenant.tier), region: tenant.region }, operation, log, signal);
    await this.driver.rotateCredentials(ctx, connection);
    await this.tenants.markRotated(tenant.id);
    await this.tenants.audit({ tenantId: tenant.id, action: 'credentials_rotated', causeType: 'system', causeId: `job:${job.id}` });
    await this.service.publish((await this.tenants.findById(tenant.id)) ?? tenant);
    await this.jobs.clearSteps(tenant.id, operation);
  }
}
