/**
 * Job queue benchmark: what Silo's queue semantics cost per job (enqueue in its own transaction,
 * then claim + succeed by 4 workers on their own pools, as separate worker processes would),
 * beside a baseline run in the same process on the same PostgreSQL: the minimal queue that
 * FOR UPDATE SKIP LOCKED allows (insert; claim by UPDATE … RETURNING; mark done), without
 * dedupe keys, the one-running-job-per-tenant index, attempt records or leases.
 *
 *   npm run build && node dist/scripts/bench/jobs.js [--jobs 2000] [--tenants 200]
 *
 * BENCH_DATABASE_URL: superuser URL (default postgres://postgres@127.0.0.1:5432/postgres).
 * Everything created is dropped at the end.
 */
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { Client, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { createControlDataSource, migrateControlDb } from '../../control-plane/db/data-source';
import { JobType } from '../../control-plane/jobs/job.entity';
import { JobRepository } from '../../control-plane/jobs/job.repository';
import { flag } from '../support/dev-utils';
import { summary } from './stats';

const WORKERS = 4;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jobs = Number(flag(args, '--jobs') ?? 2000);
  const tenants = Number(flag(args, '--tenants') ?? 200);
  const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `silo_bench_jobs_${process.pid}`;
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const sources: DataSource[] = [];
  const baseline = new Pool({ connectionString: url, max: WORKERS + 1 });
  baseline.on('error', () => undefined); // the final DROP DATABASE … WITH (FORCE) ends its idle sessions
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
    await baseline.query(`CREATE TABLE bench_queue (id uuid PRIMARY KEY, tenant_id uuid, status text NOT NULL, run_at timestamptz NOT NULL DEFAULT now(), created_at timestamptz NOT NULL DEFAULT now())`);
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
    console.log(`${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'}), node ${process.version}, PostgreSQL ${pg} on loopback, ${jobs} jobs over ${tenants} tenants, ${WORKERS} workers on their own pools, ${new Date().toISOString().slice(0, 10)}`);
    console.log('| Operation | Jobs | Rate | p50 | p99 |');
    console.log('|---|---|---|---|---|');
    console.log(line('Silo enqueue (own transaction)', jobs, siloEnqueueS, e));
    console.log(line('Baseline enqueue (INSERT in a transaction)', jobs, baseEnqueueS, be));
    console.log(line(`Silo claim + succeed (${WORKERS} workers)`, claimMs.length, siloDrainS, c));
    console.log(line(`Baseline claim + done (${WORKERS} workers)`, baseClaimMs.length, baseDrainS, bc));
    console.log(`Silo / baseline: enqueue ${(e.p50 / be.p50).toFixed(2)}x p50, claim+succeed ${(c.p50 / bc.p50).toFixed(2)}x p50; drain rate ${(claimMs.length / siloDrainS / (baseClaimMs.length / baseDrainS)).toFixed(2)}x`);
  } finally {
    for (const ds of sources) await ds.destroy().catch(() => undefined);
    await baseline.end().catch(() => undefined);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`jobs bench failed: ${(err as Error).message}\n`);
  process.exit(1);
});
