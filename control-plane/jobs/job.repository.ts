import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager, In } from 'typeorm';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, DATA_SOURCE } from '../common/tokens';
import { write } from '../db/pipelined-transaction';
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

/** A claimed job and the number of its run (`job_runs.attempt`: 1, 2, … per job, every run counted, handed back or not). */
export type ClaimedJob = Job & { run: number };

/** How a hand-back at shutdown left the job: queued again, or failed (no attempts and no free hand-backs left); `counted`: it used an attempt. */
export interface ReleaseOutcome {
  status: JobStatus.Queued | JobStatus.Failed;
  counted: boolean;
}

/** SQL: run `param` (when not null) of the job row `alias` is still open, i.e. not reaped, re-claimed or finished. */
const RUN_IS_OPEN = (param: string, alias = 'jobs') =>
  `(${param}::int IS NULL OR EXISTS (SELECT 1 FROM job_runs o WHERE o.job_id = ${alias}.id AND o.attempt = ${param} AND o.finished_at IS NULL))`;

/**
 * A Postgres queue (FOR UPDATE SKIP LOCKED) rather than pg-boss: jobs must be enqueued in the
 * same transaction as the webhook event and tenant change that cause them, through TypeORM.
 */
/**
 * Queued or running jobs per tenant, read in the caller's transaction (the reconciler reads them in
 * the same snapshot as the tenants, so a provisioning that just finished does not look stuck).
 */
export async function openJobsByTenant(m: EntityManager): Promise<Map<string, number>> {
  const rows: Array<{ tenant_id: string; n: number }> = await m.query(
    `SELECT tenant_id, count(*)::int AS n FROM jobs WHERE tenant_id IS NOT NULL AND status IN ('queued','running') GROUP BY tenant_id`,
  );
  return new Map(rows.map((r) => [r.tenant_id, r.n]));
}

@Injectable()
export class JobRepository {
  constructor(
    @Inject(DATA_SOURCE) private readonly ds: DataSource,
    @Inject(CONFIG) private readonly config: Pick<ControlPlaneConfig, 'JOB_MAX_ATTEMPTS'>,
  ) {}

  /** Returns the new job id, or null if an open job with the same dedupe key exists. Attempts: `input.maxAttempts`, else JOB_MAX_ATTEMPTS. */
  async enqueue(input: EnqueueInput, m: EntityManager = this.ds.manager): Promise<string | null> {
    const { sql, params } = this.enqueueStatement(input);
    const rows: Array<{ id: string }> = await m.query(sql, params);
    return rows[0]?.id ?? null;
  }

  /**
   * `enqueue` without waiting for the answer, for a job no open job can share a dedupe key with (the
   * first provisioning of a tenant created in the caller's transaction): deferred inside a pipelined
   * transaction, so it costs no round trip of its own. Returns the id the job gets.
   */
  async enqueueFresh(input: EnqueueInput, m: EntityManager): Promise<string> {
    const { id, sql, params } = this.enqueueStatement(input);
    await write(m, sql, params);
    return id;
  }

  private enqueueStatement(input: EnqueueInput): { id: string; sql: string; params: unknown[] } {
    const id = randomUUID();
    // The NOTIFY (only when a job was inserted) is delivered when the caller's transaction commits:
    // idle workers wake at once instead of at their next poll. One statement, one round trip.
    const sql = `WITH job AS (
         INSERT INTO jobs (id, type, tenant_id, payload, status, max_attempts, run_at, dedupe_key)
         VALUES ($1, $2, $3, $4, 'queued', $5, COALESCE($6, now()), $7)
         ON CONFLICT (dedupe_key) WHERE status IN ('queued','running') DO NOTHING RETURNING id)
       SELECT id, pg_notify('${JOBS_CHANNEL}', '') FROM job`;
    return { id, sql, params: [id, input.type, input.tenantId ?? null, JSON.stringify(input.payload ?? {}), input.maxAttempts ?? this.config.JOB_MAX_ATTEMPTS, input.runAt ?? null, input.dedupeKey ?? null] };
  }

