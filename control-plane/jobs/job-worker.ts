import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import { isSiloError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, LOGGER, METRICS } from '../common/tokens';
import { JobHandler } from './job-handler';
import { JobStatus, JobType } from './job.entity';
import { JobLease } from './job-lease';
import { ClaimedJob, JOBS_CHANNEL, JobRepository } from './job.repository';
import { Client } from 'pg';
import { JOB_HANDLERS } from './job-handlers.token';
import { PeriodicRunner } from './periodic-runner';

/**
 * How long `stop()` waits, by default, for running jobs to finish, then for aborted ones to stop:
 * 22 s together, inside the 30 s after which exitOnSignal (and ECS, stopTimeout) give up.
 */
export const SHUTDOWN_GRACE_MS = 10_000;
export const SHUTDOWN_SETTLE_MS = 12_000;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2_147_483_647;

interface Execution {
  promise: Promise<void>;
  /** Asks the handler to stop: the worker is shutting down. */
  abort(): void;
  /** Stops renewing the lease (the handler would not stop): it expires and another worker reaps the job. */
  abandon(): void;
}

/**
 * Polls the jobs table with SKIP LOCKED. Each claimed job holds a lease that a heartbeat
 * extends; if this process dies, the lease expires and another worker resumes the job, whose
 * recorded steps make the retry converge. The worker keeps its own deadline for the lease
 * (JobLease): when renewals fail until it passes, or the database says another worker holds the
 * job, the handler's signal aborts.
 */
@Injectable()
export class JobWorker implements OnApplicationShutdown {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private running = false;
  /** Keyed by job and run: a job this worker lost may be claimed again by this same worker. */
  private readonly inFlight = new Map<string, Execution>();
  private timer: NodeJS.Timeout | null = null;
  private readonly processed: Counter<'type' | 'outcome'>;
  private listener: Client | null = null;
  private ticking: Promise<void> | null = null;
  private wakeAgain = false;

