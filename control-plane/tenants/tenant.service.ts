import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { EntityManager } from 'typeorm';
import type { Logger } from '../../common/logger';
import { DirectoryEntry, DirectoryPublisher } from '../../common/tenant-directory';
import type { ControlPlaneConfig } from '../config';
import { CLOCK, CONFIG, DIRECTORY, LOGGER } from '../common/tokens';
import { JobType } from '../jobs/job.entity';
import { JobRepository } from '../jobs/job.repository';
import { AuditCauseType } from './audit-entry.entity';
import { deriveSlug, placeholderSlug, slugProblem, withSuffix } from './slug';
import { slugTaken, tenantNotFound, tenantStillActive } from './tenant.errors';
import { TenantRepository } from './tenant.repository';
import { assertTransition, canSuspend, canTransition, SlugSource, SuspendCause, SuspendedBy, Suspension, sweepMayOffboard, TenantStatus } from './tenant-status';
import { TenantConnection } from './tenant-connection.entity';
import { Tenant } from './tenant.entity';
import { TierCatalog } from './tier-catalog';

export interface Cause {
  type: AuditCauseType;
  id?: string | null;
}

export interface CreateTenantInput {
  name: string;
  /** Requested slug; invalid or taken ones fall back to a derived slug (recorded in the audit log). */
  slug?: string | null;
  /** Text to derive a slug from when none is requested (customer name or email). */
  slugSource?: string | null;
  tier?: string | null;
  region?: string | null;
  stripeCustomerId?: string | null;
  stripeSubscriptionId?: string | null;
  /** Manual creation fails on a taken slug instead of falling back. */
  strictSlug?: boolean;
  /** Where the slug comes from (billing: requested, name, email, customer id); admin creation otherwise. */
  slugFrom?: SlugSource;
  /** When provisioning may start: undefined now, null not yet (billing: waiting for payment). */
  provisionAt?: Date | null;
}

const SLUG_RANK: Readonly<Record<SlugSource, number>> = { [SlugSource.Admin]: 5, [SlugSource.Requested]: 4, [SlugSource.Name]: 3, [SlugSource.Email]: 2, [SlugSource.Customer]: 1, [SlugSource.Unpaid]: 0 };

/** A slug choice and, when it is not what was asked for, why. */
interface SlugChoice {
  base: string;
  requested: string | null;
  fallback: string | null;
}

