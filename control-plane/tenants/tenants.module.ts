import { Module } from '@nestjs/common';
import { JobHandler } from '../jobs/job-handler';
import { JobType } from '../jobs/job.entity';
import { JOB_HANDLERS } from '../jobs/job-handlers.token';
import { JobRepository } from '../jobs/job.repository';
import { JobWorker } from '../jobs/job-worker';
import { PeriodicRunner } from '../jobs/periodic-runner';
import { PeriodicTaskRepository } from '../jobs/periodic-task.repository';
import { PeriodicTasksController } from '../jobs/periodic-tasks.controller';
import { DeprovisionHandler } from '../operations/deprovision.handler';
import { ProvisionHandler } from '../operations/provision.handler';
import { ReconcilerService } from '../operations/reconciler.service';
import { RotateCredentialsHandler } from '../operations/rotate-credentials.handler';
import { StorageQuotaService } from './storage-quota.service';
import { TenantAdminService } from './tenant-admin.service';
import { TenantStorageRepository } from './tenant-storage.repository';
import { TenantRepository } from './tenant.repository';
import { TenantService } from './tenant.service';
import { TenantsController } from './tenants.controller';
import { TierCatalog } from './tier-catalog';

/** Tenant lifecycle: the state machine, admin API, job queue and the operations it runs. */
@Module({
  controllers: [TenantsController, PeriodicTasksController],
  providers: [
    TenantRepository, TenantService, TenantAdminService, TierCatalog, JobRepository, JobWorker, PeriodicTaskRepository, PeriodicRunner,
    ProvisionHandler, DeprovisionHandler, RotateCredentialsHandler, ReconcilerService, TenantStorageRepository, StorageQuotaService,
    {
      provide: JOB_HANDLERS,
      inject: [ProvisionHandler, DeprovisionHandler, RotateCredentialsHandler],
      useFactory: (p: ProvisionHandler, d: DeprovisionHandler, r: RotateCredentialsHandler) =>
        new Map<JobType, JobHandler>([[JobType.Provision, p], [JobType.Deprovision, d], [JobType.RotateCredentials, r]]),
    },
  ],
  exports: [TenantRepository, TenantService, TierCatalog, JobRepository, JobWorker, PeriodicRunner, ReconcilerService, StorageQuotaService],
})
export class TenantsModule {}
