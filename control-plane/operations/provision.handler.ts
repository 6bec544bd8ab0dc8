import { Inject, Injectable, Optional } from '@nestjs/common';
import type { ProvisioningDriver, TenantConnectionInfo } from '../../provisioning/provisioning-driver';
import { PROVISIONING_DRIVER } from '../common/tokens';
import { JobContext, JobHandler } from '../jobs/job-handler';
import { Job } from '../jobs/job.entity';
import { JobRepository } from '../jobs/job.repository';
import { TenantRepository } from '../tenants/tenant.repository';
import { TenantService } from '../tenants/tenant.service';
import { FailedDuring, TenantStatus } from '../tenants/tenant-status';
import { TierCatalog } from '../tenants/tier-catalog';
import { recordedStepContext } from './step-context';
import { TENANT_SCHEMA_HOOK, TenantSchemaHook } from './tenant-schema-hook';

/** pending/failed → provisioning → active, in recorded idempotent steps. */
@Injectable()
export class ProvisionHandler implements JobHandler {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly service: TenantService,
    private readonly jobs: JobRepository,
    private readonly tiers: TierCatalog,
    @Inject(PROVISIONING_DRIVER) private readonly driver: ProvisioningDriver,
    @Optional() @Inject(TENANT_SCHEMA_HOOK) private readonly schema?: TenantSchemaHook,
  ) {}

  async run({ job, log, signal }: JobContext): Promise<void> {
    const cause = { type: 'system' as const, id: `job:${job.id}` };
    const current = await this.tenants.findById(job.tenantId as string);
    if (!current || current.status === TenantStatus.Deleted || current.status === TenantStatus.Deprovisioning) {
      log(`tenant is ${current?.status ?? 'gone'}: nothing to provision`);
      return;
    }
    await this.service.locked(current.id, async (t, m) =>
      t.status === TenantStatus.Pending || t.status === TenantStatus.Failed ? this.service.transition(t, TenantStatus.Provisioning, cause, m, { attempt: job.attempts }) : false,
    );

    // A tier change re-runs the same idempotent steps under a fresh operation name.
    const operation = typeof job.payload.operation === 'string' ? job.payload.operation : 'provision';
    const ctx = await recordedStepContext(this.jobs, { id: current.id, slug: current.slug, tier: this.tiers.settings(current.tier), region: current.region }, operation, log, signal);
    const connection: TenantConnectionInfo = await this.driver.provision(ctx);
    if (this.schema) await ctx.step('schema', async () => (await this.schema?.migrateTenant(current, connection), true));
    if (operation !== 'provision') await this.jobs.clearSteps(current.id, operation);

    await this.service.locked(current.id, async (t, m) => {
      if (t.status === TenantStatus.Deleted || t.status === TenantStatus.Deprovisioning) return false;
      await this.tenants.upsertConnection({ tenantId: t.id, driver: this.driver.name, ...connection }, m);
      Object.assign(t, { failureReason: null, failedDuring: null });
      if (t.status === TenantStatus.Provisioning) await this.service.transition(t, TenantStatus.Active, cause, m, { database: connection.database });
      else await this.tenants.save(t, m);
      return true; // republish: the directory entry now has a connection
    });
  }

  async onExhausted(job: Job, error: Error): Promise<void> {
    await this.service.locked(job.tenantId as string, async (t, m) => {
      if (t.status !== TenantStatus.Provisioning && t.status !== TenantStatus.Pending) return false;
      if (t.status === TenantStatus.Pending) await this.service.transition(t, TenantStatus.Provisioning, { type: 'system', id: `job:${job.id}` }, m);
      t.failureReason = error.message.slice(0, 500);
      t.failedDuring = FailedDuring.Provisioning;
      return this.service.transition(t, TenantStatus.Failed, { type: 'system', id: `job:${job.id}` }, m, { reason: t.failureReason, attempts: job.attempts });
    });
  }
}
