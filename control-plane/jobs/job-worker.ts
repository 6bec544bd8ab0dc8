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
import { Job, JobType } from './job.entity';
import { JOBS_CHANNEL, JobRepository } from './job.repository';
import { Client } from 'pg';
import { JOB_HANDLERS } from './job-handlers.token';
import { PeriodicRunner } from './periodic-runner';

/**
 * Polls the jobs table with SKIP LOCKED. Each claimed job holds a lease that a heartbeat
 * extends; if this process dies, the lease expires and another worker resumes the job, whose
 * recorded steps make the retry converge.
 */
@Injectable()
export class JobWorker implements OnApplicationShutdown {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private running = false;
  private readonly inFlight = new Map<string, { promise: Promise<void>; abort: AbortController }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly processed: Counter<'type' | 'outcome'>;
  private listener: Client | null = null;
  private ticking = false;
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

  async stop(graceMs = 10_000): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    const periodic = this.periodic.stop();
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => undefined);
    const pending = [...this.inFlight.values()];
    const timeout = new Promise((r) => setTimeout(r, graceMs).unref());
    await Promise.race([Promise.allSettled(pending.map((p) => p.promise)), timeout]);
    // Still running after the grace period: abort (the handler's failure queues a retry), and hand
    // back any lease still held a moment later, so another worker need not wait for it to expire.
    for (const p of this.inFlight.values()) p.abort.abort();
    if (this.inFlight.size) {
      await Promise.race([Promise.allSettled([...this.inFlight.values()].map((p) => p.promise)), new Promise((r) => setTimeout(r, 2_000).unref())]);
      for (const id of this.inFlight.keys()) await this.jobs.release(id, this.id, 'worker shut down').catch(() => undefined);
    }
    await Promise.race([periodic, timeout]);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /** Claims and runs jobs until none is due; returns how many ran. Used by tests and the loop. */
  async drain(max = 1_000): Promise<number> {
    let n = 0;
    await this.failLostJobs();
    while (n < max) {
      const job = await this.jobs.claim(this.id, this.config.JOB_LEASE_SECONDS);
      if (!job) break;
      await this.execute(job);
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
    this.ticking = true;
    try {
      await this.failLostJobs();
      while (this.running && this.inFlight.size < this.config.JOB_CONCURRENCY) {
        const job = await this.jobs.claim(this.id, this.config.JOB_LEASE_SECONDS);
        if (!job) break;
        const abort = new AbortController();
        const promise = this.execute(job, abort.signal).finally(() => {
          this.inFlight.delete(job.id);
          if (this.running) this.schedule(0);
        });
        this.inFlight.set(job.id, { promise, abort });
      }
    } catch (err) {
      this.logger.warn({ err }, 'job poll failed');
    } finally {
      this.ticking = false;
    }
    const again = this.wakeAgain;
    this.wakeAgain = false;
    this.schedule(again ? 0 : this.config.JOB_POLL_INTERVAL_MS);
  }

  /** Jobs whose worker died on their last attempt: failed for good, and their type's onExhausted hook runs. */
  private async failLostJobs(): Promise<void> {
    for (const job of await this.jobs.failLostJobs()) {
      const reason = new Error(job.lastError ?? 'worker lost (lease expired)');
      this.processed.inc({ type: job.type, outcome: 'failed' });
      this.logger.warn({ event: 'job.failed', jobId: job.id, type: job.type, tenantId: job.tenantId, attempt: job.attempts, error: reason.message }, 'job failed');
      await this.handlers.get(job.type)?.onExhausted?.(job, reason).catch((hookErr) => this.logger.error({ err: hookErr }, 'onExhausted failed'));
    }
  }

  private async execute(job: Job, outer: AbortSignal = new AbortController().signal): Promise<void> {
    const handler = this.handlers.get(job.type);
    const log = (line: string) => void this.jobs.appendLog(job.id, line).catch(() => undefined);
    // A lease this worker could not renew may already be another worker's: stop the work here.
    const lease = new AbortController();
    const signal = AbortSignal.any([outer, lease.signal]);
    const renew = async () => {
      const held = await this.jobs.extendLease(job.id, this.id, this.config.JOB_LEASE_SECONDS).catch(() => true); // a failed renewal is retried next beat
      if (!held && !lease.signal.aborted) {
        this.logger.warn({ jobId: job.id, type: job.type, tenantId: job.tenantId }, 'job lease lost: stopping this attempt');
        lease.abort(new Error('job lease lost'));
      }
    };
    const heartbeat = setInterval(() => void renew(), (this.config.JOB_LEASE_SECONDS * 1000) / 3);
    heartbeat.unref();
    const started = Date.now();
    try {
      if (!handler) throw new Error(`no handler for job type ${job.type}`);
      await handler.run({ job, log, signal });
      await this.jobs.succeed(job.id, this.id);
      this.processed.inc({ type: job.type, outcome: 'succeeded' });
      this.logger.info({ event: 'job.succeeded', jobId: job.id, type: job.type, tenantId: job.tenantId, attempt: job.attempts, ms: Date.now() - started }, 'job succeeded');
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      const message = isSiloError(err) ? `${err.code}: ${err.message}` : err.message;
      const exhausted = job.attempts >= job.maxAttempts;
      const retryAt = exhausted ? null : new Date(Date.now() + backoffMs(job.attempts));
      await this.jobs.fail(job.id, this.id, message, retryAt).catch((dbErr) => this.logger.error({ err: dbErr }, 'could not record job failure'));
      log(`attempt ${job.attempts} failed: ${message}`);
      this.processed.inc({ type: job.type, outcome: exhausted ? 'failed' : 'retried' });
      this.logger.warn({ event: exhausted ? 'job.failed' : 'job.retry', jobId: job.id, type: job.type, tenantId: job.tenantId, attempt: job.attempts, error: message }, exhausted ? 'job failed' : 'job will retry');
      if (exhausted) await handler?.onExhausted?.(job, err).catch((hookErr) => this.logger.error({ err: hookErr }, 'onExhausted failed'));
    } finally {
      clearInterval(heartbeat);
    }
  }
}

/** 1 s, 2 s, 4 s ... capped at 5 min, with jitter so retries of many tenants spread out. */
export function backoffMs(attempt: number): number {
  const base = Math.min(1_000 * 2 ** Math.max(0, attempt - 1), 300_000);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}
