import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { AdminAuthGuard } from '../common/admin-auth.guard';
import { JobRepository } from '../jobs/job.repository';
import { CreateTenantDto, HistoryQuery, isTenantStatus, ListTenantsQuery, OffboardDto, SuspendDto, UpdateTenantDto } from './dto/tenant.dto';
import { StorageQuotaService } from './storage-quota.service';
import { TenantAdminService } from './tenant-admin.service';
import { TenantStorageRepository } from './tenant-storage.repository';
import { TenantRepository } from './tenant.repository';
import { TenantService } from './tenant.service';
import { tenantView } from './tenant.view';

@ApiTags('tenants')
@ApiBearerAuth()
@UseGuards(AdminAuthGuard)
@Controller('v1/tenants')
export class TenantsController {
  constructor(
    private readonly admin: TenantAdminService,
    private readonly service: TenantService,
    private readonly tenants: TenantRepository,
    private readonly jobs: JobRepository,
    private readonly storage: TenantStorageRepository,
    private readonly quotas: StorageQuotaService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'List tenants (filter by status and tier, paged)' })
  async list(@Query() q: ListTenantsQuery) {
    const status = q.status ? q.status.split(',').map((s) => s.trim()) : undefined;
    const bad = status?.filter((s) => !isTenantStatus(s));
    if (bad?.length) throw new SiloError(ErrorCode.VALIDATION_FAILED, `Unknown status: ${bad.join(', ')}`, 400);
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { items, total } = await this.tenants.list({ status: status as never, tier: q.tier, limit, offset });
    return { items: items.map((t) => tenantView(t)), total, limit, offset };
  }

  @Post()
  @HttpCode(202)
  @ApiOperation({ summary: 'Create a tenant by hand (customers not billed through Stripe); provisioning is queued' })
  async create(@Body() dto: CreateTenantDto, @Req() req: { id?: string }) {
    return tenantView(await this.admin.create(dto, req.id));
  }

  @Get(':id')
  @ApiOperation({ summary: 'One tenant by id or slug: status, tier, connection (no password), schema version, recent jobs' })
  async get(@Param('id') id: string) {
    const t = await this.service.get(id);
    const [connection, schema, jobs, storage] = await Promise.all([this.tenants.findConnection(t.id), this.tenants.findSchemaVersion(t.id), this.jobs.forTenant(t.id, 10), this.storage.find(t.id)]);
    return tenantView(t, { connection, schema, jobs, storage: { row: storage, quotaBytes: this.quotas.quotaBytes(t.tier) } });
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change tier or custom domain' })
  async update(@Param('id') id: string, @Body() dto: UpdateTenantDto) {
    return tenantView(await this.admin.update(id, dto));
  }

  @Post(':id/suspend')
  @HttpCode(200)
  async suspend(@Param('id') id: string, @Body() dto: SuspendDto) {
    return tenantView(await this.admin.suspend(id, dto.reason));
  }

  @Post(':id/resume')
  @HttpCode(200)
  async resume(@Param('id') id: string) {
    return tenantView(await this.admin.resume(id));
  }

  @Post(':id/offboard')
  @HttpCode(202)
  @ApiOperation({ summary: 'Offboard now (or at `at`); an active tenant needs force=true. Also expedites a scheduled offboarding.' })
  async offboard(@Param('id') id: string, @Body() dto: OffboardDto) {
    return tenantView(await this.admin.offboard(id, dto));
  }

  @Delete(':id/offboarding')
  @ApiOperation({ summary: 'Cancel an offboarding: scheduled, started (deprovisioning) or failed; a started or failed one returns the tenant to suspended. 409 OFFBOARDING_IRREVERSIBLE once data deletion has started.' })
  async cancelOffboarding(@Param('id') id: string) {
    return tenantView(await this.admin.cancelOffboarding(id));
  }

  @Post(':id/retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Retry a failed tenant (provisioning or offboarding)' })
  async retry(@Param('id') id: string) {
    return tenantView(await this.admin.retry(id));
  }

  @Post(':id/rotate-credentials')
  @HttpCode(202)
  async rotate(@Param('id') id: string) {
    return this.admin.rotateCredentials(id);
  }

  @Get(':id/history')
  @ApiOperation({ summary: 'Lifecycle history (audit log), newest first' })
  async history(@Param('id') id: string, @Query() q: HistoryQuery) {
    const t = await this.service.get(id);
    const items = await this.tenants.history(t.id, q.limit ?? 100, q.before);
    return { items: items.map((a) => ({ id: a.id, action: a.action, from: a.fromStatus, to: a.toStatus, cause: { type: a.causeType, id: a.causeId }, detail: a.detail, at: a.createdAt })) };
  }

  @Get(':id/jobs')
  @ApiOperation({ summary: 'Recent jobs of the tenant, each with its attempts (worker, startedAt, finishedAt, outcome)' })
  async jobsOf(@Param('id') id: string) {
    const t = await this.service.get(id);
    const items = await this.jobs.forTenant(t.id, 50);
    const runs = await this.jobs.runsOf(items.map((j) => j.id));
    const attemptsOf = (id: string) => runs.filter((r) => r.jobId === id).map((r) => ({ attempt: r.attempt, worker: r.workerId, startedAt: r.startedAt, finishedAt: r.finishedAt, outcome: r.outcome, error: r.error }));
    return { items: items.map((j) => ({ id: j.id, type: j.type, status: j.status, attempts: j.attempts, maxAttempts: j.maxAttempts, lastError: j.lastError, log: j.log, runAt: j.runAt, createdAt: j.createdAt, finishedAt: j.finishedAt, runs: attemptsOf(j.id) })) };
  }
}
