import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Logger } from '../../common/logger';
import { BillingReconciler } from '../billing/billing-reconciler';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, LOGGER } from '../common/tokens';
import { driftSummary, ReconcilerService } from '../operations/reconciler.service';
import { StorageQuotaService } from '../tenants/storage-quota.service';
import { TenantService } from '../tenants/tenant.service';
import { MAX_PERIODIC_INTERVAL_MS, PeriodicTaskRepository } from './periodic-task.repository';

export interface PeriodicTaskSpec {
  name: string;
  intervalMs: number;
  /** The setting the interval comes from, named when it is out of range. */
  setting?: string;
  /** Delay before the first run on a fresh installation. */
  firstDelayMs: number;
  run: () => Promise<unknown>;
}

const CHECK_EVERY_MS = 1_000;

/**
 * Runs the fleet-wide periodic tasks once per interval across every worker (the schedule lives in
 * `periodic_tasks`, see PeriodicTaskRepository), each in its own lane so a long reconcile never
 * delays the lifecycle sweep or job claims. Outcomes and results are recorded for the admin API.
 */
@Injectable()
export class PeriodicRunner {
  private timer: NodeJS.Timeout | null = null;
  private readonly active = new Map<string, Promise<void>>();
  private workerId = 'unknown';

  constructor(
    private readonly schedule: PeriodicTaskRepository,
    private readonly tenants: TenantService,
    private readonly reconciler: ReconcilerService,
    private readonly storage: StorageQuotaService,
    @Inject(CONFIG) private readonly config: ControlPlaneConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly modules: ModuleRef,
  ) {
    // Checked at start-up: an interval the schedule cannot store would fail every claim, quietly.
    for (const t of this.tasks()) {
      if (t.intervalMs > MAX_PERIODIC_INTERVAL_MS) {
        throw new Error(`${t.setting ?? t.name} is too long: periodic intervals are at most ${Math.floor(MAX_PERIODIC_INTERVAL_MS / 1000)} seconds (about 24 days)`);
      }
    }
  }

  private tasks(): PeriodicTaskSpec[] {
    const c = this.config;
    const tasks: PeriodicTaskSpec[] = [
      { name: 'lifecycle-sweep', intervalMs: 5_000, firstDelayMs: 0, run: async () => ({ changed: await this.tenants.runScheduledTransitions() }) },
      // A change whose directory write was lost with its process reaches the runtime within seconds, not at the next reconcile.
      { name: 'directory-repair', intervalMs: 5_000, firstDelayMs: 0, run: async () => ({ republished: await this.tenants.republishUnpublished() }) },
    ];
    if (c.RECONCILE_INTERVAL_SECONDS > 0) {
      tasks.push({
        name: 'reconcile', intervalMs: c.RECONCILE_INTERVAL_SECONDS * 1000, setting: 'RECONCILE_INTERVAL_SECONDS', firstDelayMs: c.RECONCILE_INTERVAL_SECONDS * 1000,
        // Report + safe repairs only; destructive ones need `silo reconcile --apply`.
        run: async () => {
          const r = await this.reconciler.run({ apply: false });
          return { drift: r.drift.length, kinds: [...new Set(r.drift.map((d) => d.kind))], tenants: driftSummary(r.drift).tenants, checked: r.checked };
        },
      });
    }
    if (c.STORAGE_SWEEP_INTERVAL_SECONDS > 0) {
      tasks.push({ name: 'storage-sweep', intervalMs: c.STORAGE_SWEEP_INTERVAL_SECONDS * 1000, setting: 'STORAGE_SWEEP_INTERVAL_SECONDS', firstDelayMs: c.STORAGE_SWEEP_INTERVAL_SECONDS * 1000, run: () => this.storage.sweep() });
    }
    if (c.STRIPE_SECRET_KEY && c.BILLING_RECONCILE_INTERVAL_SECONDS > 0) {
      const every = c.BILLING_RECONCILE_INTERVAL_SECONDS * 1000;
      tasks.push({
        name: 'billing-reconcile', intervalMs: every, firstDelayMs: every, setting: 'BILLING_RECONCILE_INTERVAL_SECONDS',
        // BillingModule's (it imports this module): looked up at run time, not injected.
        run: async () => {
          const r = await this.modules.get(BillingReconciler, { strict: false }).run({ repair: true });
          const pending = r.differences.filter((d) => !d.repaired);
          return { checked: r.checked, differences: r.differences.length, repaired: r.differences.length - pending.length, kinds: [...new Set(r.differences.map((d) => d.kind))], pending: pending.slice(0, 20).map((d) => ({ kind: d.kind, subscriptionId: d.subscriptionId, slug: d.slug })) };
        },
      });
    }
    return tasks;
  }

  start(workerId: string): void {
    if (this.timer) return;
    this.workerId = workerId;
    const loop = () => {
      this.check();
      this.timer = setTimeout(loop, CHECK_EVERY_MS);
      this.timer.unref?.();
    };
    loop();
  }

  /** Stops scheduling and waits for runs in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.active.values()]);
  }

  /** Runs every task that is due and not already running here; resolves when those runs end. */
  async runDue(): Promise<void> {
    this.check();
    await Promise.allSettled([...this.active.values()]);
  }

  private check(): void {
    for (const task of this.tasks()) {
      if (this.active.has(task.name)) continue;
      const lane = this.runIfDue(task).finally(() => this.active.delete(task.name));
      this.active.set(task.name, lane);
    }
  }

  private runIfDue(task: PeriodicTaskSpec): Promise<void> {
    return runPeriodicTaskIfDue(this.schedule, task, this.workerId, this.logger);
  }
}

/**
 * Runs `task` here if it is due and no replica is running it: the task's run lock is taken
 * before the claim and held until the run is recorded, so a run longer than the interval delays
 * the next one (it starts when this one ends) instead of overlapping it on another replica.
 */
export async function runPeriodicTaskIfDue(schedule: PeriodicTaskRepository, task: PeriodicTaskSpec, workerId: string, logger: Logger): Promise<void> {
  let claim;
  try {
    if (!(await schedule.tryLock(task.name))) return;
  } catch (err) {
    logger.warn({ err, task: task.name }, 'periodic task schedule unavailable');
    return;
  }
  try {
    try {
      claim = await schedule.claimDue(task.name, task.intervalMs, workerId, task.firstDelayMs);
    } catch (err) {
      logger.warn({ err, task: task.name }, 'periodic task schedule unavailable');
      return;
    }
    if (!claim) return;
    try {
      const result = await task.run();
      await schedule.finish(claim, 'ok', { result });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.warn({ event: 'periodic.failed', task: task.name, error: message }, 'periodic task failed');
      await schedule.finish(claim, 'failed', { error: message }).catch(() => undefined);
    }
  } finally {
    await schedule.unlock(task.name).catch((err: unknown) => logger.warn({ err, task: task.name }, 'periodic task lock release failed'));
  }
}
