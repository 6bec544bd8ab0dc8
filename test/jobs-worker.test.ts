import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { createLogger } from '../common/logger';
import type { ControlPlaneConfig } from '../control-plane/config';
import { createControlDataSource } from '../control-plane/db/data-source';
import type { JobContext, JobHandler } from '../control-plane/jobs/job-handler';
import { Job, JobType } from '../control-plane/jobs/job.entity';
import { JobRepository } from '../control-plane/jobs/job.repository';
import { JobWorker } from '../control-plane/jobs/job-worker';
import type { PeriodicRunner } from '../control-plane/jobs/periodic-runner';
import { createTestDatabase, TestDatabase } from './support/test-db';

/**
 * The job worker's lease and shutdown rules, with real workers on a real queue: a job is handed
 * to another worker only once its handler has stopped; a handler that will not stop keeps the
 * lease until it expires; a shutdown does not use the job's attempt; a lease that cannot be
 * renewed stops the handler when it runs out.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const idlePeriodic = { start: () => undefined, stop: async () => undefined } as unknown as PeriodicRunner;

describe('job worker: leases and shutdown', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let other: JobRepository; // another worker, claiming on its own pool
  let otherDs: DataSource;
  const started: JobWorker[] = [];

  const configOf = (over: Partial<ControlPlaneConfig> = {}) =>
    ({ DATABASE_URL: db.url, JOB_CONCURRENCY: 2, JOB_POLL_INTERVAL_MS: 50, JOB_LEASE_SECONDS: 2, JOB_MAX_ATTEMPTS: 3, ...over }) as ControlPlaneConfig;
  const workerWith = (handler: JobHandler, over: Partial<ControlPlaneConfig> = {}, jobs = new JobRepository(ds, configOf(over))) => {
    const w = new JobWorker(jobs, idlePeriodic, new Map([[JobType.Provision, handler]]), configOf(over), createLogger({ name: 'test-worker', level: 'silent' }), new Registry());
    started.push(w);
    return w;
  };
  const jobRow = async (id: string) => (await ds.query('SELECT status, attempts, locked_by, locked_until FROM jobs WHERE id = $1', [id]))[0];
  const runsOf = async (id: string) => (await other.runsOf([id])).map((r) => ({ run: r.attempt, worker: r.workerId, outcome: r.outcome, error: r.error, finishedAt: r.finishedAt }));
  const waitFor = async (check: () => boolean | Promise<boolean>, ms = 5_000) => {
    const until = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > until) throw new Error('timed out');
      await sleep(10);
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase('jobworker');
    ds = createControlDataSource(db.url, { poolSize: 4, applicationName: 'silo-test-worker-a' });
    otherDs = createControlDataSource(db.url, { poolSize: 2, applicationName: 'silo-test-worker-b' });
    await ds.initialize();
    await otherDs.initialize();
    other = new JobRepository(otherDs, { JOB_MAX_ATTEMPTS: 3 });
  });
  afterAll(async () => {
    for (const w of started) await w.stop(0, 0);
    await ds?.destroy();
    await otherDs?.destroy();
    await db?.drop();
  });

  it('hands a job back at shutdown only after its handler has stopped (terraform takes its time after SIGTERM): no other worker runs it meanwhile', async () => {
    let handlerStopped = 0;
    let running = false;
    const worker = workerWith({
      run: ({ signal }: JobContext) => new Promise<void>((_, reject) => {
        running = true;
        // Like terraform after SIGTERM: it keeps going for a while before it exits.
        signal.addEventListener('abort', () => setTimeout(() => {
          handlerStopped = Date.now();
          reject(new Error('terraform apply was aborted'));
        }, 3_000));
      }),
    });
    const id = (await other.enqueue({ type: JobType.Provision, tenantId: randomUUID() })) as string;
    worker.start();
    await waitFor(() => running);

    let claimedByOther = 0;
    const contender = (async () => {
      while (!claimedByOther) {
        await other.reapLostJobs();
        const job = await other.claim('contender', 60);
        if (job) {
          claimedByOther = Date.now();
          expect(job).toMatchObject({ id, attempts: 1, run: 2 });
          await other.succeed(job.id, 'contender', job.run);
        }
        await sleep(25);
      }
    })();
    const stopping = Date.now();
    await worker.stop(200, 10_000);
    const stopped = Date.now();
    await contender;

    expect(handlerStopped).toBeGreaterThan(stopping + 3_000);
    expect(stopped).toBeGreaterThanOrEqual(handlerStopped);
    expect(claimedByOther).toBeGreaterThanOrEqual(handlerStopped); // not one moment of two runs at once
    expect(await runsOf(id)).toEqual([
      expect.objectContaining({ run: 1, worker: worker.id, outcome: 'retry', error: 'worker shut down (attempt not counted)' }),
      expect.objectContaining({ run: 2, worker: 'contender', outcome: 'succeeded' }),
    ]);
  });

  it('does not hand back a job whose handler will not stop within the shutdown bound: the lease, no longer renewed, expires and the job is then reaped as lost', async () => {
    let running = false;
    let letGo: () => void = () => undefined;
    const worker = workerWith({
      run: () => new Promise<void>((resolve) => {
        running = true;
        letGo = resolve; // ignores the abort
      }),
    });
    const id = (await other.enqueue({ type: JobType.Provision, tenantId: randomUUID() })) as string;
    worker.start();
    await waitFor(() => running);
    await worker.stop(100, 400);

    const held = await jobRow(id);
    expect(held).toMatchObject({ status: 'running', attempts: 1, locked_by: worker.id });
    expect(await other.claim('contender', 60)).toBeNull();
    await sleep(1_000); // more than one heartbeat (lease 2 s / 3)
    expect((await jobRow(id)).locked_until).toEqual(held.locked_until); // no longer renewed
    await waitFor(async () => (await jobRow(id)).locked_until < new Date(), 3_000);
    await sleep(50);
    expect(await other.reapLostJobs()).toEqual([]);
    expect(await jobRow(id)).toMatchObject({ status: 'queued', attempts: 1, locked_by: null });
    expect(await runsOf(id)).toEqual([expect.objectContaining({ run: 1, worker: worker.id, outcome: 'lost' })]);

    // The handler ends after all: its late hand-back changes nothing (the job is no longer its run's).
    letGo();
    await sleep(100);
    expect(await jobRow(id)).toMatchObject({ status: 'queued', attempts: 1 });
    await other.cancelOpen((await other.findById(id))!.tenantId!, JobType.Provision);
  });

  it('does not fail the tenant when a shutdown stops the last attempt: the job goes back to the queue without using it, and the next worker finishes it', async () => {
    let mode: 'wait-for-abort' | 'succeed' = 'wait-for-abort';
    let running = false;
    const exhausted: Array<[string, string]> = [];
    const handler: JobHandler = {
      run: ({ signal }) => {
        running = true;
        if (mode === 'succeed') return Promise.resolve();
        return new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
      },
      onExhausted: async (job: Job, err: Error) => void exhausted.push([job.id, err.message]),
    };
    const worker = workerWith(handler);
    const id = (await other.enqueue({ type: JobType.Provision, tenantId: randomUUID(), maxAttempts: 1 })) as string;
    worker.start();
    await waitFor(() => running);
    await worker.stop(100, 5_000);

    expect(exhausted).toEqual([]);
    expect(await jobRow(id)).toMatchObject({ status: 'queued', attempts: 0 });
    mode = 'succeed';
    expect(await workerWith(handler).drain()).toBe(1);
    expect(await jobRow(id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect((await runsOf(id)).map((r) => [r.run, r.outcome])).toEqual([[1, 'retry'], [2, 'succeeded']]);
    expect(exhausted).toEqual([]);
  });

  it('stops the handler when its lease could not be renewed before it expired, instead of assuming it still holds it', async () => {
    class UnreachableOnRenew extends JobRepository {
      override async extendLease(): Promise<boolean> {
        throw new Error('Connection terminated unexpectedly');
      }
    }
    let abortedAfter: number | null = null;
    let reason = '';
    let claimedAt = 0;
    const worker = workerWith({
      run: ({ signal }) => new Promise<void>((_, reject) => {
        claimedAt = Date.now();
        const giveUp = setTimeout(() => reject(new Error('never aborted')), 4_000);
        signal.addEventListener('abort', () => {
          clearTimeout(giveUp);
          abortedAfter = Date.now() - claimedAt;
          reason = (signal.reason as Error).message;
          reject(signal.reason as Error);
        });
      }),
    }, { JOB_LEASE_SECONDS: 1 }, new UnreachableOnRenew(ds, { JOB_MAX_ATTEMPTS: 3 }));
    const id = (await other.enqueue({ type: JobType.Provision, tenantId: randomUUID() })) as string;
    expect(await worker.drain(1)).toBe(1);

    expect(reason).toBe('job lease lost: it could not be renewed before it expired');
    expect(abortedAfter).not.toBeNull();
    expect(abortedAfter!).toBeGreaterThanOrEqual(800);
    expect(abortedAfter!).toBeLessThan(1_200); // at the lease's end, not a heartbeat later
    expect((await runsOf(id)).map((r) => [r.run, r.outcome, r.error])).toEqual([[1, 'retry', reason]]);
    await other.cancelOpen((await other.findById(id))!.tenantId!, JobType.Provision);
  });
});
