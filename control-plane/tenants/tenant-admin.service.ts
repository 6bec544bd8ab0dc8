import { Inject, Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { CLOCK } from '../common/tokens';
import { JobType } from '../jobs/job.entity';
import { JobRepository } from '../jobs/job.repository';
import { DEPROVISION_OPERATION, irreversibleStepDone, POINT_OF_NO_RETURN } from '../operations/deprovision-steps';
import { CreateTenantDto, OffboardDto, UpdateTenantDto } from './dto/tenant.dto';
import { TenantRepository } from './tenant.repository';
import { Cause, isUuid, TenantService } from './tenant.service';
import { canSuspend, FailedDuring, SuspendCause, SuspendedBy, TenantStatus } from './tenant-status';
import { Tenant } from './tenant.entity';
import { tenantNotFound } from './tenant.errors';
import { TierCatalog } from './tier-catalog';

const ADMIN: Cause = { type: 'admin', id: 'admin-api' };

/** Admin actions on one tenant. Each runs in a transaction on the row-locked tenant, then republishes it. */
@Injectable()
export class TenantAdminService {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly service: TenantService,
    private readonly jobs: JobRepository,
    private readonly tiers: TierCatalog,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {}

  async create(dto: CreateTenantDto, requestId?: string): Promise<Tenant> {
    if (dto.tier && !this.tiers.names().includes(dto.tier)) {
      throw new SiloError(ErrorCode.VALIDATION_FAILED, `Unknown tier ${dto.tier} (known: ${this.tiers.names().join(', ')})`, 400);
    }
    const tenant = await this.tenants.transaction((m) =>
      this.service.create({ name: dto.name, slug: dto.slug, slugSource: dto.name, tier: dto.tier, region: dto.region, strictSlug: true }, { type: 'admin', id: requestId ?? 'admin-api' }, m),
    );
    await this.service.publish(tenant);
    return tenant;
  }

  async update(ref: string, dto: UpdateTenantDto): Promise<Tenant> {
    if (dto.tier && !this.tiers.names().includes(dto.tier)) throw new SiloError(ErrorCode.VALIDATION_FAILED, `Unknown tier ${dto.tier}`, 400);
    return this.act(ref, async (t, m) => {
      let changed = false;
      if (dto.tier && dto.tier !== t.tier) {
        await this.tenants.audit({ tenantId: t.id, action: 'tier_changed', causeType: 'admin', causeId: ADMIN.id, detail: { from: t.tier, to: dto.tier } }, m);
        t.tier = dto.tier;
        if (t.status === TenantStatus.Active || t.status === TenantStatus.Suspended) {
          await this.jobs.enqueue({ type: JobType.Provision, tenantId: t.id, payload: { operation: `reconfigure:${t.version + 1}` }, dedupeKey: `reconfigure:${t.id}` }, m);
        }
        changed = true;
      }
      if (dto.customDomain !== undefined && dto.customDomain !== t.customDomain) {
        await this.tenants.audit({ tenantId: t.id, action: 'custom_domain_changed', causeType: 'admin', causeId: ADMIN.id, detail: { from: t.customDomain, to: dto.customDomain } }, m);
        t.customDomain = dto.customDomain ?? null;
        changed = true;
      }
      if (changed) await this.tenants.save(t, m);
      return changed;
    });
  }

  suspend(ref: string, reason?: string): Promise<Tenant> {
    return this.act(ref, (t, m) => {
      this.assert(t.status === TenantStatus.Suspended || canSuspend(t.status), t, TenantStatus.Suspended);
      // Without a reason, an admin suspension already in place keeps the reason it has.
      const kept = t.status === TenantStatus.Suspended && t.suspendedBy === SuspendedBy.Admin ? t.suspendReason : null;
      return this.service.suspend(t, ADMIN, reason ?? kept ?? 'suspended by an admin', m, { by: SuspendedBy.Admin, cause: SuspendCause.Admin });
    });
  }

  resume(ref: string): Promise<Tenant> {
    return this.act(ref, (t, m) => {
      this.assert(t.status === TenantStatus.Suspended || t.status === TenantStatus.Active, t, TenantStatus.Active);
      return this.service.resume(t, ADMIN, m);
    });
  }

  offboard(ref: string, dto: OffboardDto): Promise<Tenant> {
    const at = dto.at ? new Date(dto.at) : this.now();
    return this.act(ref, async (t, m) => {
      this.assert(t.status !== TenantStatus.Deleted, t, TenantStatus.Deprovisioning);
      await this.service.scheduleOffboarding(t, at, ADMIN, m, dto.force ?? false);
      return true;
    });
  }

  /**
   * Cancels an offboarding in any state but `deleted`: a scheduled one is unscheduled; a started
   * (`deprovisioning`) or failed one returns the tenant to `suspended` with its database, unless a
   * step that destroys data has started (then 409 OFFBOARDING_IRREVERSIBLE: only retry can finish).
   */
  cancelOffboarding(ref: string): Promise<Tenant> {
    return this.act(ref, async (t, m) => {
      if (t.status === TenantStatus.Deleted) throw new SiloError(ErrorCode.INVALID_TRANSITION, 'The tenant is deleted: nothing to cancel', 409);
      if (t.status === TenantStatus.Deprovisioning || (t.status === TenantStatus.Failed && t.failedDuring === FailedDuring.Offboarding)) {
        await this.stopOffboarding(t, m);
        return true;
      }
      await this.service.cancelOffboarding(t, ADMIN, m);
      return true;
    });
  }

  /**
   * deprovisioning/failed → suspended, in the tenant's row lock. The deprovision handler takes the
   * same lock before each step, so it stops at its next step; a queued job is cancelled here.
   */
  private async stopOffboarding(t: Tenant, m: EntityManager): Promise<void> {
    const recorded = await this.jobs.completedSteps(t.id, DEPROVISION_OPERATION, m);
    const gone = (recorded.get(POINT_OF_NO_RETURN) as string | undefined) ?? irreversibleStepDone(recorded.keys());
    if (gone) {
      throw new SiloError(ErrorCode.OFFBOARDING_IRREVERSIBLE,
        `The offboarding already started deleting the tenant's data (step ${gone}): it cannot be cancelled. ${t.status === TenantStatus.Failed ? 'Retry it to finish the deletion.' : 'If it fails, retry it to finish the deletion.'}`,
        409, { step: gone });
    }
    const cancelledJobs = await this.jobs.cancelOpen(t.id, JobType.Deprovision, m);
    await this.jobs.clearSteps(t.id, DEPROVISION_OPERATION, m);
    const from = t.status;
    // An earlier suspension (billing's, an admin's) stands; else the admin's cancel is the suspension.
    if (!t.suspendedBy) Object.assign(t, { suspendedBy: SuspendedBy.Admin, suspendCause: SuspendCause.Admin, suspendReason: 'offboarding cancelled' });
    Object.assign(t, { offboardAt: null, failureReason: null, failedDuring: null });
    await this.service.transition(t, TenantStatus.Suspended, ADMIN, m, { reason: 'offboarding cancelled', from, cancelledJobs });
    await this.tenants.audit({ tenantId: t.id, action: 'offboarding_cancelled', causeType: ADMIN.type, causeId: ADMIN.id, detail: { from, cancelledJobs } }, m);
    // Undo the reversible steps (logins blocked; AWS deletion protection) by converging the tenant again.
    if (await this.tenants.findConnection(t.id, m)) {
      await this.jobs.enqueue({ type: JobType.Provision, tenantId: t.id, payload: { operation: `reconfigure:${t.version + 1}` }, dedupeKey: `reconfigure:${t.id}` }, m);
    }
  }

  /** Retries whatever failed: provisioning, or an offboarding that failed part-way. */
  async retry(ref: string): Promise<Tenant> {
    return this.act(ref, async (t, m) => {
      if (t.status !== TenantStatus.Failed) throw new SiloError(ErrorCode.INVALID_TRANSITION, `Only failed tenants can be retried (tenant is ${t.status})`, 409);
      const offboarding = t.failedDuring === FailedDuring.Offboarding;
      Object.assign(t, { failureReason: null, failedDuring: null });
      if (offboarding) {
        await this.service.startOffboarding(t, ADMIN, m);
      } else {
        await this.service.transition(t, TenantStatus.Provisioning, ADMIN, m, { reason: 'admin retry' });
        await this.service.enqueueProvision(t.id, m);
      }
      return true;
    });
  }

  async rotateCredentials(ref: string): Promise<{ jobId: string | null }> {
    const t = await this.service.get(ref);
    if (t.status !== TenantStatus.Active && t.status !== TenantStatus.Suspended) {
      throw new SiloError(ErrorCode.TENANT_NOT_ACTIVE, `Tenant is ${t.status}: nothing to rotate`, 409);
    }
    const jobId = await this.jobs.enqueue({ type: JobType.RotateCredentials, tenantId: t.id, dedupeKey: `rotate:${t.id}` });
    await this.tenants.audit({ tenantId: t.id, action: 'credential_rotation_requested', causeType: 'admin', causeId: ADMIN.id, detail: { jobId } });
    return { jobId };
  }

  private async act(ref: string, fn: Parameters<TenantService['locked']>[1]): Promise<Tenant> {
    const t = await this.service.get(ref);
    await this.service.locked(t.id, fn);
    const fresh = isUuid(t.id) ? await this.tenants.findById(t.id) : null;
    if (!fresh) throw tenantNotFound(ref);
    return fresh;
  }

  private assert(ok: boolean, t: Tenant, to: TenantStatus): void {
    if (!ok) throw new SiloError(ErrorCode.INVALID_TRANSITION, `A ${t.status} tenant cannot become ${to}`, 409, { from: t.status, to });
  }
}
