/**
 * Job queue benchmark: what Silo's queue semantics cost per job (enqueue in its own transaction,
 * then claim + succeed by 4 workers on their own pools, as separate worker processes would),
 * beside a baseline run in the same process on the same PostgreSQL: the minimal queue that
 * FOR UPDATE SKIP LOCKED allows (insert; claim by UPDATE … RETURNING; mark done), without
 * dedupe keys, the one-running-job-per-tenant index, attempt records or leases.
 *
 * Then the same workload through graphile-worker and pg-boss (devDependencies; production code
 * does not use them), each queue in turn on the same database:
 * - enqueue: each job inside a caller's transaction that also updates the tenant's row (the way
 *   Silo enqueues, in the transaction of the tenant change). Silo: `JobRepository.enqueue` with the
 *   TypeORM manager; graphile-worker: `graphile_worker.add_job(…, queue_name => tenant, job_key
 *   => key)` on the caller's client; pg-boss: `send(…, { singletonKey: tenant, db })` with the
 *   caller's client as `db`, on a queue with the `singleton` policy (one active job per key);
 * - drain: 4 workers, each on its own pool, no-op handler (graphile-worker: 4 `run()` runners
 *   with concurrency 1; pg-boss: 4 instances calling `fetch` + `complete`, as Silo's bench calls
 *   `claim` + `succeed`). p50/p99 is a worker's cycle per job (claim to done; graphile-worker:
 *   from one job's start to its next job's start on the same worker);
 * - per-tenant serialization: 8 tenants × 10 jobs whose handler sleeps 20 ms, 4 workers; the
 *   start and finish of every handler run is recorded and overlapping runs of one tenant counted
 *   (the baseline, which has no such rule, shows the check finds overlaps when they happen);
 * - head of line: tenant X's first job runs 1 s, X's second job is next in line, then 12 jobs of
 *   12 other tenants: how many of those finish while X's first job runs.
 *
 *   npm run build && node dist/scripts/bench/jobs.js [--jobs 2000] [--tenants 200] [--write-docs]
 *
 * BENCH_DATABASE_URL: superuser URL (default postgres://postgres@127.0.0.1:5432/postgres).
 * Everything created is dropped at the end. --write-docs rewrites the "Job queue" section of
 * docs/benchmarks.md with this run's figures.
 */
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Logger, makeWorkerUtils, run, type Runner, type Task } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { Client, Pool, type PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { createControlDataSource, migrateControlDb } from '../../control-plane/db/data-source';
import { JobType } from '../../control-plane/jobs/job.entity';
import { JobRepository } from '../../control-plane/jobs/job.repository';
import { flag, writeDocSection } from '../support/dev-utils';
import { summary } from './stats';

const WORKERS = 4;
const BOSS_QUEUE = 'bench';
const quiet = new Logger(() => () => undefined);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One handler run, as the handler saw it (start and finish in performance.now() ms). */
interface RunRecord { tenant: string; key: string; start: number; end: number }
/** What a handler is asked to do: wait `sleepFor(key)` ms. */
type Handler = (tenant: string, key: string) => Promise<void>;

/** A queue under test: enqueue inside the caller's transaction, drain with WORKERS workers. */
interface QueueUnderTest {
  label: string;
  /** Enqueues inside the caller's open transaction (`c` for pg, `m` for TypeORM via `tx`). */
  enqueueInTx(tenant: string, key: string): Promise<void>;
  /** Runs WORKERS workers until `expected` jobs are done; returns the per-job cycle times and the drain's seconds. */
  drain(expected: number, handler: Handler): Promise<{ cycles: number[]; seconds: number }>;
  /** Jobs waiting or running. */
  open(): Promise<number>;
  /** Empties the queue between phases. */
  reset(): Promise<void>;
}

/** Overlapping runs of one tenant: a run that starts before an earlier run of the tenant finished. */
function countOverlaps(runs: RunRecord[]): number {
  const byTenant = new Map<string, RunRecord[]>();
  for (const r of runs) byTenant.set(r.tenant, [...(byTenant.get(r.tenant) ?? []), r]);
  let overlaps = 0;
  for (const list of byTenant.values()) {
    list.sort((a, b) => a.start - b.start);
    let lastEnd = -Infinity;
    for (const r of list) {
      if (r.start < lastEnd) overlaps++;
      lastEnd = Math.max(lastEnd, r.end);
    }
  }
  return overlaps;
}

/** A polling loop: claim; when nothing is claimable but jobs remain (a tenant's job is running), wait 5 ms. */
async function loopWorkers(expected: number, handler: Handler, claim: (w: number) => Promise<{ tenant: string; key: string; done: () => Promise<void> } | null>): Promise<{ cycles: number[]; seconds: number }> {
  const t0 = performance.now();
  let done = 0;
  const cycles: number[] = [];
  await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
    while (done < expected) {
      const s = performance.now();
      const job = await claim(w);
      if (!job) {
        await sleep(5);
        continue;
      }
      await handler(job.tenant, job.key);
      await job.done();
      done++;
      cycles.push(performance.now() - s);
    }
  }));
  return { cycles, seconds: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jobs = Number(flag(args, '--jobs') ?? 2000);
  const tenants = Number(flag(args, '--tenants') ?? 200);
  const writeDocs = args.includes('--write-docs');
  const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `silo_bench_jobs_${process.pid}`;
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const sources: DataSource[] = [];
  const baseline = new Pool({ connectionString: url, max: WORKERS + 1 });
  baseline.on('error', () => undefined); // the final DROP DATABASE … WITH (FORCE) ends its idle sessions
  const caller = new Pool({ connectionString: url, max: 1, application_name: 'silo-bench-caller' });
  caller.on('error', () => undefined);
  let callerClient: PoolClient | null = null;
  const bosses: PgBoss[] = [];
  const out: string[] = [];
  const log = (line: string) => {
    console.log(line);
    out.push(line);
  };
  try {
    for (let i = 0; i <= WORKERS; i++) {
      const ds = createControlDataSource(url, { poolSize: 2, applicationName: `silo-bench-jobs-${i}` });
      await ds.initialize();
      sources.push(ds);
    }
    await migrateControlDb(sources[0] as DataSource);
    const repos = sources.map((ds) => new JobRepository(ds, { JOB_MAX_ATTEMPTS: 8 }));
    const tenantIds = Array.from({ length: tenants }, () => randomUUID());

    // --- Silo's queue ---
    const enqueueMs: number[] = [];
    let t0 = performance.now();
    for (let i = 0; i < jobs; i++) {
      const s = performance.now();
      await (sources[0] as DataSource).transaction((m) => (repos[0] as JobRepository).enqueue({ type: JobType.Provision, tenantId: tenantIds[i % tenants], dedupeKey: `bench:${i}` }, m));
      enqueueMs.push(performance.now() - s);
    }
    const siloEnqueueS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const claimMs: number[] = [];
    await Promise.all(repos.slice(1).map(async (r, w) => {
      for (;;) {
        const s = performance.now();
        const job = await r.claim(`bench-${w}`, 60);
        if (!job) break;
        await r.succeed(job.id, `bench-${w}`);
        claimMs.push(performance.now() - s);
      }
    }));
    const siloDrainS = (performance.now() - t0) / 1000;

    // --- Baseline: the minimal SKIP LOCKED queue ---
    await baseline.query(`CREATE TABLE bench_queue (id uuid PRIMARY KEY, tenant_id uuid, status text NOT NULL, run_at timestamptz NOT NULL DEFAULT now(), created_at timestamptz NOT NULL DEFAULT now(), key text)`);
    await baseline.query(`CREATE INDEX ON bench_queue (run_at) WHERE status = 'queued'`);
    const baseEnqueueMs: number[] = [];
    t0 = performance.now();
    for (let i = 0; i < jobs; i++) {
      const s = performance.now();
      const c = await baseline.connect();
      try {
        await c.query('BEGIN');
        await c.query(`INSERT INTO bench_queue (id, tenant_id, status) VALUES ($1, $2, 'queued')`, [randomUUID(), tenantIds[i % tenants]]);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      baseEnqueueMs.push(performance.now() - s);
    }
    const baseEnqueueS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const baseClaimMs: number[] = [];
    await Promise.all(Array.from({ length: WORKERS }, async () => {
      for (;;) {
        const s = performance.now();
        const r = await baseline.query<{ id: string }>(
          `UPDATE bench_queue SET status = 'running' WHERE id = (SELECT id FROM bench_queue WHERE status = 'queued' AND run_at <= now() ORDER BY run_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id`);
        const id = r.rows[0]?.id;
        if (!id) break;
        await baseline.query(`UPDATE bench_queue SET status = 'succeeded' WHERE id = $1`, [id]);
        baseClaimMs.push(performance.now() - s);
      }
    }));
    const baseDrainS = (performance.now() - t0) / 1000;

    const e = summary(enqueueMs);
    const be = summary(baseEnqueueMs);
    const c = summary(claimMs);
    const bc = summary(baseClaimMs);
    const line = (label: string, n: number, secs: number, s: ReturnType<typeof summary>) =>
      `| ${label} | ${n} | ${Math.round(n / secs)}/s | ${s.p50.toFixed(2)} ms | ${s.p99.toFixed(2)} ms |`;
    const pg = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
    const env = `${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'}), node ${process.version}, PostgreSQL ${pg} on loopback, ${jobs} jobs over ${tenants} tenants, ${WORKERS} workers on their own pools, load average ${loadavg()[0]?.toFixed(1)} at start, ${new Date().toISOString().slice(0, 10)}`;
    log(env);
    log('| Operation | Jobs | Rate | p50 | p99 |');
    log('|---|---|---|---|---|');
    log(line('Silo enqueue (own transaction)', jobs, siloEnqueueS, e));
    log(line('Baseline enqueue (INSERT in a transaction)', jobs, baseEnqueueS, be));
    log(line(`Silo claim + succeed (${WORKERS} workers)`, claimMs.length, siloDrainS, c));
    log(line(`Baseline claim + done (${WORKERS} workers)`, baseClaimMs.length, baseDrainS, bc));
    log(`Silo / baseline: enqueue ${(e.p50 / be.p50).toFixed(2)}x p50, claim+succeed ${(c.p50 / bc.p50).toFixed(2)}x p50; drain rate ${(claimMs.length / siloDrainS / (baseClaimMs.length / baseDrainS)).toFixed(2)}x`);

    // --- The comparison: the same workload through each queue, one after another ---
    await baseline.query(`TRUNCATE bench_queue`);
    await baseline.query(`CREATE TABLE bench_tenants (id uuid PRIMARY KEY, changes int NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())`);
    const allTenants = [...tenantIds, ...Array.from({ length: 8 + 13 }, () => randomUUID())];
    await baseline.query(`INSERT INTO bench_tenants (id) SELECT unnest($1::uuid[])`, [allTenants]);

    // The caller's transaction: the tenant change, then the enqueue, one commit.
    const inCallerTx = async (tenant: string, enqueue: (c: PoolClient) => Promise<void>) => {
      const cl = callerClient ?? (callerClient = await caller.connect());
      await cl.query('BEGIN');
      try {
        await cl.query(`UPDATE bench_tenants SET changes = changes + 1, updated_at = now() WHERE id = $1`, [tenant]);
        await enqueue(cl);
        await cl.query('COMMIT');
      } catch (err) {
        await cl.query('ROLLBACK');
        throw err;
      }
    };

    const silo: QueueUnderTest = {
      label: 'Silo',
      enqueueInTx: (tenant, key) => (sources[0] as DataSource).transaction(async (m) => {
        await m.query(`UPDATE bench_tenants SET changes = changes + 1, updated_at = now() WHERE id = $1`, [tenant]);
        await (repos[0] as JobRepository).enqueue({ type: JobType.Provision, tenantId: tenant, dedupeKey: key }, m);
      }),
      drain: (expected, handler) => loopWorkers(expected, handler, async (w) => {
        const r = repos[w + 1] as JobRepository;
        const job = await r.claim(`bench-${w}`, 60);
        if (!job) return null;
        return { tenant: job.tenantId as string, key: job.dedupeKey as string, done: async () => { await r.succeed(job.id, `bench-${w}`, job.run); } };
      }),
      reset: async () => {
        await baseline.query(`TRUNCATE job_runs, provisioning_steps, jobs CASCADE`);
      },
      open: async () => Number((await baseline.query(`SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')`)).rows[0].n),
    };

    const base: QueueUnderTest = {
      label: 'Baseline',
      enqueueInTx: (tenant, key) => inCallerTx(tenant, async (cl) => {
        await cl.query(`INSERT INTO bench_queue (id, tenant_id, status, key) VALUES ($1, $2, 'queued', $3)`, [randomUUID(), tenant, key]);
      }),
      drain: (expected, handler) => loopWorkers(expected, handler, async () => {
        const r = await baseline.query<{ id: string; tenant_id: string; key: string }>(
          `UPDATE bench_queue SET status = 'running' WHERE id = (SELECT id FROM bench_queue WHERE status = 'queued' AND run_at <= now() ORDER BY run_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, tenant_id, key`);
        const row = r.rows[0];
        if (!row) return null;
        return { tenant: row.tenant_id, key: row.key, done: async () => { await baseline.query(`UPDATE bench_queue SET status = 'succeeded' WHERE id = $1`, [row.id]); } };
      }),
      reset: async () => {
        await baseline.query(`TRUNCATE bench_queue`);
      },
      open: async () => Number((await baseline.query(`SELECT count(*) AS n FROM bench_queue WHERE status IN ('queued', 'running')`)).rows[0].n),
    };

    let graphileEmptyPolls = 0;
    const utils = await makeWorkerUtils({ connectionString: url, logger: quiet });
    await utils.migrate();
    await utils.release();
    const graphile: QueueUnderTest = {
      label: 'graphile-worker',
      enqueueInTx: (tenant, key) => inCallerTx(tenant, async (cl) => {
        await cl.query(`SELECT graphile_worker.add_job('bench', json_build_object('tenant', $1::text, 'key', $2::text), queue_name => $1::text, job_key => $2::text, max_attempts => 8)`, [tenant, key]);
      }),
      drain: async (expected, handler) => {
        let done = 0;
        let finished: () => void = () => undefined;
        const allDone = new Promise<void>((r) => { finished = r; });
        const lastStart = new Map<string, number>();
        let firstStart = Infinity;
        let lastComplete = 0;
        const cycles: number[] = [];
        const task: Task = async (payload) => {
          const p = payload as { tenant: string; key: string };
          await handler(p.tenant, p.key);
        };
        const runners: Runner[] = [];
        for (let w = 0; w < WORKERS; w++) {
          const runner = await run({ connectionString: url, maxPoolSize: 2, concurrency: 1, noHandleSignals: true, pollInterval: 100, logger: quiet, taskList: { bench: task } });
          runner.events.on('job:start', ({ worker }) => {
            const now = performance.now();
            firstStart = Math.min(firstStart, now);
            const prev = lastStart.get(worker.workerId);
            if (prev !== undefined) cycles.push(now - prev);
            lastStart.set(worker.workerId, now);
          });
          runner.events.on('worker:getJob:empty', () => { graphileEmptyPolls++; });
          runner.events.on('job:complete', () => {
            lastComplete = performance.now();
            if (++done >= expected) finished();
          });
          runners.push(runner);
        }
        await allDone;
        await Promise.all(runners.map((r) => r.stop()));
        // From the first job's start to the last job's completion: the runners' start-up is not drain time.
        return { cycles, seconds: (lastComplete - firstStart) / 1000 };
      },
      reset: async () => {
        await baseline.query(`DELETE FROM graphile_worker._private_jobs`);
      },
      open: async () => Number((await baseline.query(`SELECT count(*) AS n FROM graphile_worker.jobs`)).rows[0].n),
    };

    for (let i = 0; i < WORKERS; i++) {
      const boss = new PgBoss({ connectionString: url, max: 2, supervise: false, schedule: false, migrate: i === 0, application_name: `silo-bench-boss-${i}` });
      boss.on('error', () => undefined); // fetch errors (unique violations) are swallowed inside fetch; nothing else is expected
      await boss.start();
      bosses.push(boss);
    }
    await (bosses[0] as PgBoss).createQueue(BOSS_QUEUE, { name: BOSS_QUEUE, policy: 'singleton', retryLimit: 7 });
    let bossEmptyFetches = 0;
    const boss: QueueUnderTest = {
      label: 'pg-boss',
      enqueueInTx: (tenant, key) => inCallerTx(tenant, async (cl) => {
        const db = { executeSql: (text: string, values: unknown[]) => cl.query(text, values) };
        await (bosses[0] as PgBoss).send(BOSS_QUEUE, { tenant, key }, { singletonKey: tenant, db });
      }),
      drain: (expected, handler) => loopWorkers(expected, handler, async (w) => {
        const b = bosses[w] as PgBoss;
        const [job] = await b.fetch<{ tenant: string; key: string }>(BOSS_QUEUE, { batchSize: 1 });
        if (!job) {
          bossEmptyFetches++;
          return null;
        }
        return { tenant: job.data.tenant, key: job.data.key, done: async () => { await b.complete(BOSS_QUEUE, job.id); } };
      }),
      reset: async () => {
        await baseline.query(`DELETE FROM pgboss.job`);
      },
      open: async () => Number((await baseline.query(`SELECT count(*) AS n FROM pgboss.job WHERE state < 'completed'`)).rows[0].n),
    };

    interface Result { label: string; dedupe: number; enqueueS: number; enqueue: ReturnType<typeof summary>; drainS: number; drained: number; cycle: ReturnType<typeof summary>; serialRuns: number; overlaps: number; holDone: number; holOthersMs: number; emptyFetches?: number; holEmptyFetches?: number }
    const results: Result[] = [];
    const SERIAL_TENANTS = allTenants.slice(tenants, tenants + 8);
    const [holX, ...holOthers] = allTenants.slice(tenants + 8) as [string, ...string[]];
    for (const q of [base, silo, graphile, boss]) {
      await q.reset();
      // 0. dedupe: the same key enqueued twice while the first is waiting
      await q.enqueueInTx(tenantIds[0] as string, 'dedupe:1');
      await q.enqueueInTx(tenantIds[0] as string, 'dedupe:1');
      const dedupe = await q.open();
      await q.reset();
      // 1. enqueue in the caller's transaction
      const qEnqueue: number[] = [];
      t0 = performance.now();
      for (let i = 0; i < jobs; i++) {
        const s = performance.now();
        await q.enqueueInTx(tenantIds[i % tenants] as string, `bench:${i}`);
        qEnqueue.push(performance.now() - s);
      }
      const enqueueS = (performance.now() - t0) / 1000;
      // 2. drain, no-op handler
      bossEmptyFetches = 0;
      graphileEmptyPolls = 0;
      const { cycles, seconds: drainS } = await q.drain(jobs, async () => undefined);
      const emptyFetches = q === boss ? bossEmptyFetches : q === graphile ? graphileEmptyPolls : undefined;
      // 3. per-tenant serialization: 8 tenants × 10 jobs of 20 ms
      await q.reset();
      // Tenant by tenant (10 jobs of the first tenant, then the next): without a per-tenant rule, 4 workers run one tenant's jobs together.
      for (let i = 0; i < 80; i++) await q.enqueueInTx(SERIAL_TENANTS[Math.floor(i / 10)] as string, `serial:${i}`);
      const runs: RunRecord[] = [];
      await q.drain(80, async (tenant, key) => {
        const start = performance.now();
        await sleep(20);
        runs.push({ tenant, key, start, end: performance.now() });
      });
      // 4. head of line: X's 1 s job, X's next job, then 12 other tenants' jobs
      await q.reset();
      await q.enqueueInTx(holX, 'hol:x1');
      await sleep(5);
      await q.enqueueInTx(holX, 'hol:x2');
      for (const [i, t] of holOthers.entries()) await q.enqueueInTx(t, `hol:o${i}`);
      const holEnds = new Map<string, number>();
      bossEmptyFetches = 0;
      t0 = performance.now();
      await q.drain(2 + holOthers.length, async (_tenant, key) => {
        if (key === 'hol:x1') await sleep(1000);
        holEnds.set(key, performance.now());
      });
      const x1End = holEnds.get('hol:x1') ?? Infinity;
      const otherEnds = holOthers.map((_, i) => holEnds.get(`hol:o${i}`) ?? Infinity);
      const holEmptyFetches = q === boss ? bossEmptyFetches : undefined;
      await q.reset();
      results.push({
        label: q.label, dedupe, enqueueS, enqueue: summary(qEnqueue), drainS, drained: jobs, cycle: summary(cycles), serialRuns: runs.length,
        overlaps: countOverlaps(runs), holDone: otherEnds.filter((t) => t < x1End).length, holOthersMs: Math.max(...otherEnds) - t0, emptyFetches, holEmptyFetches,
      });
    }

    log('');
    log(`Same workload through each queue: enqueue inside a caller's transaction that also updates the tenant's row; drain by ${WORKERS} workers (no-op handler); per-tenant check: 8 tenants × 10 jobs of 20 ms; head of line: tenant X's 1 s job, X's next job, then 12 other tenants' jobs.`);
    log('| Queue | Same key twice: open jobs | Enqueue rate | Enqueue p50 | Enqueue p99 | Drain rate | Cycle p50 | Cycle p99 | Overlapping runs of a tenant | Others done during X\'s 1 s job | Others all done after |');
    log('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of results) {
      log(`| ${r.label} | ${r.dedupe} | ${Math.round(jobs / r.enqueueS)}/s | ${r.enqueue.p50.toFixed(2)} ms | ${r.enqueue.p99.toFixed(2)} ms | ${Math.round(r.drained / r.drainS)}/s | ${r.cycle.p50.toFixed(2)} ms | ${r.cycle.p99.toFixed(2)} ms | ${r.overlaps} of ${r.serialRuns} | ${r.holDone} of ${holOthers.length} | ${Math.round(r.holOthersMs)} ms |`);
    }
    const siloR = results.find((r) => r.label === 'Silo');
    for (const r of results.filter((x) => x.label === 'graphile-worker' || x.label === 'pg-boss')) {
      if (siloR) log(`${r.label} / Silo: enqueue ${(r.enqueue.p50 / siloR.enqueue.p50).toFixed(2)}x p50, drain rate ${(r.drained / r.drainS / (siloR.drained / siloR.drainS)).toFixed(2)}x`);
    }
    const bossR = results.find((r) => r.label === 'pg-boss');
    const graphileR = results.find((r) => r.label === 'graphile-worker');
    if (graphileR?.emptyFetches !== undefined) log(`graphile-worker get_job calls that found nothing (each then waits pollInterval, 100 ms here, or a new job's notification) in the drain: ${graphileR.emptyFetches}.`);
    if (bossR?.emptyFetches !== undefined) log(`pg-boss fetches that returned nothing while jobs were queued: ${bossR.emptyFetches} in the drain, ${bossR.holEmptyFetches ?? '?'} in the head-of-line run.`);
    const serialBroken = results.filter((r) => r.label !== 'Baseline' && r.overlaps > 0).map((r) => r.label);
    log(serialBroken.length ? `PER-TENANT SERIALIZATION VIOLATED by: ${serialBroken.join(', ')}` : 'Per-tenant serialization held for Silo, graphile-worker and pg-boss (0 overlapping runs); the baseline shows what the check catches.');

    if (writeDocs) {
      const command = `npm run build && node dist/scripts/bench/jobs.js --jobs ${jobs} --tenants ${tenants} --write-docs`;
      const section = [
        '## Job queue',
        '',
        `Command: \`${command}\`. Written by the bench from the run below (${env}).`,
        '',
        `First table: ${jobs} provisioning jobs over ${tenants} tenants, each enqueued in its own`,
        'transaction through `JobRepository.enqueue`, then drained by 4 workers on their own connection',
        'pools (`claim` + `succeed`), beside a baseline in the same process on the same PostgreSQL: the',
        'minimal `FOR UPDATE SKIP LOCKED` queue (insert; claim by `UPDATE … RETURNING`; mark done) with no',
        'dedupe key, no one-running-job-per-tenant rule, no attempt record, no lease and no entity load.',
        '',
        ...out.slice(1, 7),
        '',
        `${out[7]}. Silo's claim is one statement that also ends a lost attempt and records the new`,
        'one in `job_runs`, then a second round trip loads the job entity; `succeed` updates both tables.',
        '',
        'Second table: the same jobs through each queue in turn, on the same database. Enqueue: inside a',
        'caller\'s transaction that also updates the tenant\'s row (as Silo enqueues with the tenant',
        'change). Silo: `JobRepository.enqueue` with the TypeORM manager; graphile-worker 0.17.3',
        '(0.18 and pg-boss 11+ need Node 22; Silo supports Node 20.19):',
        '`graphile_worker.add_job(…, queue_name => tenant, job_key => key, max_attempts => 8)` on the',
        'caller\'s client; pg-boss 10.4.2: `send(…, { singletonKey:',
        'tenant, db })` with the caller\'s client as `db`, on a queue with the `singleton` policy (one',
        'active job per key). Drain: 4 workers, each on its own pool, no-op handler (graphile-worker: 4',
        '`run()` runners, concurrency 1; pg-boss: 4 instances calling `fetch` + `complete`, since its',
        '`work()` loop waits out its polling interval (at least 0.5 s) after every batch). Cycle: a',
        'worker\'s time per job, claim to done (graphile-worker: one job\'s start to the next on the same',
        'worker). Overlaps: start and finish of every handler run (8 tenants × 10 jobs of 20 ms), a run',
        'counted when it starts before an earlier run of its tenant finished. Head of line: tenant X\'s',
        'first job runs 1 s, X\'s second job is next in line, then one job each of 12 other tenants.',
        '',
        ...out.slice(10, 16),
        '',
        ...out.slice(16).map((l) => `${l}  `),
        '',
        'Figures vary a lot between runs on this shared 2-CPU VM (other sessions\' work): compare queues',
        'within one run, and run it more than once before reading a difference into them.',
      ].join('\n');
      writeDocSection(join(resolve(__dirname, '..', '..', '..'), 'docs', 'benchmarks.md'), 'Job queue', section);
    }
  } finally {
    for (const b of bosses) await b.stop({ graceful: false, wait: true }).catch(() => undefined);
    for (const ds of sources) await ds.destroy().catch(() => undefined);
    await baseline.end().catch(() => undefined);
    (callerClient as PoolClient | null)?.release();
    await caller.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`jobs bench failed: ${(err as Error).message}\n`);
  process.exit(1);
});
