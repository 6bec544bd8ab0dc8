import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In } from 'typeorm';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, DATA_SOURCE } from '../common/tokens';
import { Job, JobStatus, JobType } from './job.entity';
import { JobRun, JobRunOutcome } from './job-run.entity';
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
const UNIQUE_VIOLATION = '23505';
export const JOBS_CHANNEL = 'silo_jobs';

/**
 * A Postgres queue (FOR UPDATE SKIP LOCKED) rather than pg-boss: jobs must be enqueued in the
 * same transaction as the webhook event and tenant change that cause them, through TypeORM.
 */
@Injectable()
export class JobRepository {
  constructor(
    @Inject(DATA_SOURCE) private readonly ds: DataSource,
    @Inject(CONFIG) private readonly config: Pick<ControlPlaneConfig, 'JOB_MAX_ATTEMPTS'>,
  ) {}

  /** Returns the new job id, or null if an open job with the same dedupe key exists. Attempts: `input.maxAttempts`, else JOB_MAX_ATTEMPTS. */
  async enqueue(input: EnqueueInput, m: EntityManager = this.ds.manager): Promise<string | null> {
    const id = randomUUID();
    const rows: Array<{ id: string }> = await m.query(
      `INSERT INTO jobs (id, type, tenant_id, payload, status, max_attempts, run_at, dedupe_key)
       VALUES ($1, $2, $3, $4, 'queued', $5, COALESCE($6, now()), $7)
       ON CONFLICT (dedupe_key) WHERE status IN ('queued','running') DO NOTHING RETURNING id`,
      [id, input.type, input.tenantId ?? null, JSON.stringify(input.payload ?? {}), input.maxAttempts ?? this.config.JOB_MAX_ATTEMPTS, input.runAt ?? null, input.dedupeKey ?? null],
    );
    // Delivered when the caller's transaction commits: idle workers wake at once instead of at their next poll.
    if (rows[0]) await m.query(`SELECT pg_notify('${JOBS_CHANNEL}', '')`);
    return rows[0]?.id ?? null;
  }

