import { Controller, Get, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { DataSource } from 'typeorm';
import { searchTenants, tenantCounts } from '../../common/control-db/tenant-queries';
import { SiloError } from '../../common/errors';
import { defaultMigrationsDir, loadMigrations, SchemaMirrorRepository } from '../../migrations';
import { FleetStatus, mirrorStatus } from '../../migrations/migration-status';
import { ApiKeysService } from '../api-keys/api-keys.service';
import { WebhookEvent, WebhookOutcome } from '../billing/webhook-event.entity';
import { WebhookEventRepository } from '../billing/webhook-event.repository';
import type { ControlPlaneConfig } from '../config';
import { roleCan } from '../common/permissions';
import { CLOCK, CONFIG, DATA_SOURCE } from '../common/tokens';
import { JobRepository } from '../jobs/job.repository';
import { PeriodicTaskRepository } from '../jobs/periodic-task.repository';
import { OperatorsService } from '../operators/operators.service';
import { StorageQuotaService } from '../tenants/storage-quota.service';
import { TenantStatus } from '../tenants/tenant-status';
import { TenantStorageRepository } from '../tenants/tenant-storage.repository';
import { TenantRepository } from '../tenants/tenant.repository';
import { TenantService } from '../tenants/tenant.service';
import { TierCatalog } from '../tenants/tier-catalog';
import { CONSOLE_CSS, CONSOLE_JS } from './assets';
import { BillingEventsQuery, billingEventsPage } from './billing-events-page';
import { ConsoleSession, ConsoleSessionService, SESSION_COOKIE, sessionCookie } from './console-session.service';
import { fleetBody, FleetFigures, fleetPage, operatorsPage } from './fleet-pages';
import { Html } from './html';
import { pageHeaders } from './page-headers';
import { MigrationsQuery, migrationsPage, SCHEMA_STATES } from './migrations-page';
import { historyItems, jobPage, jobRows, summary, TenantDetail, tenantPage } from './tenant-detail-page';
import { tenantRows, TenantsQuery, tenantsPage } from './tenant-pages';
import { errorPage, loginPage, Viewer } from './views';

const PAGE_SIZE = 50;
const BILLING_EVENTS_LIMIT = 100;
const TENANT_BILLING_EVENTS = 20;
const DAY_MS = 24 * 60 * 60 * 1000;
const STATUSES = Object.values(TenantStatus) as string[];
// No inline script or style anywhere: the console's own files only.

type Page = { kind: 'page'; viewer: Viewer; session: ConsoleSession };

/**
 * The web console (issue #18 item 4): server-rendered pages over the same services and repositories
 * the admin API uses. It changes nothing itself: its script sends every action to the `/v1` route
 * that does it, with the session cookie and CSRF token, so AdminAuthGuard applies the one permission
 * table and the audit log names the operator. Which actions a page shows comes from that table too.
 */
@ApiExcludeController()
@Controller('console')
export class ConsoleController {
  constructor(
    private readonly sessions: ConsoleSessionService,
    private readonly tenantService: TenantService,
    private readonly tenants: TenantRepository,
    private readonly jobs: JobRepository,
    private readonly keys: ApiKeysService,
    private readonly tiers: TierCatalog,
    private readonly operators: OperatorsService,
    private readonly webhookEvents: WebhookEventRepository,
    private readonly periodicTasks: PeriodicTaskRepository,
    private readonly storage: TenantStorageRepository,
    private readonly quotas: StorageQuotaService,
    @Inject(CONFIG) private readonly config: Pick<ControlPlaneConfig, 'SILO_TENANT_MIGRATIONS_DIR' | 'RECONCILE_INTERVAL_SECONDS'>,
    @Inject(DATA_SOURCE) private readonly ds: DataSource,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {}

  @Get()
  root(@Res() res: Response): void {
    res.redirect(303, '/console/tenants');
  }

  @Get('assets/console.css')
  css(@Res() res: Response): void {
    res.type('text/css').setHeader('cache-control', 'public, max-age=300');
    res.send(CONSOLE_CSS);
  }

  @Get('assets/console.js')
  js(@Res() res: Response): void {
    res.type('application/javascript').setHeader('cache-control', 'public, max-age=300');
    res.send(CONSOLE_JS);
  }

  @Get('login')
  async loginForm(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (await this.sessions.resolve(sessionCookie(req.headers.cookie), { touch: false })) return res.redirect(303, '/console/tenants');
    send(res, 200, loginPage(undefined, this.sessions.ssoEnabled));
  }

  @Post('login')
  async login(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (!sameOrigin(req)) return send(res, 403, loginPage('Sign-in refused: the form was posted from another site.', this.sessions.ssoEnabled));
    const token = typeof req.body?.token === 'string' ? req.body.token : '';
    const session = token ? await this.sessions.signIn(token) : null;
    if (!session) return send(res, 401, loginPage('That token is not valid (unknown, expired or revoked, or its operator is disabled).', this.sessions.ssoEnabled));
    res.setHeader('set-cookie', cookie(req, session.sessionId, Math.floor(this.sessions.maxMs / 1000)));
    res.redirect(303, '/console/tenants');
  }

  @Post('logout')
  async logout(@Req() req: Request, @Res() res: Response): Promise<void> {
    const sid = sessionCookie(req.headers.cookie);
    const session = await this.sessions.resolve(sid, { touch: false });
    if (session) {
      const sent = req.body?._csrf ?? req.headers['x-csrf-token'];
      if (!this.sessions.csrfMatches(session, sent)) return sendJson(res, 403, { error: { code: 'CSRF_TOKEN_INVALID', message: 'Missing or wrong CSRF token for this console session' } });
      await this.sessions.signOut(sid);
    }
    res.setHeader('set-cookie', cookie(req, '', 0));
    res.redirect(303, '/console/login');
  }

  @Get('tenants')
  async tenantsList(@Req() req: Request, @Res() res: Response, @Query() query: Record<string, unknown>): Promise<void> {
    const p = await this.page(req, res, 'tenants:read');
    if (!p) return;
    const q = tenantsQuery(query, this.tiers.names());
    const { rows, total } = await searchTenants(this.ds, filterOf(q));
    send(res, 200, tenantsPage(p.viewer, q, rows, total, STATUSES, this.tiers.names()));
  }

  @Get('live/tenants')
  async tenantsLive(@Req() req: Request, @Res() res: Response, @Query() query: Record<string, unknown>): Promise<void> {
    if (!(await this.live(req, res, 'tenants:read'))) return;
    const { rows } = await searchTenants(this.ds, filterOf(tenantsQuery(query, this.tiers.names())));
    sendJson(res, 200, { fragments: { rows: tenantRows(rows).value } });
  }

  @Get('tenants/:id')
  async tenant(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const p = await this.page(req, res, 'tenants:read');
    if (!p) return;
    const d = await this.detail(id, p.viewer).catch((err: unknown) => err);
    if (d instanceof SiloError) return send(res, d.status, errorPage(p.viewer, d.status, d.message));
    if (d instanceof Error) throw d;
    send(res, 200, tenantPage(p.viewer, d as TenantDetail));
  }

  @Get('tenants/:id/jobs/:jobId')
  async job(@Req() req: Request, @Res() res: Response, @Param('id') id: string, @Param('jobId') jobId: string): Promise<void> {
    const p = await this.page(req, res, 'tenants:read');
    if (!p) return;
    const tenant = await this.tenantService.get(id).catch((err: unknown) => err);
    if (tenant instanceof SiloError) return send(res, tenant.status, errorPage(p.viewer, tenant.status, tenant.message));
    if (tenant instanceof Error) throw tenant;
    const t = tenant as Awaited<ReturnType<TenantService['get']>>;
    const job = UUID.test(jobId) ? await this.jobs.findById(jobId) : null;
    if (!job || job.tenantId !== t.id) return send(res, 404, errorPage(p.viewer, 404, `Tenant ${t.slug} has no job ${jobId}.`));
    send(res, 200, jobPage(p.viewer, t, job, await this.jobs.runsOf([job.id])));
  }

  @Get('migrations')
  async migrations(@Req() req: Request, @Res() res: Response, @Query() query: Record<string, unknown>): Promise<void> {
    const p = await this.page(req, res, 'tenants:read');
    if (!p) return;
    send(res, 200, migrationsPage(p.viewer, await this.schemaStatus(), migrationsQuery(query, this.tiers.names()), this.tiers.names()));
  }

  @Get('billing-events')
  async billingEvents(@Req() req: Request, @Res() res: Response, @Query() query: Record<string, unknown>): Promise<void> {
    const p = await this.page(req, res, 'billing:read');
    if (!p) return;
    const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
    const outcomes = KNOWN_OUTCOMES;
    const q: BillingEventsQuery = { outcome: outcomes.includes(str(query.outcome)) ? str(query.outcome) : '', type: str(query.type).slice(0, 100) };
    const events = await this.webhookEvents.recent({ limit: BILLING_EVENTS_LIMIT, outcome: q.outcome || undefined, type: q.type || undefined });
    send(res, 200, billingEventsPage(p.viewer, q, events, outcomes, BILLING_EVENTS_LIMIT));
  }

  @Get('live/tenants/:id')
  async tenantLive(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const v = await this.live(req, res, 'tenants:read');
    if (!v) return;
    const d = await this.detail(id, v);
    sendJson(res, 200, { fragments: { summary: summary(d).value, jobs: jobRows(d.jobs).value, history: historyItems(d.history).value } });
  }

  @Get('fleet')
  async fleet(@Req() req: Request, @Res() res: Response): Promise<void> {
    const p = await this.page(req, res, 'tenants:read');
    if (!p) return;
    send(res, 200, fleetPage(p.viewer, await this.fleetFigures(p.viewer)));
  }

  @Get('live/fleet')
  async fleetLive(@Req() req: Request, @Res() res: Response): Promise<void> {
    const v = await this.live(req, res, 'tenants:read');
    if (!v) return;
    sendJson(res, 200, { fragments: { fleet: fleetBody(await this.fleetFigures(v)).value } });
  }

  @Get('operators')
  async operatorsList(@Req() req: Request, @Res() res: Response): Promise<void> {
    const p = await this.page(req, res, 'operators:read');
    if (!p) return;
    const ops = await this.operators.list();
    const withTokens = await Promise.all(ops.map(async (op) => ({ op, tokens: await this.operators.tokens(op.id) })));
    send(res, 200, operatorsPage(p.viewer, withTokens, this.now()));
  }

  private async fleetFigures(v: Viewer): Promise<FleetFigures> {
    const ops = v.can('operations:read');
    const [tenants, jobs, schema, webhooks, tasks] = await Promise.all([
      tenantCounts(this.ds), ops ? this.jobs.queueStats() : Promise.resolve(null), this.schemaStatus(),
      v.can('billing:read') ? this.webhookEvents.outcomeCounts(new Date(this.now().getTime() - DAY_MS)) : Promise.resolve(null),
      ops ? this.periodicTasks.list() : Promise.resolve(null),
    ]);
    const reconcile = tasks ? { task: tasks.find((x) => x.name === 'reconcile') ?? null, intervalSeconds: this.config.RECONCILE_INTERVAL_SECONDS } : null;
    return { tenants, jobs, schema, webhooks, reconcile };
  }

  /** What `silo migrate status` says without --check: the mirror against the migration files the control plane applies. */
  private async schemaStatus(): Promise<FleetStatus | { error: string }> {
    let migrations;
    try {
      migrations = loadMigrations(this.config.SILO_TENANT_MIGRATIONS_DIR ?? defaultMigrationsDir());
    } catch (err) {
      return { error: (err as Error).message };
    }
    return mirrorStatus(new SchemaMirrorRepository(this.ds), migrations, { all: true });
  }

  /** The tenant's events by tenant id and by its subscription (an ignored event may name only the subscription), merged, newest first. */
  private async billingOf(tenant: { id: string; stripeSubscriptionId: string | null }): Promise<WebhookEvent[]> {
    const [byTenant, bySub] = await Promise.all([
      this.webhookEvents.recent({ limit: TENANT_BILLING_EVENTS, tenantId: tenant.id }),
      tenant.stripeSubscriptionId ? this.webhookEvents.recent({ limit: TENANT_BILLING_EVENTS, subscriptionId: tenant.stripeSubscriptionId }) : Promise.resolve([]),
    ]);
    const seen = new Map<string, WebhookEvent>();
    for (const e of [...byTenant, ...bySub]) seen.set(e.id, e);
    return [...seen.values()].sort((a, b) => b.receivedAt.getTime() - a.receivedAt.getTime() || (a.id < b.id ? 1 : -1)).slice(0, TENANT_BILLING_EVENTS);
  }

  private async detail(ref: string, v: Viewer): Promise<TenantDetail> {
    const tenant = await this.tenantService.get(ref);
    const [connection, schema, jobs, history, keys, billing, storage] = await Promise.all([
      this.tenants.findConnection(tenant.id), this.tenants.findSchemaVersion(tenant.id), this.jobs.forTenant(tenant.id, 20),
      this.tenants.history(tenant.id, 50), v.can('api-keys:read') ? this.keys.list(tenant.id) : Promise.resolve(null),
      v.can('billing:read') ? this.billingOf(tenant) : Promise.resolve(null), this.storage.find(tenant.id),
    ]);
    return { tenant, connection, schema, jobs, history, keys, tiers: this.tiers.names(), billing, storage: { row: storage, quotaBytes: this.quotas.quotaBytes(tenant.tier) } };
  }

  /** The signed-in viewer of a page, or null after redirecting to sign-in (no session) or answering 403 (the role may not see it). */
  private async page(req: Request, res: Response, permission: Parameters<typeof roleCan>[1]): Promise<Page | null> {
    const session = await this.sessions.resolve(sessionCookie(req.headers.cookie));
    if (!session) {
      res.redirect(303, '/console/login');
      return null;
    }
    const viewer = viewerOf(session);
    if (!viewer.can(permission)) {
      send(res, 403, errorPage(viewer, 403, `Role ${viewer.role} may not see this page (needs ${permission}).`));
      return null;
    }
    return { kind: 'page', viewer, session };
  }

  /** Like page() for the polling endpoints: JSON 401/403, and the session's idle clock is not restarted. */
  private async live(req: Request, res: Response, permission: Parameters<typeof roleCan>[1]): Promise<Viewer | null> {
    const session = await this.sessions.resolve(sessionCookie(req.headers.cookie), { touch: false });
    if (!session) {
      sendJson(res, 401, { error: { code: 'UNAUTHORIZED', message: 'Console session expired or signed out' } });
      return null;
    }
    const viewer = viewerOf(session);
    if (!viewer.can(permission)) {
      sendJson(res, 403, { error: { code: 'FORBIDDEN', message: `Role ${viewer.role} may not do this (needs ${permission})` } });
      return null;
    }
    return viewer;
  }
}

function viewerOf(s: ConsoleSession): Viewer {
  const role = s.caller.role;
  return {
    label: s.caller.actor.kind === 'operator' ? (s.caller.actor.email ?? 'operator') : 'break-glass (ADMIN_TOKEN)',
    role: role === '*' ? 'admin' : role,
    csrfToken: s.csrfToken,
    can: (permission) => role === '*' || roleCan(role, permission as Parameters<typeof roleCan>[1]),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KNOWN_OUTCOMES = Object.values(WebhookOutcome) as string[];

function migrationsQuery(q: Record<string, unknown>, tiers: string[]): MigrationsQuery {
  const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
  const state = str(q.state);
  const tier = str(q.tier);
  const page = Number.parseInt(str(q.page), 10);
  return {
    q: str(q.q).toLowerCase().slice(0, 100),
    state: (SCHEMA_STATES as readonly string[]).includes(state) ? state : '',
    tier: tiers.includes(tier) ? tier : '',
    page: Number.isFinite(page) && page >= 1 ? Math.min(page, 100_000) : 1,
    pageSize: PAGE_SIZE,
  };
}

function tenantsQuery(q: Record<string, unknown>, tiers: string[]): TenantsQuery {
  const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
  const status = str(q.status);
  const tier = str(q.tier);
  const page = Number.parseInt(str(q.page), 10);
  return {
    q: str(q.q).slice(0, 100),
    status: STATUSES.includes(status) ? status : '',
    tier: tiers.includes(tier) ? tier : '',
    page: Number.isFinite(page) && page >= 1 ? Math.min(page, 100_000) : 1,
    pageSize: PAGE_SIZE,
  };
}

const filterOf = (q: TenantsQuery) => ({ search: q.q || undefined, statuses: q.status ? [q.status] : undefined, tier: q.tier || undefined, limit: q.pageSize, offset: (q.page - 1) * q.pageSize });

function secure(req: Request): boolean {
  return req.secure || req.protocol === 'https';
}

/** httpOnly, SameSite=Strict, path=/ (the console's script calls /v1 with it), Secure when served over https. */
function cookie(req: Request, value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure(req) ? '; Secure' : ''}`;
}

/** A cross-site form post announces its origin; one from this host (or a client that sends none, like curl) passes. */
function sameOrigin(req: Request): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}


function send(res: Response, status: number, page: Html): void {
  pageHeaders(res);
  res.status(status).type('html').send(page.value);
}

function sendJson(res: Response, status: number, body: unknown): void {
  pageHeaders(res);
  res.status(status).json(body);
}
