import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Req, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { AdminAuthGuard } from '../common/admin-auth.guard';
import { ApiErrors } from '../common/api-docs';
import { Permission } from '../common/permissions';
import { JobRepository } from '../jobs/job.repository';
import { auditActor } from './audit-log.repository';
import { CreateTenantDto, HistoryQuery, isTenantStatus, ListTenantsQuery, OffboardDto, SuspendDto, UpdateTenantDto } from './dto/tenant.dto';
import { CredentialRotationView, HistoryView, TenantDetailView, TenantJobsView, TenantListView, TenantView } from './dto/tenant-view.dto';
import { StorageQuotaService } from './storage-quota.service';
import { TenantAdminService } from './tenant-admin.service';
import { TenantStorageRepository } from './tenant-storage.repository';
import { TenantRepository } from './tenant.repository';
import { TenantService } from './tenant.service';
import { tenantView } from './tenant.view';

const ID = { name: 'id', description: 'Tenant id (uuid) or slug' };

@ApiTags('tenants')
@ApiBearerAuth()
@ApiErrors()
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
  @ApiOkResponse({ type: TenantListView })
  @ApiErrors({ auth: false, validation: true })
  @Permission('tenants:read')
  async list(@Query() q: ListTenantsQuery): Promise<TenantListView> {
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
  @ApiAcceptedResponse({ type: TenantView, description: 'Created (status pending); provisioning is queued' })
  @ApiErrors({ auth: false, body: true, conflict: [ErrorCode.TENANT_SLUG_TAKEN] })
  @Permission('tenants:lifecycle')
  async create(@Body() dto: CreateTenantDto, @Req() req: { id?: string }): Promise<TenantView> {
    return tenantView(await this.admin.create(dto, req.id));
  }

  @Get(':id')
  @ApiOperation({ summary: 'One tenant by id or slug: status, tier, connection (no password), schema version, recent jobs' })
  @ApiParam(ID)
  @ApiOkResponse({ type: TenantDetailView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.TENANT_NOT_FOUND] })
  @Permission('tenants:read')
  async get(@Param('id') id: string): Promise<TenantDetailView> {
    const t = await this.service.get(id);
    const [connection, schema, jobs, storage] = await Promise.all([this.tenants.findConnection(t.id), this.tenants.findSchemaVersion(t.id), this.jobs.forTenant(t.id, 10), this.storage.find(t.id)]);
    return tenantView(t, { connection, schema, jobs, storage: { row: storage, quotaBytes: this.quotas.quotaBytes(t.tier) } });
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change tier or custom domain' })
  @ApiParam(ID)
  @ApiOkResponse({ type: TenantView })
  @ApiErrors({ auth: false, body: true, notFound: [ErrorCode.TENANT_NOT_FOUND] })
  @Permission('tenants:lifecycle')
  async update(@Param('id') id: string, @Body() dto: UpdateTenantDto): Promise<TenantView> {
    return tenantView(await this.admin.update(id, dto));
  }

  @Post(':id/suspend')
  @HttpCode(200)
  @ApiOperation({ summary: 'Suspend the tenant (an admin suspension: only an admin resume lifts it)' })
  @ApiParam(ID)
  @ApiOkResponse({ type: TenantView })
  @ApiErrors({ auth: false, body: true, notFound: [ErrorCode.TENANT_NOT_FOUND], conflict: [ErrorCode.INVALID_TRANSITION] })
  @Permission('tenants:lifecycle')
  async suspend(@Param('id') id: string, @Body() dto: SuspendDto): Promise<TenantView> {
    return tenantView(await this.admin.suspend(id, dto.reason));
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a suspended tenant (back to active, or into provisioning if it never finished)' })
  @ApiParam(ID)
  @ApiOkResponse({ type: TenantView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.TENANT_NOT_FOUND], conflict: [ErrorCode.INVALID_TRANSITION] })
  @Permission('tenants:lifecycle')
  async resume(@Param('id') id: string): Promise<TenantView> {
    return tenantView(await this.admin.resume(id));
  }

  @Post(':id/offboard')
  @HttpCode(202)
  @ApiOperation({ summary: 'Offboard now (or at `at`); an active tenant needs force=true. Also expedites a scheduled offboarding.' })
  @ApiParam(ID)
  @ApiAcceptedResponse({ type: TenantView, description: 'Scheduled, or started (deprovisioning is queued)' })
  @ApiErrors({ auth: false, body: true, notFound: [ErrorCode.TENANT_NOT_FOUND], conflict: [ErrorCode.INVALID_TRANSITION, ErrorCode.TENANT_NOT_ACTIVE] })
  @Permission('tenants:lifecycle')
  async offboard(@Param('id') id: string, @Body() dto: OffboardDto): Promise<TenantView> {
    return tenantView(await this.admin.offboard(id, dto));
  }

  @Delete(':id/offboarding')
  @ApiOperation({ summary: 'Cancel an offboarding: scheduled, started (deprovisioning) or failed; a started or failed one returns the tenant to suspended. 409 OFFBOARDING_IRREVERSIBLE once data deletion has started.' })
  @ApiParam(ID)
  @ApiOkResponse({ type: TenantView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.TENANT_NOT_FOUND], conflict: [ErrorCode.INVALID_TRANSITION, ErrorCode.OFFBOARDING_IRREVERSIBLE] })
  @Permission('tenants:lifecycle')
  async cancelOffboarding(@Param('id') id: string): Promise<TenantView> {
    return tenantView(await this.admin.cancelOffboarding(id));
  }

  @Post(':id/retry')
  @HttpCode(202)
  @ApiOperation({ summary: 'Retry a failed tenant (provisioning or offboarding)' })
  @ApiParam(ID)
  @ApiAcceptedResponse({ type: TenantView, description: 'The failed operation is queued again' })
  @ApiErrors({ auth: false, notFound: [ErrorCode.TENANT_NOT_FOUND], conflict: [ErrorCode.INVALID_TRANSITION] })
  @Permission('tenants:retry')
  async retry(@Param('id') id: string): Promise<TenantView> {
    return tenantView(await this.admin.retry(id));
  }

  @Post(':id/rotate-credentials')
  @HttpCode(202)
  @ApiOperation({ summary: "Queue a rotation of the tenant database role's password (active or suspended tenants)" })
  @ApiParam(ID)
  @ApiAcceptedResponse({ type: CredentialRotationView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.TENANT_NOT_FOUND], conflict: [ErrorCode.TENANT_NOT_ACTIVE] })
  @Permission('tenants:rotate-credentials')
  async rotate(@Param('id') id: string): Promise<CredentialRotationView> {
    return this.admin.rotateCredentials(id);
  }

  @Get(':id/history')
  @ApiOperation({ summary: 'Lifecycle history (audit log), newest first' })
  @ApiParam(ID)
  @ApiOkResponse({ type: HistoryView })
  @ApiErrors({ auth: false, validation: true, notFound: [ErrorCode.TENANT_NOT_FOUND] })
  @Permission('tenants:read')
  async history(@Param('id') id: string, @Query() q: HistoryQuery): Promise<HistoryView> {
    const t = await this.service.get(id);
    const items = await this.tenants.history(t.id, q.limit ?? 100, q.before);
    return { items: items.map((a) => ({ id: a.id, action: a.action, from: a.fromStatus, to: a.toStatus, cause: { type: a.causeType, id: a.causeId }, actor: auditActor(a), detail: a.detail, at: a.createdAt })) };
  }

  @Get(':id/jobs')
  @ApiOperation({ summary: 'Recent jobs of the tenant, each with its attempts (worker, startedAt, finishedAt, outcome)' })
  @ApiParam(ID)
  @ApiOkResponse({ type: TenantJobsView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.TENANT_NOT_FOUND] })
  @Permission('tenants:read')
  async jobsOf(@Param('id') id: string): Promise<TenantJobsView> {
    const t = await this.service.get(id);
    const items = await this.jobs.forTenant(t.id, 50);
    const runs = await this.jobs.runsOf(items.map((j) => j.id));
    const attemptsOf = (id: string) => runs.filter((r) => r.jobId === id).map((r) => ({ attempt: r.attempt, worker: r.workerId, startedAt: r.startedAt, finishedAt: r.finishedAt, outcome: r.outcome, error: r.error }));
    return { items: items.map((j) => ({ id: j.id, type: j.type, status: j.status, attempts: j.attempts, maxAttempts: j.maxAttempts, lastError: j.lastError, log: j.log, runAt: j.runAt, createdAt: j.createdAt, finishedAt: j.finishedAt, runs: attemptsOf(j.id) })) };
  }
}
