import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { DATA_SOURCE } from '../common/tokens';
import { Job, JobStatus, JobType } from './job.entity';
import { ProvisioningStep } from './provisioning-step.entity';

export interface EnqueueInput {
  type: JobType;
  tenantId?: string | null;
  payload?: Record<string, unknown>;
  /** At most one queued/running job per key: enqueueing again is a no-op. */
  dedupeKey?: string;
  runAt?: Date;
  maxAttempts?: number;
}

const MAX_LOG_CHARS = 64 * 1024;
export const JOBS_CHANNEL = 'silo_jobs';

/**
 * A Postgres queue (FOR UPDATE SKIP LOCKED) rather than pg-boss: jobs must be enqueued in the
 * same transaction as the webhook event and tenant change that cause them, through TypeORM.
 */
@Injectable()
export class JobRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  /** Returns the new job id, or null if an open job with the same dedupe key exists. */
  async enqueue(input: EnqueueInput, m: EntityManager = this.ds.manager, defaultMaxAttempts = 8): Promise<string | null> {
    const id = randomUUID();
    const rows: Array<{ id: string }> = await m.query(
      `INSERT INTO jobs (id, type, tenant_id, payload, status, max_attempts, run_at, dedupe_key)
       VALUES ($1, $2, $3, $4, 'queued', $5, COALESCE($6, now()), $7)
       ON CONFLICT (dedupe_key) WHERE status IN ('queued','running') DO NOTHING RETURNING id`,
      [id, input.type, input.tenantId ?? null, JSON.stringify(input.payload ?? {}), input.maxAttempts ?? defaultMaxAttempts, input.runAt ?? null, input.dedupeKey ?? null],
    );
    // Delivered when the caller's transaction commits: idle workers wake at once instead of at their next poll.
    if (rows[0]) await m.query(`SELECT pg_notify('${JOBS_CHANNEL}', '')`);
    return rows[0]?.id ?? null;
  }

  /**
   * Claims the next due job: queued ones, and running ones whose lease expired (their worker
   * died). A tenant never has two jobs running at once.
   */
  async claim(workerId: string, leaseSeconds: number): Promise<Job | null> {
    const res: unknown = await this.ds.query(
      `UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1,
              locked_until = now() + make_interval(secs => $2), updated_at = now()
       WHERE id = (
         SELECT j.id FROM jobs j
         WHERE ((j.status = 'queued' AND j.run_at <= now()) OR (j.status = 'running' AND j.locked_until < now()))
           AND (j.tenant_id IS NULL OR NOT EXISTS (
             SELECT 1 FROM jobs o WHERE o.tenant_id = j.tenant_id AND o.id <> j.id AND o.status = 'running' AND o.locked_until >= now()))
         ORDER BY j.run_at, j.created_at
         LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING id`,
      [workerId, leaseSeconds],
    );
    const id = updatedRows<{ id: string }>(res)[0]?.id;
    return id ? this.ds.getRepository(Job).findOneBy({ id }) : null;
  }

  async extendLease(id: string, workerId: string, leaseSeconds: number): Promise<boolean> {
    const res = await this.ds.query(
      `UPDATE jobs SET locked_until = now() + make_interval(secs => $3) WHERE id = $1 AND locked_by = $2 AND status = 'running'`,
      [id, workerId, leaseSeconds],
    );
    return affected(res) > 0;
  }

  async succeed(id: string, workerId: string): Promise<void> {
    await this.ds.query(
      `UPDATE jobs SET status = 'succeeded', locked_by = NULL, locked_until = NULL, finished_at = now(), updated_at = now(), last_error = NULL
       WHERE id = $1 AND locked_by = $2`,
      [id, workerId],
    );
  }

  /** Schedules a retry at `retryAt`, or fails the job for good when retryAt is null. */
  async fail(id: string, workerId: string, error: string, retryAt: Date | null): Promise<void> {
    await this.ds.query(
      `UPDATE jobs SET status = $3, last_error = $4, run_at = COALESCE($5, run_at), locked_by = NULL, locked_until = NULL,
              finished_at = CASE WHEN $3 = 'failed' THEN now() END, updated_at = now()
       WHERE id = $1 AND locked_by = $2`,
      [id, workerId, retryAt ? JobStatus.Queued : JobStatus.Failed, error.slice(0, 2000), retryAt],
    );
  }

  async appendLog(id: string, line: string): Promise<void> {
    await this.ds.query(
      `UPDATE jobs SET log = right(log || $2 || E'\\n', ${MAX_LOG_CHARS}) WHERE id = $1`,
      [id, `${new Date().toISOString()} ${line}`],
    );
  }

  async cancelOpen(tenantId: string, type: JobType, m: EntityManager = this.ds.manager): Promise<number> {
    const res = await m.query(
      `UPDATE jobs SET status = 'cancelled', finished_at = now(), updated_at = now() WHERE tenant_id = $1 AND type = $2 AND status = 'queued'`,
      [tenantId, type],
    );
    return affected(res);
  }

  /** Moves an open job's run time (e.g. expedite an offboarding). */
  async reschedule(tenantId: string, type: JobType, runAt: Date, m: EntityManager = this.ds.manager): Promise<number> {
    const res = await m.query(`UPDATE jobs SET run_at = $3, updated_at = now() WHERE tenant_id = $1 AND type = $2 AND status = 'queued'`, [tenantId, type, runAt]);
    return affected(res);
  }

  forTenant(tenantId: string, limit = 20): Promise<Job[]> {
    return this.ds.getRepository(Job).find({ where: { tenantId }, order: { createdAt: 'DESC' }, take: limit });
  }

  findById(id: string): Promise<Job | null> {
    return this.ds.getRepository(Job).findOneBy({ id });
  }

  async completedSteps(tenantId: string, operation: string): Promise<Map<string, unknown>> {
    const rows = await this.ds.getRepository(ProvisioningStep).find({ where: { tenantId, operation } });
    return new Map(rows.map((r) => [r.step, r.result]));
  }

  async recordStep(tenantId: string, operation: string, step: string, result: unknown): Promise<void> {
    await this.ds.query(
      `INSERT INTO provisioning_steps (tenant_id, operation, step, result) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, operation, step) DO UPDATE SET result = EXCLUDED.result, completed_at = now()`,
      [tenantId, operation, step, JSON.stringify(result ?? null)],
    );
  }

  async clearSteps(tenantId: string, operation: string): Promise<void> {
    await this.ds.query('DELETE FROM provisioning_steps WHERE tenant_id = $1 AND operation = $2', [tenantId, operation]);
  }
}

/** TypeORM's postgres driver returns [rows, count] for UPDATE/DELETE via query(). */
function updatedRows<T>(res: unknown): T[] {
  return Array.isArray(res) && Array.isArray(res[0]) ? (res[0] as T[]) : [];
}

function affected(res: unknown): number {
  return Array.isArray(res) && typeof res[1] === 'number' ? res[1] : 0;
}