  /**
   * Claims the next due queued job of a tenant with no running job, with attempts left, and
   * records its run (numbered 1, 2, … per job). A tenant never has two jobs running at once: the
   * partial unique index `jobs_one_running_per_tenant` refuses the second claim even when two
   * workers race (the NOT EXISTS alone cannot see an uncommitted claim); the loser retries with
   * the next job. Jobs whose worker died are not claimed here: {@link reapLostJobs} ends their
   * run as lost and queues them (or fails them) first.
   */
  async claim(workerId: string, leaseSeconds: number): Promise<ClaimedJob | null> {
    for (let tries = 0; tries < 5; tries++) {
      let res: unknown;
      try {
        res = await this.ds.query(
          `WITH picked AS (
             SELECT j.id FROM jobs j
             WHERE j.status = 'queued' AND j.run_at <= now() AND j.attempts < j.max_attempts
               AND (j.tenant_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs o WHERE o.tenant_id = j.tenant_id AND o.status = 'running'))
             ORDER BY j.run_at, j.created_at
             LIMIT 1 FOR UPDATE SKIP LOCKED),
           claimed AS (
             UPDATE jobs SET status = 'running', attempts = jobs.attempts + 1, locked_by = $1,
                    locked_until = now() + make_interval(secs => $2), updated_at = now()
               FROM picked WHERE jobs.id = picked.id
             RETURNING jobs.id),
           started AS (
             -- The job's row lock (held by this claim) serialises run numbers of one job.
             INSERT INTO job_runs (job_id, attempt, worker_id, started_at)
             SELECT c.id, (SELECT coalesce(max(r.attempt), 0) + 1 FROM job_runs r WHERE r.job_id = c.id), $1, clock_timestamp() FROM claimed c
             RETURNING job_id, attempt)
           SELECT job_id AS id, attempt AS run FROM started`,
          [workerId, leaseSeconds],
        );
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) continue; // another worker just claimed this tenant's job
        throw err;
      }
      const row = (res as Array<{ id: string; run: number }>)[0];
      if (!row) return null;
      const job = await this.ds.getRepository(Job).findOneBy({ id: row.id });
      return job && Object.assign(job, { run: row.run });
    }
    return null;
  }

  /**
   * Running jobs whose lease expired (their worker died, or stopped renewing): their open run
   * ends now as `lost` (the time the loss was seen), and the job is queued again at its old place
   * if it has attempts left, else failed ("worker lost during attempt N of N") so that a job that
   * kills its worker is not re-claimed forever. Also fails queued jobs left with no attempts
   * (none are made so any more; older releases could). Returns the jobs failed here so the worker
   * can run the type's onExhausted hook.
   */
  async reapLostJobs(): Promise<Job[]> {
    const rows: Array<{ id: string }> = await this.ds.query(
      `WITH expired AS (
         SELECT id FROM jobs WHERE status = 'running' AND locked_until < now() FOR UPDATE SKIP LOCKED),
       reaped AS (
         UPDATE jobs j SET status = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
                finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
                locked_by = NULL, locked_until = NULL, updated_at = now(),
                last_error = 'worker lost during attempt ' || j.attempts || ' of ' || j.max_attempts || ' (lease expired)'
           FROM expired WHERE j.id = expired.id AND j.status = 'running'
         RETURNING j.id, j.status),
       ended AS (
         UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = 'lost', error = 'lease expired'
           FROM reaped WHERE r.job_id = reaped.id AND r.finished_at IS NULL),
       used_up AS (
         UPDATE jobs SET status = 'failed', finished_at = now(), updated_at = now(),
                last_error = 'attempts used up (' || attempts || ' of ' || max_attempts || ')' || coalesce(': ' || last_error, '')
          WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND attempts >= max_attempts FOR UPDATE SKIP LOCKED)
         RETURNING id)
       SELECT id FROM reaped WHERE status = 'failed' UNION ALL SELECT id FROM used_up`,
    );
    return rows.length ? this.ds.getRepository(Job).findBy({ id: In(rows.map((r) => r.id)) }) : [];
  }

  /**
   * Renews the lease of run `run` (when given) held by `workerId`. False once the job is no
   * longer this run's: reaped, re-claimed (even by the same worker), finished.
   */
  async extendLease(id: string, workerId: string, leaseSeconds: number, run?: number): Promise<boolean> {
    const res = await this.ds.query(
      `UPDATE jobs SET locked_until = now() + make_interval(secs => $3) WHERE id = $1 AND locked_by = $2 AND status = 'running' AND ${RUN_IS_OPEN('$4')}`,
      [id, workerId, leaseSeconds, run ?? null],
    );
    return affected(res) > 0;
  }

  /** Marks the job succeeded if run `run` of `workerId` still holds it. Returns whether it did. */
  async succeed(id: string, workerId: string, run?: number): Promise<boolean> {
    const rows: unknown[] = await this.ds.query(
      `WITH done AS (
         UPDATE jobs SET status = 'succeeded', locked_by = NULL, locked_until = NULL, finished_at = now(), updated_at = now(), last_error = NULL
          WHERE id = $1 AND locked_by = $2 AND status = 'running' AND ${RUN_IS_OPEN('$3')} RETURNING id),
       ended AS (
         UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = 'succeeded' FROM done
          WHERE r.job_id = done.id AND r.finished_at IS NULL AND ($3::int IS NULL OR r.attempt = $3))
       SELECT id FROM done`,
      [id, workerId, run ?? null],
    );
    return rows.length > 0;
  }

  /**
   * Schedules a retry at `retryAt`, or fails the job for good when retryAt is null, if run `run`
   * of `workerId` still holds it. Returns whether it did.
   */
  async fail(id: string, workerId: string, error: string, retryAt: Date | null, run?: number): Promise<boolean> {
    const rows: unknown[] = await this.ds.query(
      `WITH done AS (
         UPDATE jobs SET status = $3, last_error = $4, run_at = COALESCE($5, run_at), locked_by = NULL, locked_until = NULL,
                finished_at = CASE WHEN $3 = 'failed' THEN now() END, updated_at = now()
          WHERE id = $1 AND locked_by = $2 AND status = 'running' AND ${RUN_IS_OPEN('$7')} RETURNING id),
       ended AS (
         UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = $6, error = $4 FROM done
          WHERE r.job_id = done.id AND r.finished_at IS NULL AND ($7::int IS NULL OR r.attempt = $7))
       SELECT id FROM done`,
      [id, workerId, retryAt ? JobStatus.Queued : JobStatus.Failed, error.slice(0, 2000), retryAt, retryAt ? JobRunOutcome.Retry : JobRunOutcome.Failed, run ?? null],
    );
    return rows.length > 0;
  }

  /**
   * Hands a running job back to the queue at once because its worker is shutting down (the
   * handler has stopped). A shutdown is not the job's fault: the attempt is not counted, even on
   * the last one. Bounded all the same: a job gets at most `max_attempts` such free hand-backs
   * (runs minus counted attempts); after that a hand-back counts, and one on the last attempt
   * fails the job. Returns the job's new status, or null if this run no longer held it.
   */
  async release(id: string, workerId: string, reason: string, run?: number): Promise<ReleaseOutcome | null> {
    const rows: Array<{ status: JobStatus.Queued | JobStatus.Failed; counted: boolean }> = await this.ds.query(
      `WITH cur AS (
         SELECT j.id, (SELECT count(*) FROM job_runs r WHERE r.job_id = j.id)::int - j.attempts < j.max_attempts AS free
           FROM jobs j WHERE j.id = $1 AND j.locked_by = $2 AND j.status = 'running' AND ${RUN_IS_OPEN('$4', 'j')}
           FOR UPDATE OF j),
       released AS (
         UPDATE jobs SET attempts = CASE WHEN cur.free THEN jobs.attempts - 1 ELSE jobs.attempts END,
                status = CASE WHEN cur.free OR jobs.attempts < jobs.max_attempts THEN 'queued' ELSE 'failed' END,
                finished_at = CASE WHEN cur.free OR jobs.attempts < jobs.max_attempts THEN NULL ELSE now() END,
                run_at = now(), locked_by = NULL, locked_until = NULL, last_error = $3, updated_at = now()
           FROM cur WHERE jobs.id = cur.id AND jobs.locked_by = $2 AND jobs.status = 'running'
         RETURNING jobs.id, jobs.status, NOT cur.free AS counted),
       ended AS (
         UPDATE job_runs r SET finished_at = clock_timestamp(), outcome = CASE WHEN released.status = 'failed' THEN 'failed' ELSE 'retry' END,
                error = $3 || CASE WHEN released.counted THEN '' ELSE ' (attempt not counted)' END
           FROM released WHERE r.job_id = released.id AND r.finished_at IS NULL AND ($4::int IS NULL OR r.attempt = $4))
       SELECT status, counted FROM released`,
      [id, workerId, reason.slice(0, 2000), run ?? null],
    );
    return rows[0] ?? null;
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

  /** The queue at a glance for the console: jobs by type and status, and failures in the last 24 hours. */
  async queueStats(): Promise<{ byStatus: Array<{ type: string; status: string; n: number }>; failedLastDay: number }> {
    const byStatus: Array<{ type: string; status: string; n: number }> = await this.ds.query(
      `SELECT type, status, count(*)::int AS n FROM jobs WHERE status IN ('queued','running') OR (status = 'failed' AND finished_at > now() - interval '1 day') GROUP BY type, status ORDER BY type, status`,
    );
    const failedLastDay = byStatus.filter((r) => r.status === 'failed').reduce((a, r) => a + r.n, 0);
    return { byStatus, failedLastDay };
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
