import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createControlDataSource } from '../control-plane/db/data-source';
import { JobType } from '../control-plane/jobs/job.entity';
import { JobRepository } from '../control-plane/jobs/job.repository';
import { createTestDatabase, TestDatabase } from './support/test-db';

/**
 * The job queue with several workers claiming at once, each on its own connection pool (as
 * separate processes would be): the database, not the claim query's NOT EXISTS, keeps a tenant
 * to one running job. Before the partial unique index, two claimers gave some tenant two running
 * jobs in most rounds.
 */
describe('job queue with concurrent workers', () => {
  let db: TestDatabase;
  const sources: DataSource[] = [];
  let repos: JobRepository[];

  beforeAll(async () => {
    db = await createTestDatabase('jobq');
    for (let i = 0; i < 4; i++) {
      const ds = createControlDataSource(db.url, { poolSize: 2, applicationName: `silo-test-worker-${i}` });
      await ds.initialize();
      sources.push(ds);
    }
    repos = sources.map((ds) => new JobRepository(ds, { JOB_MAX_ATTEMPTS: 3 }));
  });
  afterAll(async () => {
    for (const ds of sources) await ds.destroy();
    await db?.drop();
  });

  it('never runs two jobs of one tenant at once: 4 workers x 6 tenants x 30 jobs of mixed types, and every recorded run of a tenant ends before the next starts', async () => {
    const tenants = Array.from({ length: 6 }, () => randomUUID());
    const types = [JobType.Provision, JobType.RotateCredentials, JobType.Deprovision];
    // Tenant by tenant: the next due row after the one a worker holds is usually the same tenant's,
    // which is what a second worker's SKIP LOCKED lands on.
    for (const [i, tenantId] of tenants.entries()) {
      for (let n = 0; n < 30; n++) await repos[0].enqueue({ type: types[(i + n) % types.length] as JobType, tenantId });
    }
    let maxRunningPerTenant = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await sources[0].query(`SELECT coalesce(max(n), 0)::int AS n FROM (SELECT count(*) AS n FROM jobs WHERE status = 'running' GROUP BY tenant_id) x`);
        maxRunningPerTenant = Math.max(maxRunningPerTenant, row.n);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    // Each worker claims in a tight loop (as all workers do when one NOTIFY wakes them) and holds a job 0-3 ms.
    const ran = await Promise.all(repos.map(async (jobs, w) => {
      let n = 0;
      for (let idle = 0; idle < 20; ) {
        const job = await jobs.claim(`worker-${w}`, 60);
        if (!job) {
          idle++;
          await new Promise((r) => setTimeout(r, 5));
          continue;
        }
        idle = 0;
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        await jobs.succeed(job.id, `worker-${w}`);
        n++;
      }
      return n;
    }));
    sampling = false;
    await sampler;

    expect(ran.reduce((a, b) => a + b, 0)).toBe(180);
    expect(ran.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2); // the claims really were concurrent
    expect(maxRunningPerTenant).toBe(1);
    const runs: Array<{ tenant_id: string; started_at: Date; finished_at: Date; outcome: string }> = await sources[0].query(
      `SELECT j.tenant_id, r.started_at, r.finished_at, r.outcome FROM job_runs r JOIN jobs j ON j.id = r.job_id ORDER BY j.tenant_id, r.started_at`);
    expect(runs).toHaveLength(180);
    const overlaps = runs.filter((r, i) => i > 0 && runs[i - 1].tenant_id === r.tenant_id && r.started_at < runs[i - 1].finished_at);
    expect(overlaps).toEqual([]);
    expect(new Set(runs.map((r) => r.outcome))).toEqual(new Set(['succeeded']));
  });

  it('fails a job whose worker dies on every attempt after JOB_MAX_ATTEMPTS, recording each lost attempt, instead of re-claiming it forever', async () => {
    const tenantId = randomUUID();
    const id = await repos[0].enqueue({ type: JobType.Provision, tenantId });
    expect(await sources[0].query('SELECT max_attempts FROM jobs WHERE id = $1', [id])).toEqual([{ max_attempts: 3 }]);
    for (let attempt = 1; attempt <= 3; attempt++) {
      // A worker claims it, then "dies": its lease is left to expire.
      const claimed = await repos[attempt % 4].claim(`doomed-${attempt}`, 60);
      expect(claimed).toMatchObject({ id, attempts: attempt });
      await sources[0].query(`UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1`, [id]);
      expect(await repos[0].reapLostJobs()).toEqual(attempt < 3 ? [] : [expect.objectContaining({ id, status: 'failed', attempts: 3 })]);
    }
    expect(await repos[1].claim('anyone', 60)).toBeNull();
    const [job] = await sources[0].query('SELECT status, attempts, last_error FROM jobs WHERE id = $1', [id]);
    expect(job).toEqual({ status: 'failed', attempts: 3, last_error: 'worker lost during attempt 3 of 3 (lease expired)' });
    const runs = await repos[0].runsOf([id as string]);
    expect(runs.map((r) => [r.attempt, r.workerId, r.outcome])).toEqual([[1, 'doomed-1', 'lost'], [2, 'doomed-2', 'lost'], [3, 'doomed-3', 'lost']]);
    expect(runs.every((r) => r.finishedAt !== null && r.finishedAt >= r.startedAt)).toBe(true);
  });

  it('hands a job back at once when its worker shuts down mid-run: another worker claims it without waiting for the lease, and the attempt is not counted', async () => {
    const tenantId = randomUUID();
    const id = await repos[0].enqueue({ type: JobType.RotateCredentials, tenantId });
    const first = await repos[0].claim('exiting', 300);
    expect(first).toMatchObject({ id, attempts: 1, run: 1 });
    expect(await repos[1].claim('other', 300)).toBeNull(); // held: its lease runs for 5 minutes
    expect(await repos[0].release(id as string, 'exiting', 'worker shut down', first?.run)).toEqual({ status: 'queued', counted: false });
    expect(await repos[1].claim('other', 300)).toMatchObject({ id, attempts: 1, run: 2, lockedBy: 'other' });
    const runs = await repos[0].runsOf([id as string]);
    expect(runs.map((r) => [r.attempt, r.workerId, r.outcome, r.error])).toEqual([[1, 'exiting', 'retry', 'worker shut down (attempt not counted)'], [2, 'other', null, null]]);
    expect(await repos[1].succeed(id as string, 'other', 2)).toBe(true);
  });

  it('never counts more than max_attempts attempts whatever the mix of failure, crash and shutdown hand-backs, and bounds the free hand-backs too', async () => {
    const id = (await repos[0].enqueue({ type: JobType.Provision, tenantId: randomUUID() })) as string;
    const attemptsSeen: number[] = [];
    const claim = async (worker: string) => {
      const job = await repos[1].claim(worker, 60);
      expect(job?.id).toBe(id);
      attemptsSeen.push(job?.attempts as number);
      return job as NonNullable<typeof job>;
    };
    // 1: fails, retried. 2: its worker is SIGKILLed (lease expires, reaped).
    const a = await claim('w-fail');
    expect(await repos[1].fail(id, 'w-fail', 'boom', new Date(), a.run)).toBe(true);
    await claim('w-crash');
    await sources[0].query(`UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1`, [id]);
    expect(await repos[0].reapLostJobs()).toEqual([]);
    // 3 (the last attempt): its worker shuts down, again and again. The first 3 hand-backs are free,
    // the 4th counts, and on the last attempt that fails the job instead of queueing a 4th attempt.
    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      const last = await claim(`w-term-${i}`);
      outcomes.push(await repos[1].release(id, `w-term-${i}`, 'worker shut down', last.run));
    }
    expect(outcomes).toEqual([
      { status: 'queued', counted: false }, { status: 'queued', counted: false }, { status: 'queued', counted: false }, { status: 'failed', counted: true },
    ]);
    expect(attemptsSeen).toEqual([1, 2, 3, 3, 3, 3]);
    expect(await repos[2].claim('anyone', 60)).toBeNull();
    const [job] = await sources[0].query('SELECT status, attempts, max_attempts FROM jobs WHERE id = $1', [id]);
    expect(job).toEqual({ status: 'failed', attempts: 3, max_attempts: 3 });
    const runs = await repos[0].runsOf([id]);
    expect(runs.map((r) => [r.attempt, r.outcome])).toEqual([[1, 'retry'], [2, 'lost'], [3, 'retry'], [4, 'retry'], [5, 'retry'], [6, 'failed']]);
  });

  it('fails, at the next reap, a queued job left with no attempts (as releases on the last attempt used to leave them)', async () => {
    const id = (await repos[0].enqueue({ type: JobType.Provision, tenantId: randomUUID() })) as string;
    await sources[0].query(`UPDATE jobs SET attempts = max_attempts, last_error = 'worker shut down' WHERE id = $1`, [id]);
    expect(await repos[1].claim('anyone', 60)).toBeNull();
    expect(await repos[0].reapLostJobs()).toEqual([expect.objectContaining({ id, status: 'failed', lastError: 'attempts used up (3 of 3): worker shut down' })]);
  });

  it('ends a lost run when the loss is detected, not when the job is next claimed; the next run gets its own row', async () => {
    const id = (await repos[0].enqueue({ type: JobType.Provision, tenantId: randomUUID() })) as string;
    await repos[0].claim('crashed', 60);
    // The worker died long ago: its lease ran out an hour back.
    await sources[0].query(`UPDATE jobs SET locked_until = now() - interval '1 hour' WHERE id = $1`, [id]);
    const [{ before }] = await sources[0].query('SELECT clock_timestamp() AS before');
    expect(await repos[2].reapLostJobs()).toEqual([]);
    const [{ after }] = await sources[0].query('SELECT clock_timestamp() AS after');
    const [lost] = await repos[0].runsOf([id]);
    expect(lost).toMatchObject({ attempt: 1, workerId: 'crashed', outcome: 'lost', error: 'lease expired' });
    expect(lost.finishedAt!.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(lost.finishedAt!.getTime()).toBeLessThanOrEqual(after.getTime());
    expect(await sources[0].query('SELECT status, attempts, last_error FROM jobs WHERE id = $1', [id])).toEqual([{ status: 'queued', attempts: 1, last_error: 'worker lost during attempt 1 of 3 (lease expired)' }]);
    await new Promise((r) => setTimeout(r, 20));
    const next = await repos[3].claim('next', 60);
    expect(next).toMatchObject({ id, attempts: 2, run: 2 });
    expect(await repos[3].succeed(id, 'next', 2)).toBe(true);
    const runs = await repos[0].runsOf([id]);
    expect(runs.map((r) => [r.attempt, r.workerId, r.outcome])).toEqual([[1, 'crashed', 'lost'], [2, 'next', 'succeeded']]);
    expect(runs[0].finishedAt).toEqual(lost.finishedAt); // the new run did not rewrite the lost one
    expect(runs[1].startedAt.getTime()).toBeGreaterThan(runs[0].finishedAt!.getTime());
  });

  it('lets no stale run touch a newer one of the same job, even when the same worker re-claims it', async () => {
    const id = (await repos[0].enqueue({ type: JobType.Provision, tenantId: randomUUID() })) as string;
    const old = await repos[0].claim('same-worker', 60);
    await sources[0].query(`UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1`, [id]);
    await repos[0].reapLostJobs();
    const fresh = await repos[0].claim('same-worker', 60);
    expect([old?.run, fresh?.run]).toEqual([1, 2]);
    // The first run, still going in this worker after its lease was lost, finishes or renews: refused.
    expect(await repos[0].extendLease(id, 'same-worker', 60, 1)).toBe(false);
    expect(await repos[0].succeed(id, 'same-worker', 1)).toBe(false);
    expect(await repos[0].fail(id, 'same-worker', 'late failure', null, 1)).toBe(false);
    expect(await repos[0].release(id, 'same-worker', 'worker shut down', 1)).toBeNull();
    expect(await sources[0].query('SELECT status, attempts FROM jobs WHERE id = $1', [id])).toEqual([{ status: 'running', attempts: 2 }]);
    expect((await repos[0].runsOf([id])).map((r) => [r.attempt, r.outcome, r.finishedAt === null])).toEqual([[1, 'lost', false], [2, null, true]]);
    expect(await repos[0].extendLease(id, 'same-worker', 60, 2)).toBe(true);
    expect(await repos[0].succeed(id, 'same-worker', 2)).toBe(true);
  });
});