  constructor(
    private readonly jobs: JobRepository,
    private readonly periodic: PeriodicRunner,
    @Inject(JOB_HANDLERS) private readonly handlers: Map<JobType, JobHandler>,
    @Inject(CONFIG) private readonly config: ControlPlaneConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS) registry: Registry,
  ) {
    this.processed = new Counter({ name: 'silo_jobs_processed_total', help: 'Jobs finished by type and outcome', labelNames: ['type', 'outcome'], registers: [registry] });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.logger.info({ worker: this.id, concurrency: this.config.JOB_CONCURRENCY }, 'job worker started');
    void this.listen();
    this.schedule(0);
    this.periodic.start(this.id);
  }

  /** LISTEN for new jobs; polling stays as the fallback if this connection drops. */
  private async listen(): Promise<void> {
    const client = new Client({ connectionString: this.config.DATABASE_URL, application_name: 'silo-worker-listen' });
    client.on('error', () => undefined);
    client.on('end', () => {
      if (this.listener === client) this.listener = null;
      if (this.running) setTimeout(() => void this.listen(), 1_000).unref();
    });
    client.on('notification', () => {
      if (this.running && this.inFlight.size < this.config.JOB_CONCURRENCY) this.schedule(0);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${JOBS_CHANNEL}`);
      if (!this.running) return void (await client.end());
      this.listener = client;
    } catch (err) {
      this.logger.debug({ err }, 'job listener unavailable; polling only');
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Stops claiming, lets running jobs finish for up to `graceMs`, then aborts the rest and waits
   * up to `settleMs` for their handlers to stop: each one that stops is handed back to the queue
   * (JobRepository.release: the attempt is not counted). A handler still running after that keeps
   * its lease, unrenewed, until it expires: it may still be working (terraform runs detached), so
   * the job is not handed to another worker while it might. Another worker then reaps it as lost.
   */
  async stop(graceMs = SHUTDOWN_GRACE_MS, settleMs = SHUTDOWN_SETTLE_MS): Promise<void> {
    const graceEnds = Date.now() + graceMs;
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    const periodic = this.periodic.stop();
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => undefined);
    if (this.ticking) await within(this.ticking, graceMs); // a claim in progress lands in inFlight before we look
    const settled = () => Promise.allSettled([...this.inFlight.values()].map((e) => e.promise));
    await within(settled(), graceMs);
    if (this.inFlight.size) {
      for (const e of this.inFlight.values()) e.abort();
      await within(settled(), settleMs);
      for (const [key, e] of this.inFlight) {
        e.abandon();
        this.logger.warn({ event: 'job.abandoned', job: key, settleMs }, 'job handler did not stop after abort: its lease is left to expire, not handed back');
      }
    }
    await within(periodic, Math.max(0, graceEnds - Date.now()));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /** Claims and runs jobs until none is due; returns how many ran. Used by tests and the loop. */
  async drain(max = 1_000): Promise<number> {
    let n = 0;
    await this.reapLostJobs();
    while (n < max) {
      const sentAt = Date.now();
      const job = await this.jobs.claim(this.id, this.config.JOB_LEASE_SECONDS);
      if (!job) break;
      await this.launch(job, sentAt).promise;
      n++;
    }
    return n;
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref?.();
  }

  private async tick(): Promise<void> {
    // One tick at a time; a wake-up during a tick runs another right after it.
    if (this.ticking) {
      this.wakeAgain = true;
      return;
    }
    this.ticking = this.claimWhileFree();
    await this.ticking;
    this.ticking = null;
    const again = this.wakeAgain;
    this.wakeAgain = false;
    this.schedule(again ? 0 : this.config.JOB_POLL_INTERVAL_MS);
  }

  private async claimWhileFree(): Promise<void> {
    try {
      await this.reapLostJobs();
      while (this.running && this.inFlight.size < this.config.JOB_CONCURRENCY) {
        const sentAt = Date.now();
        const job = await this.jobs.claim(this.id, this.config.JOB_LEASE_SECONDS);
        if (!job) break;
        const key = `${job.id}#${job.run}`;
        const execution = this.launch(job, sentAt);
        this.inFlight.set(key, execution);
        void execution.promise.finally(() => {
          this.inFlight.delete(key);
          if (this.running) this.schedule(0);
        });
      }
    } catch (err) {
      this.logger.warn({ err }, 'job poll failed');
    }
  }

  /** Jobs whose worker died: their run ends as lost; those on their last attempt fail for good and their type's onExhausted hook runs. */
  private async reapLostJobs(): Promise<void> {
    for (const job of await this.jobs.reapLostJobs()) {
      const reason = new Error(job.lastError ?? 'worker lost (lease expired)');
      this.processed.inc({ type: job.type, outcome: 'failed' });
      this.logger.warn({ event: 'job.failed', jobId: job.id, type: job.type, tenantId: job.tenantId, attempt: job.attempts, error: reason.message }, 'job failed');
      await this.handlers.get(job.type)?.onExhausted?.(job, reason).catch((hookErr) => this.logger.error({ err: hookErr }, 'onExhausted failed'));
    }
  }

  /** Runs `job` (claimed with a request sent at `claimSentAt`) under a renewed lease. */
  private launch(job: ClaimedJob, claimSentAt: number): Execution {
    const leaseMs = this.config.JOB_LEASE_SECONDS * 1000;
    const lease = new JobLease(claimSentAt, leaseMs);
    const shutdown = new AbortController();
    const leaseLost = new AbortController();
    let expiry: NodeJS.Timeout | undefined;
    const checkLease = () => {
      clearTimeout(expiry);
      const lost = lease.lost(Date.now());
      if (lost) {
        if (!leaseLost.signal.aborted) {
          this.logger.warn({ jobId: job.id, run: job.run, type: job.type, tenantId: job.tenantId, reason: lost }, 'job lease lost: stopping this attempt');
          leaseLost.abort(new Error(lost));
        }
        return;
      }
      expiry = setTimeout(checkLease, Math.min(lease.remainingMs(Date.now()), MAX_TIMER_MS));
      expiry.unref();
    };
    let renewing = false;
    const renew = async () => {
      if (renewing || leaseLost.signal.aborted) return; // a renewal still waiting: the deadline timer covers it
      renewing = true;
      const sentAt = Date.now();
      try {
        if (await this.jobs.extendLease(job.id, this.id, this.config.JOB_LEASE_SECONDS, job.run)) lease.renewed(sentAt);
        else lease.taken();
      } catch (err) {
        this.logger.warn({ err, jobId: job.id, run: job.run }, 'job lease renewal failed: retried next beat');
      } finally {
        renewing = false;
      }
      checkLease();
    };
    const heartbeat = setInterval(() => void renew(), Math.min(leaseMs / 3, MAX_TIMER_MS));
    heartbeat.unref();
    checkLease();
    const stopRenewing = () => {
      clearInterval(heartbeat);
      clearTimeout(expiry);
    };
    const promise = this.execute(job, shutdown.signal, leaseLost.signal).finally(stopRenewing);
    return { promise, abort: () => shutdown.abort(new Error('worker shutting down')), abandon: stopRenewing };
  }

  private async execute(job: ClaimedJob, shutdown: AbortSignal, leaseLost: AbortSignal): Promise<void> {
    const handler = this.handlers.get(job.type);
    const log = (line: string) => void this.jobs.appendLog(job.id, line).catch(() => undefined);
    const signal = AbortSignal.any([shutdown, leaseLost]);
    const at = { jobId: job.id, run: job.run, type: job.type, tenantId: job.tenantId, attempt: job.attempts };
    const started = Date.now();
    try {
      if (!handler) throw new Error(`no handler for job type ${job.type}`);
      await handler.run({ job, log, signal });
      if (await this.jobs.succeed(job.id, this.id, job.run)) {
        this.processed.inc({ type: job.type, outcome: 'succeeded' });
        this.logger.info({ event: 'job.succeeded', ...at, ms: Date.now() - started }, 'job succeeded');
      } else {
        this.logger.warn({ event: 'job.unrecorded', ...at }, 'job finished after losing its lease: its success is not recorded (the job is another run\'s now)');
      }
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      const message = isSiloError(err) ? `${err.code}: ${err.message}` : err.message;
      if (shutdown.aborted && !leaseLost.aborted) return this.handBack(job, handler, message);
      const exhausted = job.attempts >= job.maxAttempts;
      const retryAt = exhausted ? null : new Date(Date.now() + backoffMs(job.attempts));
      const recorded = await this.jobs.fail(job.id, this.id, message, retryAt, job.run).catch((dbErr) => {
        this.logger.error({ err: dbErr }, 'could not record job failure');
        return false;
      });
      if (!recorded) {
        // The job is no longer this run's (reaped or re-claimed): whoever holds it now decides.
        this.logger.warn({ event: 'job.unrecorded', ...at, error: message }, 'job attempt failed after losing its lease');
        return;
      }
      log(`attempt ${job.attempts} failed: ${message}`);
      this.processed.inc({ type: job.type, outcome: exhausted ? 'failed' : 'retried' });
      this.logger.warn({ event: exhausted ? 'job.failed' : 'job.retry', ...at, error: message }, exhausted ? 'job failed' : 'job will retry');
      if (exhausted) await handler?.onExhausted?.(job, err).catch((hookErr) => this.logger.error({ err: hookErr }, 'onExhausted failed'));
    }
  }

  /** The handler stopped because this worker is shutting down: back to the queue, normally without using an attempt. */
  private async handBack(job: ClaimedJob, handler: JobHandler | undefined, message: string): Promise<void> {
    const at = { jobId: job.id, run: job.run, type: job.type, tenantId: job.tenantId, attempt: job.attempts };
    const released = await this.jobs.release(job.id, this.id, 'worker shut down', job.run).catch((dbErr) => {
      this.logger.error({ err: dbErr }, 'could not hand the job back: its lease will expire');
      return null;
    });
    if (!released) return;
    this.jobs.appendLog(job.id, `run ${job.run} stopped: worker shut down (${message})`).catch(() => undefined);
    if (released.status === JobStatus.Queued) {
      this.processed.inc({ type: job.type, outcome: 'released' });
      this.logger.info({ event: 'job.released', ...at, counted: released.counted }, 'job handed back: worker shutting down');
      return;
    }
    const reason = new Error(`worker shut down during attempt ${job.attempts} of ${job.maxAttempts}, and the job's hand-backs at shutdown are used up`);
    this.processed.inc({ type: job.type, outcome: 'failed' });
    this.logger.warn({ event: 'job.failed', ...at, error: reason.message }, 'job failed');
    await handler?.onExhausted?.(job, reason).catch((hookErr) => this.logger.error({ err: hookErr }, 'onExhausted failed'));
  }
}

/** Resolves when `p` settles or after `ms`, whichever is first. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => { timer = setTimeout(r, ms); timer.unref(); })]);
  clearTimeout(timer);
}

/** 1 s, 2 s, 4 s ... capped at 5 min, with jitter so retries of many tenants spread out. */
export function backoffMs(attempt: number): number {
  const base = Math.min(1_000 * 2 ** Math.max(0, attempt - 1), 300_000);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}
