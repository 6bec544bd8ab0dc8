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
      expect(await repos[0].failLostJobs()).toEqual(attempt < 3 ? [] : [expect.objectContaining({ id, status: 'failed', attempts: 3 })]);
    }
    expect(await repos[1].claim('anyone', 60)).toBeNull();
    const [job] = await sources[0].query('SELECT status, attempts, last_error FROM jobs WHERE id = $1', [id]);
    expect(job).toEqual({ status: 'failed', attempts: 3, last_error: 'worker lost during attempt 3 of 3 (lease expired)' });
    const runs = await repos[0].runsOf([id as string]);
    expect(runs.map((r) => [r.attempt, r.workerId, r.outcome])).toEqual([[1, 'doomed-1', 'lost'], [2, 'doomed-2', 'lost'], [3, 'doomed-3', 'lost']]);
    expect(runs.every((r) => r.finishedAt !== null && r.finishedAt >= r.startedAt)).toBe(true);
  });

  it('hands a job back at once when its worker shuts down mid-run: another worker claims it without waiting for the lease', async () => {
    const tenantId = randomUUID();
    const id = await repos[0].enqueue({ type: JobType.RotateCredentials, tenantId });
    expect(await repos[0].claim('exiting', 300)).toMatchObject({ id, attempts: 1 });
    expect(await repos[1].claim('other', 300)).toBeNull(); // held: its lease runs for 5 minutes
    await repos[0].release(id as string, 'exiting', 'worker shut down');
    expect(await repos[1].claim('other', 300)).toMatchObject({ id, attempts: 2, lockedBy: 'other' });
    const runs = await repos[0].runsOf([id as string]);
    expect(runs.map((r) => [r.workerId, r.outcome, r.error])).toEqual([['exiting', 'retry', 'worker shut down'], ['other', null, null]]);
    await repos[1].succeed(id as string, 'other');
  });
});
