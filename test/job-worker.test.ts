import { startTestControlPlane, TestControlPlane } from './support/control-plane';

describe('background job worker', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    // Polling is effectively off: only LISTEN/NOTIFY can wake the worker within the test's time.
    t = await startTestControlPlane({ JOB_WORKER_ENABLED: 'true', JOB_POLL_INTERVAL_MS: '60000' });
  });
  afterAll(async () => t.close());

  it('wakes on NOTIFY and provisions a new tenant without waiting for a poll', async () => {
    await new Promise((r) => setTimeout(r, 300)); // let the first (startup) tick and LISTEN settle
    const started = Date.now();
    await t.api('POST', '/v1/tenants', { name: 'Quick', slug: 'quick' });
    // The handler activates the tenant, then the worker records the job as done: wait for both.
    const jobs = () => t.sql<{ status: string; attempts: number }>('SELECT status, attempts FROM jobs');
    let status = '';
    let job: { status: string; attempts: number } | undefined;
    while (Date.now() - started < 10_000 && (status !== 'active' || job?.status !== 'succeeded')) {
      status = (await t.api('GET', '/v1/tenants/quick')).body.status;
      [job] = await jobs();
      if (status !== 'active' || job?.status !== 'succeeded') await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe('active');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(job).toEqual({ status: 'succeeded', attempts: 1 });
  });
});
