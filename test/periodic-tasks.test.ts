import { DataSource } from 'typeorm';
import { createControlDataSource } from '../control-plane/db/data-source';
import { createLogger } from '../common/logger';
import type { ControlPlaneConfig } from '../control-plane/config';
import { PeriodicRunner, runPeriodicTaskIfDue } from '../control-plane/jobs/periodic-runner';
import { MAX_PERIODIC_INTERVAL_MS, PeriodicClaim, PeriodicTaskRepository } from '../control-plane/jobs/periodic-task.repository';
import { startTestControlPlane } from './support/control-plane';
import { createTestDatabase, TestDatabase } from './support/test-db';

/** Fleet-wide periodic work: once per interval whatever the number of replicas, and visible in the admin API. */
describe('periodic tasks', () => {
  let db: TestDatabase;
  const sources: DataSource[] = [];
  let replicas: PeriodicTaskRepository[];

  beforeAll(async () => {
    db = await createTestDatabase('periodic');
    for (let i = 0; i < 3; i++) {
      const ds = createControlDataSource(db.url, { poolSize: 2 });
      await ds.initialize();
      sources.push(ds);
    }
    replicas = sources.map((ds) => new PeriodicTaskRepository(ds));
  });
  afterAll(async () => {
    for (const r of replicas ?? []) await r.close();
    for (const ds of sources) await ds.destroy();
    await db?.drop();
  });

  it('runs a task exactly once per interval with 3 replicas checking it in tight loops', async () => {
    const INTERVAL = 250;
    const claims: Array<PeriodicClaim & { replica: number }> = [];
    const until = Date.now() + 3_000;
    await Promise.all(replicas.map(async (schedule, replica) => {
      while (Date.now() < until) {
        const claim = await schedule.claimDue('probe', INTERVAL, `replica-${replica}`);
        if (claim) {
          claims.push({ ...claim, replica });
          await schedule.finish(claim, 'ok', { result: { replica } });
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }));
    claims.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
    // Run numbers are consecutive (no run claimed twice), starts are at least one interval apart
    // on the database clock, and the task did not fall behind.
    expect(claims.map((c) => c.run)).toEqual(claims.map((_, i) => i + 1));
    const gaps = claims.slice(1).map((c, i) => c.startedAt.getTime() - claims[i].startedAt.getTime());
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(INTERVAL);
    expect(claims.length).toBeGreaterThanOrEqual(Math.floor(3_000 / INTERVAL) - 2);
    expect(claims.length).toBeLessThanOrEqual(Math.ceil(3_000 / INTERVAL) + 1);
    expect(new Set(claims.map((c) => c.replica)).size).toBeGreaterThanOrEqual(2); // the replicas really competed

    const [row] = await replicas[0].list();
    expect(row).toMatchObject({ name: 'probe', intervalMs: INTERVAL, runCount: String(claims.length), lastOutcome: 'ok', lastResult: { replica: claims[claims.length - 1]?.replica } });
  });

  it('waits the first delay on a fresh installation, and records a failure with its reason without overwriting a newer run', async () => {
    expect(await replicas[0].claimDue('delayed', 60_000, 'a', 60_000)).toBeNull();
    const first = await replicas[1].claimDue('flaky', 60_000, 'b');
    expect(first).toMatchObject({ run: 1 });
    await replicas[1].finish(first as PeriodicClaim, 'failed', { error: 'reconciler: driver unreachable' });
    // An interval shortened by configuration applies from the last start.
    await sources[0].query(`UPDATE periodic_tasks SET last_started_at = now() - interval '2 seconds' WHERE name = 'flaky'`);
    const second = await replicas[2].claimDue('flaky', 1_000, 'c');
    expect(second).toMatchObject({ run: 2 });
    await replicas[1].finish(first as PeriodicClaim, 'ok'); // a late finish of run 1
    const flaky = (await replicas[0].list()).find((t) => t.name === 'flaky');
    expect(flaky).toMatchObject({ runCount: '2', lastWorker: 'c', lastOutcome: 'failed', lastError: 'reconciler: driver unreachable' });
  });

  it('never overlaps two runs of a task on different replicas when a run lasts longer than its interval: the next starts when it ends', async () => {
    const logger = createLogger({ name: 'test-periodic', level: 'silent' });
    const spans: Array<{ replica: number; start: number; end: number }> = [];
    const until = Date.now() + 2_500;
    await Promise.all(replicas.map(async (schedule, replica) => {
      const task = {
        name: 'slow', intervalMs: 100, firstDelayMs: 0,
        run: async () => {
          const start = Date.now();
          await new Promise((r) => setTimeout(r, 400)); // four intervals long
          spans.push({ replica, start, end: Date.now() });
        },
      };
      // As PeriodicRunner does: one lane per task per replica, checked again as soon as the last check ends.
      while (Date.now() < until) {
        await runPeriodicTaskIfDue(schedule, task, `replica-${replica}`, logger);
        await new Promise((r) => setTimeout(r, 10));
      }
    }));
    spans.sort((a, b) => a.start - b.start);
    const overlapping = spans.filter((s, i) => i > 0 && s.start < spans[i - 1].end);
    expect(overlapping).toEqual([]);
    expect(spans.length).toBeGreaterThanOrEqual(4); // it kept running, back to back
    expect(new Set(spans.map((s) => s.replica)).size).toBeGreaterThanOrEqual(2);
  });

  it('refuses at start-up an interval longer than the schedule can store, naming the setting (it used to fail every claim, quietly)', async () => {
    const config = { RECONCILE_INTERVAL_SECONDS: Math.floor(MAX_PERIODIC_INTERVAL_MS / 1000) + 1, STORAGE_SWEEP_INTERVAL_SECONDS: 300, BILLING_RECONCILE_INTERVAL_SECONDS: 0 } as ControlPlaneConfig;
    const build = (c: ControlPlaneConfig) => new PeriodicRunner(replicas[0], null as never, null as never, null as never, c, createLogger({ name: 'test-periodic', level: 'silent' }), null as never);
    expect(() => build(config)).toThrow('RECONCILE_INTERVAL_SECONDS is too long: periodic intervals are at most 2147483 seconds (about 24 days)');
    expect(() => build({ ...config, RECONCILE_INTERVAL_SECONDS: 2_147_483 })).not.toThrow();
    await expect(replicas[0].claimDue('huge', MAX_PERIODIC_INTERVAL_MS + 1, 'a')).rejects.toThrow(RangeError);
  });

  it('shows the worker\'s periodic tasks and their last run in GET /v1/periodic-tasks', async () => {
    const cp = await startTestControlPlane({ JOB_WORKER_ENABLED: 'true', RECONCILE_INTERVAL_SECONDS: '1', STORAGE_SWEEP_INTERVAL_SECONDS: '1' });
    try {
      let items: Array<{ name: string; lastRun: { outcome: string; result: unknown } | null }> = [];
      for (let i = 0; i < 60 && !(items.length === 4 && items.every((t) => t.lastRun?.outcome)); i++) {
        items = (await cp.api('GET', '/v1/periodic-tasks')).body.items;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(items.map((t) => t.name)).toEqual(['directory-repair', 'lifecycle-sweep', 'reconcile', 'storage-sweep']);
      expect(items.find((t) => t.name === 'directory-repair')?.lastRun).toMatchObject({ outcome: 'ok', result: { republished: 0 } });
      expect(items.find((t) => t.name === 'lifecycle-sweep')?.lastRun).toMatchObject({ outcome: 'ok', result: { changed: 0 } });
      expect(items.find((t) => t.name === 'reconcile')?.lastRun).toMatchObject({ outcome: 'ok', result: { drift: expect.any(Number) } });
      expect((await cp.api('GET', '/v1/periodic-tasks', undefined, { token: null })).status).toBe(401);
    } finally {
      await cp.close();
    }
  });
});