/** Lifecycle rules: every status change goes through `transition`, which enforces the state machine and audits it. */
@Injectable()
export class TenantService {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly jobs: JobRepository,
    private readonly tiers: TierCatalog,
    @Inject(DIRECTORY) private readonly directory: DirectoryPublisher,
    @Inject(CONFIG) private readonly config: ControlPlaneConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CLOCK) private readonly now: () => Date,
  ) {}

  async get(id: string): Promise<Tenant> {
    const t = isUuid(id) ? await this.tenants.findById(id) : await this.tenants.findBySlug(id);
    if (!t) throw tenantNotFound(id);
    return t;
  }

  /**
   * The slug to use: the requested one, else the requested one made a DNS label ("Acme Corp" →
   * `acme-corp`), else one derived from `slugSource`; the fallback says why when it is not what was asked.
   */
  private chooseSlug(input: Pick<CreateTenantInput, 'slug' | 'slugSource' | 'name' | 'strictSlug'>): SlugChoice {
    const requested = input.slug?.trim().toLowerCase() || null;
    const problem = requested ? slugProblem(requested) : null;
    if (requested && problem && input.strictSlug) throw Object.assign(slugTaken(requested), { message: `Slug ${requested} ${problem}`, status: 400, code: 'VALIDATION_FAILED' });
    if (requested && !problem) return { base: requested, requested, fallback: null };
    if (requested) {
      const normalised = deriveSlug(requested);
      if (!normalised.startsWith('tenant-')) return { base: normalised, requested, fallback: `normalised to a DNS label (${problem})` };
    }
    return { base: deriveSlug(input.slugSource ?? input.name), requested, fallback: problem };
  }

  /** Creates a pending tenant and enqueues its provisioning (unless `provisionAt` is null), in the caller's transaction. */
  async create(input: CreateTenantInput, cause: Cause, m: EntityManager): Promise<Tenant> {
    const tier = this.tiers.resolveTierName(input.tier);
    const { base, requested, fallback } = input.slugFrom === SlugSource.Unpaid ? { base: placeholderSlug(), requested: null, fallback: null } : this.chooseSlug(input);
    const problem = fallback;

    for (let n = 1; n <= 50; n++) {
      const slug = withSuffix(base, n);
      const tenant = Object.assign(new Tenant(), {
        id: randomUUID(), slug, slugSource: input.slugFrom ?? SlugSource.Admin, name: input.name.slice(0, 200) || slug, status: TenantStatus.Pending, tier,
        region: input.region ?? this.config.DEFAULT_REGION, stripeCustomerId: input.stripeCustomerId ?? null,
        stripeSubscriptionId: input.stripeSubscriptionId ?? null, billingStatus: null, pastDueSince: null, suspendReason: null, suspendedBy: null, suspendCause: null,
        offboardAt: null, lastEventCreated: null, failureReason: null, failedDuring: null, customDomain: null, deletedAt: null,
      });
      // ON CONFLICT DO NOTHING: a taken slug (or a race for it) never aborts the caller's transaction.
      const saved = await this.tenants.insert(tenant, m);
      if (!saved) {
        if (input.strictSlug && requested) throw slugTaken(slug);
        continue;
      }
      await this.tenants.audit({
        tenantId: saved.id, action: 'created', toStatus: TenantStatus.Pending, causeType: cause.type, causeId: cause.id,
        detail: { slug, slugSource: saved.slugSource, tier, ...(requested && slug !== requested ? { requestedSlug: requested, slugFallback: problem ?? 'taken' } : {}) },
      }, m);
      if (input.provisionAt !== null) await this.enqueueProvision(saved.id, m, input.provisionAt);
      return saved;
    }
    throw slugTaken(base);
  }

  /** `fresh`: the tenant was created in the caller's transaction, so no open job holds its key (enqueueFresh: no answer awaited). */
  enqueueProvision(tenantId: string, m: EntityManager, runAt?: Date, fresh = false): Promise<string | null> {
    const input = { type: JobType.Provision, tenantId, dedupeKey: `provision:${tenantId}`, runAt };
    return fresh ? this.jobs.enqueueFresh(input, m) : this.jobs.enqueue(input, m);
  }

  /**
   * Billing learned a better name for a tenant whose hostname is not live yet (pending or
   * provisioning): re-choose its slug from it, audited. Never renames an active tenant, an
   * admin-created one, or from information no better than what the slug came from.
   * Returns the old slug when it changed (its directory entry must go).
   */
  async renameBeforeLive(tenant: Tenant, input: Pick<CreateTenantInput, 'slug' | 'slugSource' | 'name'> & { slugFrom: SlugSource }, cause: Cause, m: EntityManager, opts: { notLive?: boolean } = {}): Promise<string | null> {
    // `notLive`: the caller knows the hostname never went live (a suspended tenant that never got a database).
    if (!opts.notLive && tenant.status !== TenantStatus.Pending && tenant.status !== TenantStatus.Provisioning) return null;
    const current = tenant.slugSource ?? SlugSource.Admin;
    if (SLUG_RANK[input.slugFrom] <= SLUG_RANK[current]) return null;
    const { base, requested, fallback } = this.chooseSlug(input);
    for (let n = 1; n <= 50; n++) {
      const slug = withSuffix(base, n);
      if (slug === tenant.slug) {
        tenant.slugSource = input.slugFrom;
        return null;
      }
      if (await this.tenants.slugExists(slug, m)) continue;
      const from = tenant.slug;
      await this.tenants.audit({ tenantId: tenant.id, action: 'slug_changed', causeType: cause.type, causeId: cause.id, detail: { from, to: slug, fromSource: current, toSource: input.slugFrom, ...(requested && slug !== requested ? { requestedSlug: requested, slugFallback: fallback ?? 'taken' } : {}) } }, m);
      Object.assign(tenant, { slug, slugSource: input.slugFrom });
      await this.tenants.save(tenant, m);
      return from;
    }
    return null;
  }

  /** Enforced, audited status change. Returns false (and does nothing) if already in `to`. */
  async transition(tenant: Tenant, to: TenantStatus, cause: Cause, m: EntityManager, detail: Record<string, unknown> = {}): Promise<boolean> {
    if (tenant.status === to) return false;
    assertTransition(tenant.status, to);
    const from = tenant.status;
    tenant.status = to;
    if (to === TenantStatus.Deleted) tenant.deletedAt = this.now();
    await this.tenants.save(tenant, m);
    await this.tenants.audit({ tenantId: tenant.id, action: 'status_changed', fromStatus: from, toStatus: to, causeType: cause.type, causeId: cause.id, detail }, m);
    return true;
  }

  canTransition(tenant: Tenant, to: TenantStatus): boolean {
    return tenant.status === to || canTransition(tenant.status, to);
  }

  /**
   * Suspends, recording who and why. An admin suspending a tenant billing already suspended takes
   * the suspension over (billing will not lift it any more); an admin re-suspending an admin
   * suspension with another reason replaces the reason. Both are audited (suspend_reason_changed);
   * other re-suspensions change nothing.
   */
  async suspend(tenant: Tenant, cause: Cause, reason: string, m: EntityManager, suspension: Suspension): Promise<boolean> {
    if (tenant.status === TenantStatus.Suspended) {
      if (suspension.by !== SuspendedBy.Admin) return false;
      if (tenant.suspendedBy === SuspendedBy.Admin && tenant.suspendReason === reason) return false;
      await this.tenants.audit({ tenantId: tenant.id, action: 'suspend_reason_changed', causeType: cause.type, causeId: cause.id, detail: { from: { by: tenant.suspendedBy, cause: tenant.suspendCause, reason: tenant.suspendReason }, to: { ...suspension, reason } } }, m);
      Object.assign(tenant, { suspendedBy: suspension.by, suspendCause: suspension.cause, suspendReason: reason });
      await this.tenants.save(tenant, m);
      return true;
    }
    if (!canSuspend(tenant.status)) return false;
    Object.assign(tenant, { suspendedBy: suspension.by, suspendCause: suspension.cause, suspendReason: reason });
    return this.transition(tenant, TenantStatus.Suspended, cause, m, { reason, by: suspension.by, cause: suspension.cause });
  }

  /** Back to active, or back into provisioning if it never finished. */
  async resume(tenant: Tenant, cause: Cause, m: EntityManager): Promise<boolean> {
    if (tenant.status !== TenantStatus.Suspended) return false;
    Object.assign(tenant, { suspendReason: null, suspendedBy: null, suspendCause: null });
    const connection = await this.tenants.findConnection(tenant.id, m);
    if (connection) return this.transition(tenant, TenantStatus.Active, cause, m);
    await this.transition(tenant, TenantStatus.Provisioning, cause, m, { reason: 'resumed before provisioning finished' });
    await this.enqueueProvision(tenant.id, m);
    return true;
  }

  /** Schedules offboarding at `at` (now = immediately). Refuses an active tenant unless forced. */
  async scheduleOffboarding(tenant: Tenant, at: Date, cause: Cause, m: EntityManager, force = false): Promise<void> {
    if (tenant.status === TenantStatus.Deleted || tenant.status === TenantStatus.Deprovisioning) return;
    if (tenant.status === TenantStatus.Active && !force && at <= this.now()) throw tenantStillActive();
    tenant.offboardAt = at;
    await this.tenants.save(tenant, m);
    await this.tenants.audit({ tenantId: tenant.id, action: 'offboarding_scheduled', causeType: cause.type, causeId: cause.id, detail: { at: at.toISOString(), force } }, m);
    if (at <= this.now()) await this.startOffboarding(tenant, cause, m);
  }

  async cancelOffboarding(tenant: Tenant, cause: Cause, m: EntityManager): Promise<void> {
    if (!tenant.offboardAt) return;
    tenant.offboardAt = null;
    await this.tenants.save(tenant, m);
    await this.tenants.audit({ tenantId: tenant.id, action: 'offboarding_cancelled', causeType: cause.type, causeId: cause.id }, m);
  }

  async startOffboarding(tenant: Tenant, cause: Cause, m: EntityManager): Promise<void> {
    await this.jobs.cancelOpen(tenant.id, JobType.Provision, m);
    await this.transition(tenant, TenantStatus.Deprovisioning, cause, m);
    await this.jobs.enqueue({ type: JobType.Deprovision, tenantId: tenant.id, dedupeKey: `deprovision:${tenant.id}` }, m);
  }

  /** The worker's periodic sweep: grace-period suspensions and due offboardings. */
  async runScheduledTransitions(): Promise<number> {
    let changed = 0;
    const now = this.now();
    const cutoff = new Date(now.getTime() - this.config.SUSPEND_GRACE_PERIOD_SECONDS * 1000);
    for (const due of await this.tenants.dueForGraceSuspension(cutoff)) {
      changed += await this.locked(due.id, async (t, m) => {
        if (!t.pastDueSince || t.pastDueSince > cutoff || !['past_due', 'unpaid'].includes(t.billingStatus ?? '')) return false;
        const cause = t.billingStatus === 'unpaid' ? SuspendCause.PaymentUnpaid : SuspendCause.PaymentPastDue;
        return this.suspend(t, { type: 'system', id: 'grace-period' }, `payment ${t.billingStatus}`, m, { by: SuspendedBy.Billing, cause });
      });
    }
    for (const due of await this.tenants.dueForOffboarding(now)) {
      changed += await this.locked(due.id, async (t, m) => {
        if (!t.offboardAt || t.offboardAt > now || !sweepMayOffboard(t)) return false;
        await this.startOffboarding(t, { type: 'system', id: 'retention-expired' }, m);
        return true;
      });
    }
    return changed;
  }

  /** Runs `fn` on a row-locked tenant in a transaction, then republishes the directory entry. */
  async locked(id: string, fn: (t: Tenant, m: EntityManager) => Promise<boolean>): Promise<number> {
    const tenant = await this.tenants.transaction(async (m) => {
      const t = await this.tenants.findById(id, m, true);
      if (!t) throw tenantNotFound(id);
      return (await fn(t, m)) ? t : null;
    });
    if (tenant) await this.publish(tenant);
    return tenant ? 1 : 0;
  }

  /** Drops the directory entry of a slug the tenant no longer has (renamed before it went live). */
  async unpublishSlug(slug: string, tenantId: string): Promise<void> {
    await this.directory.removeTenant(slug, tenantId, null);
  }

  /**
   * Pushes the tenant's routing entry (never a password) to the directory and invalidates replicas.
   * Publishes what is committed, not the caller's copy (another process may have changed the tenant
   * since: a webhook's copy still `pending` must not overwrite the worker's `active`). The row is read
   * FOR UPDATE and held across the cache write, so a concurrent change commits, and then publishes,
   * only after this entry is written: the last entry written is always the latest state. Records the
   * version published (see {@link republishUnpublished}) — only when every cache write landed.
   */
  async publish(tenant: Pick<Tenant, 'id'>): Promise<void> {
    await this.tenants.transaction(async (m) => {
      const t = await this.tenants.findById(tenant.id, m, true);
      if (!t) return;
      if (await this.publishLocked(t, await this.tenants.findConnection(t.id, m))) await this.tenants.markPublished(t.id, t.version, m);
    });
  }

  /**
   * Republishes tenants whose last change never reached the directory (the process that committed it
   * died before its after-commit write): changed at least `graceSeconds` ago, so in-flight publishes
   * are left to finish. Returns how many were republished.
   */
  async republishUnpublished(graceSeconds = 5, limit = 200): Promise<number> {
    const ids = await this.tenants.unpublished(graceSeconds, limit);
    for (const id of ids) await this.publish({ id });
    if (ids.length) this.logger.info({ event: 'directory.repair', tenants: ids.length }, 'republished tenants whose directory write was lost');
    return ids.length;
  }

  /**
   * Writes the routing entry of a tenant the caller holds row-locked (FOR SHARE or FOR UPDATE) with
   * its connection row, so no concurrent change can publish in between. Inside the caller's
   * transaction, before its commit: if that commit is lost the entry runs ahead of the database
   * until the next publish (a webhook is redelivered until acknowledged; the reconciler repairs the rest).
   * False when a cache write failed (reported, not thrown): the caller must not mark it published.
   */
  async publishLocked(t: Tenant, c: TenantConnection | null): Promise<boolean> {
    if (t.status === TenantStatus.Deleted) return this.directory.removeTenant(t.slug, t.id, t.customDomain);
    const entry: DirectoryEntry = {
      tenantId: t.id, slug: t.slug, status: t.status, tier: t.tier,
      host: c?.host ?? null, port: c?.port ?? null, database: c?.database ?? null, username: c?.username ?? null, secretRef: c?.secretRef ?? null,
      customDomain: t.customDomain, revision: `${t.version}:${c?.rotatedAt?.getTime() ?? 0}`,
    };
    const written = await this.directory.publishTenant(entry);
    this.logger.debug({ tenantId: t.id, status: t.status, written }, 'directory entry published');
    return written;
  }
}

export function isUuid(v: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);
}
