import { JobRepository } from '../control-plane/jobs/job.repository';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';

/** What GET /v1/tenants/:id/jobs shows of a job's runs after a crash and after a shutdown. */
describe('job runs in the admin API', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane();
  });
  afterAll(async () => t?.close());

  it('lists a crashed run as lost, ended when the loss was seen (not when the lease ran out), a shutdown hand-back as an uncounted retry, and the run that finished, each on its own row', async () => {
    const created = await t.api('POST', '/v1/tenants', { name: 'Runs', slug: 'runs' });
    expect(created.status).toBe(202);
    const jobs = t.cp.app.get(JobRepository);

    // Run 1: a worker that shuts down hands the job back. Run 2: a worker that is SIGKILLed;
    // its lease ran out an hour ago and nobody looked until now.
    const first = await jobs.claim('stopping-worker', 300);
    expect(await jobs.release(first!.id, 'stopping-worker', 'worker shut down', first!.run)).toEqual({ status: 'queued', counted: false });
    const second = await jobs.claim('killed-worker', 300);
    await t.sql(`UPDATE jobs SET locked_until = now() - interval '1 hour' WHERE id = $1`, [second!.id]);
    const [{ before }] = await t.sql<{ before: Date }>('SELECT clock_timestamp() AS before');
    expect(await t.drainJobs()).toBe(1); // reaps run 2, then run 3 provisions the tenant

    expect((await t.api('GET', '/v1/tenants/runs')).body.status).toBe('active');
    const [job] = (await t.api('GET', `/v1/tenants/${created.body.id}/jobs`)).body.items;
    expect(job).toMatchObject({ id: first!.id, status: 'succeeded', attempts: 2 });
    expect(job.runs).toEqual([
      expect.objectContaining({ attempt: 1, worker: 'stopping-worker', outcome: 'retry', error: 'worker shut down (attempt not counted)' }),
      expect.objectContaining({ attempt: 2, worker: 'killed-worker', outcome: 'lost', error: 'lease expired' }),
      expect.objectContaining({ attempt: 3, worker: t.cp.worker?.id ?? expect.any(String), outcome: 'succeeded', error: null }),
    ]);
    const [r1, r2, r3] = job.runs.map((r: { startedAt: string; finishedAt: string }) => ({ start: Date.parse(r.startedAt), end: Date.parse(r.finishedAt) }));
    expect(r2.end).toBeGreaterThanOrEqual(before.getTime());
    expect(r2.end).toBeLessThanOrEqual(r3.start);
    expect(r1.end).toBeLessThanOrEqual(r2.start);
    expect(r3.end).toBeGreaterThanOrEqual(r3.start);
  });
});