  /**
   * Claims the next due job: queued ones of tenants with no running job, and running ones whose
   * lease expired (their worker died) with attempts left. A tenant never has two jobs running at
   * once: the partial unique index `jobs_one_running_per_tenant` refuses the second claim even
   * when two workers race (the NOT EXISTS alone cannot see an uncommitted claim); the loser
   * retries with the next job. The claim, the lost run's end and the new run's start are one statement.
   */
  async claim(workerId: string, leaseSeconds: number): Promise<Job | null> {
    for (let tries = 0; tries < 5; tries++) {
      let res: unknown;
      try {
        res = await this.ds.query(
          `WITH ts AS (SELECT clock_timestamp() AS t),
           picked AS (
             SELECT j.id FROM jobs j
             WHERE (j.status = 'queued' AND j.run_at <= now()
                    AND (j.tenant_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs o WHERE o.tenant_id = j.tenant_id AND o.status = 'running')))
                OR (j.status = 'running' AND j.locked_until < now() AND j.attempts < j.max_attempts)
             ORDER BY j.run_at, j.created_at
             LIMIT 1 FOR UPDATE SKIP LOCKED),
           claimed AS (
             UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, locked_by = $1,
                    locked_until = now() + make_interval(secs => $2), updated_at = now()
               FROM picked WHERE jobs.id = picked.id
             RETURNING jobs.id, jobs.attempts),
           lost AS (
             UPDATE job_runs r SET finished_at = (SELECT t FROM ts), outcome = 'lost', error = 'lease expired'
               FROM claimed WHERE r.job_id = claimed.id AND r.finished_at IS NULL),
           started AS (
             -- The lost attempt ends and the new one starts at the same instant: never an overlap on record.
             INSERT INTO job_runs (job_id, attempt, worker_id, started_at) SELECT id, attempts, $1, (SELECT t FROM ts) FROM claimed)
           SELECT id FROM claimed`,
          [workerId, leaseSeconds],
        );
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) continue; // another worker just claimed this tenant's job
        throw err;
      }
      const id = (res as Array<{ id: string }>)[0]?.id;
      return id ? this.ds.getRepository(Job).findOneBy({ id }) : null;
    }
    return null;
  }

  /**
   * Ends, as failed, running jobs whose lease expired with no attempts left (their worker died on
   * the last one): otherwise a job that kills its worker would be re-claimed forever. Returns them
   * so the worker can run the type's onExhausted hook.
   */
  async failLostJobs(): Promise<Job[]> {
    const rows: Array<{ id: string }> = await this.ds.query(
      `WITH lost AS (
         UPDATE jobs SET status = 'failed', locked_by = NULL, locked_until = NULL, finished_at = now(), updated_at = now(),
                last_error = 'worker lost during attempt ' || attempts || ' of ' || max_attempts || ' (lease expired)'
          WHERE id IN (SELECT id FROM jobs WHERE status = 'running' AND locked_until < now() AND attempts >= max_attempts FOR UPDATE SKIP LOCKED)
         RETURNING id, attempts),
       ended AS (
         UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = 'lost', error = 'lease expired'
           FROM lost WHERE r.job_id = lost.id AND r.finished_at IS NULL)
       SELECT id FROM lost`,
    );
    return rows.length ? this.ds.getRepository(Job).findBy({ id: In(rows.map((r) => r.id)) }) : [];
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
      `WITH done AS (
         UPDATE jobs SET status = 'succeeded', locked_by = NULL, locked_until = NULL, finished_at = now(), updated_at = now(), last_error = NULL
          WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING id, attempts)
       UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = 'succeeded' FROM done WHERE r.job_id = done.id AND r.attempt = done.attempts`,
      [id, workerId],
    );
  }

  /** Schedules a retry at `retryAt`, or fails the job for good when retryAt is null. */
  async fail(id: string, workerId: string, error: string, retryAt: Date | null): Promise<void> {
    await this.ds.query(
      `WITH done AS (
         UPDATE jobs SET status = $3, last_error = $4, run_at = COALESCE($5, run_at), locked_by = NULL, locked_until = NULL,
                finished_at = CASE WHEN $3 = 'failed' THEN now() END, updated_at = now()
          WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING id, attempts)
       UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = $6, error = $4 FROM done WHERE r.job_id = done.id AND r.attempt = done.attempts`,
      [id, workerId, retryAt ? JobStatus.Queued : JobStatus.Failed, error.slice(0, 2000), retryAt, retryAt ? JobRunOutcome.Retry : JobRunOutcome.Failed],
    );
  }

  /** Hands a running job back to the queue at once (this worker is exiting); the attempt counts as a retry. */
  async release(id: string, workerId: string, reason: string): Promise<void> {
    await this.ds.query(
      `WITH released AS (
         UPDATE jobs SET status = 'queued', run_at = now(), locked_by = NULL, locked_until = NULL, last_error = $3, updated_at = now()
          WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING id, attempts)
       UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = 'retry', error = $3 FROM released WHERE r.job_id = released.id AND r.attempt = released.attempts`,
      [id, workerId, reason],
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

  /** Brings a queued job's run time forward to `runAt` (e.g. expedite an offboarding); never later. Returns how many moved. */
  async reschedule(tenantId: string, type: JobType, runAt: Date, m: EntityManager = this.ds.manager): Promise<number> {
    const res = await m.query(`UPDATE jobs SET run_at = $3, updated_at = now() WHERE tenant_id = $1 AND type = $2 AND status = 'queued' AND run_at > $3`, [tenantId, type, runAt]);
    return affected(res);
  }

  /** The attempts of these jobs, oldest first. */
  runsOf(jobIds: string[]): Promise<JobRun[]> {
    return jobIds.length ? this.ds.getRepository(JobRun).find({ where: { jobId: In(jobIds) }, order: { startedAt: 'ASC' } }) : Promise.resolve([]);
  }

  forTenant(tenantId: string, limit = 20): Promise<Job[]> {
    return this.ds.getRepository(Job).find({ where: { tenantId }, order: { createdAt: 'DESC' }, take: limit });
  }

  findById(id: string): Promise<Job | null> {
    return this.ds.getRepository(Job).findOneBy({ id });
  }

  async completedSteps(tenantId: string, operation: string, m: EntityManager = this.ds.manager): Promise<Map<string, unknown>> {
    const rows = await m.getRepository(ProvisioningStep).find({ where: { tenantId, operation } });
    return new Map(rows.map((r) => [r.step, r.result]));
  }

  async recordStep(tenantId: string, operation: string, step: string, result: unknown, m: EntityManager = this.ds.manager): Promise<void> {
    await m.query(
      `INSERT INTO provisioning_steps (tenant_id, operation, step, result) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id, operation, step) DO UPDATE SET result = EXCLUDED.result, completed_at = now()`,
      [tenantId, operation, step, JSON.stringify(result ?? null)],
    );
  }

  async clearSteps(tenantId: string, operation: string, m: EntityManager = this.ds.manager): Promise<void> {
    await m.query('DELETE FROM provisioning_steps WHERE tenant_id = $1 AND operation = $2', [tenantId, operation]);
  }
}

/** TypeORM's postgres driver returns [rows, count] for UPDATE/DELETE via query(). */
function affected(res: unknown): number {
  return Array.isArray(res) && typeof res[1] === 'number' ? res[1] : 0;
}
