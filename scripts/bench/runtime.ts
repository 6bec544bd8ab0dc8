/**
 * Tenant runtime benchmark, one run on one PostgreSQL:
 *   (a) QPS and p50/p99 of a small SELECT through the runtime, 1 tenant and round-robin over N tenants;
 *   (b) the same request through a bare node:http + pg server (the baseline);
 *   (c) first-request latency for a tenant with no pool, beside a plain pg connect;
 *   (d) runtime RSS at 1 and N tenants.
 * Tenants are provisioned with the local driver (role + database + secret) and dropped at the end.
 *
 *   npm run build && node dist/scripts/bench/runtime.js [--tenants 1000] [--seconds 4] [--concurrency 16] [--write-docs]
 *
 * Postgres: a private throwaway cluster (the host's binaries, max_connections=1300) unless
 * BENCH_DATABASE_URL names a superuser URL to use instead. Redis: BENCH_REDIS_URL (default
 * redis://127.0.0.1:6379, own key prefix), else a throwaway redis-server. Loopback only.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Pool } from 'pg';
import { createControlDataSource, migrateControlDb } from '../../control-plane/db/data-source';
import { LocalProvisioningDriver } from '../../provisioning/local/local-provisioning.driver';
import { ident } from '../../provisioning/local/pg-names';
import { LocalSecretStore } from '../../provisioning/secrets/local-secret-store';
import { DEFAULT_TIERS } from '../../provisioning/tiers';
import { seedTenants, SeededTenant } from './seed-tenants';
import { summary } from './stats';
import { BenchCluster, dropBenchObjects } from './runtime/cluster';
import { LoadRequest, LoadResult, runLoad, send } from './runtime/load';
import { flag, freePort, redisAnswers, withDb, writeDocSection } from '../support/dev-utils';

type Tenant = SeededTenant;

interface Row {
  label: string;
  qps: number;
  p50: number;
  p99: number;
  errors: number;
  load: number;
}

const repoRoot = resolve(__dirname, '..', '..', '..');
const distBench = join(repoRoot, 'dist', 'scripts', 'bench', 'runtime');
const SQL = { sql: 'SELECT $1::int AS id, $2::text AS greeting', params: [42, 'hello'] };
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const count = Number(flag(args, '--tenants') ?? 1000);
  const seconds = Number(flag(args, '--seconds') ?? 4);
  const concurrency = Number(flag(args, '--concurrency') ?? 16);
  // Like the other benches, docs/benchmarks.md is only rewritten when asked (a short trial run must not replace the published figures).
  const writeDocs = args.includes('--write-docs');
  const started = Date.now();

  const cluster = process.env.BENCH_DATABASE_URL ? null : new BenchCluster(await freePort());
  const children: ChildProcess[] = [];
  let redisChild: ChildProcess | null = null;
  const tenants: Tenant[] = [];
  let adminUrl = process.env.BENCH_DATABASE_URL ?? '';
  let admin: Pool | null = null;
  let control: Pool | null = null;
  let driver: LocalProvisioningDriver | null = null;
  const names = { control: `silo_bench_rt_${process.pid}_ctl`, template: `silo_bench_rt_${process.pid}_tpl` };

  const tiersFile = join(tmpdir(), `silo-bench-tiers-${process.pid}.json`);
  const cleanup = async () => {
    rmSync(tiersFile, { force: true });
    for (const c of children) c.kill('SIGKILL');
    redisChild?.kill('SIGKILL');
    await driver?.close().catch(() => undefined);
    await control?.end().catch(() => undefined);
    if (cluster) {
      await admin?.end().catch(() => undefined);
      cluster.stop(); // the whole cluster goes: every tenant database and role with it
      return;
    }
    if (admin) {
      log(`cleanup: dropping ${tenants.length} tenant databases and roles`);
      await dropBenchObjects(admin, { tenantRoles: tenants.map((t) => t.role), databases: [names.template, names.control] });
      await admin.end().catch(() => undefined);
    }
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    if (cluster) {
      log(`postgres: private cluster on 127.0.0.1:${cluster.port} (${cluster.dir})`);
      cluster.start();
      adminUrl = cluster.url;
    }
    admin = new Pool({ connectionString: adminUrl, max: 6 });
    const serverVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
    const { redisUrl, child } = await redisFor();
    redisChild = child;
    const kvPrefix = `silobench:${randomBytes(4).toString('hex')}:`;

    // --- setup: control database, template, N tenants through the local driver ---
    const setupStarted = Date.now();
    await admin.query(`CREATE DATABASE ${ident(names.control)}`);
    const controlUrl = withDb(adminUrl, names.control);
    const ds = createControlDataSource(controlUrl, { poolSize: 1 });
    await ds.initialize();
    await migrateControlDb(ds);
    await ds.destroy();
    control = new Pool({ connectionString: controlUrl, max: 6 });
    const masterKey = randomBytes(32);
    const secrets = new LocalSecretStore(control, masterKey);
    driver = new LocalProvisioningDriver({ adminUrl, templateDatabase: names.template, secretStore: secrets, secretPrefix: 'silo/tenants/', protectDatabases: [names.control] });
    await driver.ensureReady();
    log(`setup: provisioning ${count} tenants with the local driver (4 at a time)`);
    // One more tenant than measured: the baseline server gets its own database and role, so its pool
    // never competes with the runtime's for the role's CONNECTION LIMIT.
    const specs = Array.from({ length: count + 1 }, (_, i) => ({ id: randomUUID(), slug: `bench-${String(i + 1).padStart(5, '0')}` }));
    await seedTenants({
      driver, secrets, control, specs, concurrency: 4,
      onProvisioned: (t, done) => {
        tenants.push(t);
        if (done % 250 === 0) log(`  ${done}/${count}`);
      },
    });
    const baselineTenant = tenants.pop() as Tenant;
    const setupSeconds = (Date.now() - setupStarted) / 1000;
    log(`setup done in ${setupSeconds.toFixed(0)} s; flushing the cloned files to disk before measuring`);
    // Cloning N databases leaves gigabytes of dirty pages: let writeback finish so it does not run
    // under the measured requests.
    await admin.query('CHECKPOINT');
    execFileSync('sync');

    const first = tenants[0] as Tenant;
    const tenantUrl = (t: Tenant) => `postgres://${t.role}:${encodeURIComponent(t.password)}@${new URL(adminUrl).host}/${t.role}`;
    const body = JSON.stringify(SQL);
    const viaRuntime = (t: Tenant): LoadRequest => ({ path: '/v1/query', headers: { host: `${t.slug}.localhost`, authorization: `Bearer ${t.key}` }, body });
    const viaBaseline: LoadRequest = { path: '/v1/query', headers: {}, body };

    const baseline = await startChild(children, join(distBench, 'baseline-server.js'), { BASELINE_DATABASE_URL: tenantUrl(baselineTenant), BASELINE_POOL_SIZE: String(DEFAULT_TIERS.starter.connectionLimit) });
    // The benchmark measures routing and pooling, not the tier's rate limit (200 req/s for starter).
    writeFileSync(tiersFile, JSON.stringify({ tiers: { starter: { rateLimitPerSecond: 1_000_000, rateLimitBurst: 1_000_000 } } }));
    const runtimeEnv = {
      TIERS_FILE: tiersFile,
      // Opening 1000 pools takes ~30 s here (a connection costs ~25 ms on this VM): with the default 30 s
      // idle timeout the first pools would close before the measured rounds reach them again.
      RUNTIME_IDLE_TIMEOUT_MS: '300000',
      DATABASE_URL: controlUrl, REDIS_URL: redisUrl, BENCH_KV_PREFIX: kvPrefix, SILO_MASTER_KEY: masterKey.toString('base64'), SILO_DIRECTORY_KEY: randomBytes(32).toString('base64url'),
      RUNTIME_PORT: '0', RUNTIME_METRICS_PORT: '0', RUNTIME_PG_PORT: '0', LOG_LEVEL: 'info', RUNTIME_MAX_CONNECTIONS: String(count + 50),
    };
    const runtime = await startChild(children, join(distBench, 'runtime-server.js'), runtimeEnv);

    // --- (b) + (a): baseline, runtime 1 tenant, runtime round-robin; three rounds, median reported ---
    const warm = async (url: string, next: (i: number) => LoadRequest, n: number) => {
      for (let i = 0; i < n; i += concurrency) await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, (_, j) => send(new URL(url), undefined, next(i + j))));
    };
    await warm(baseline.url, () => viaBaseline, 500);
    await warm(runtime.url, () => viaRuntime(first), 500);
    const latBase = await runLoad(baseline.url, { concurrency: 1, durationMs: 2_000, next: () => viaBaseline });
    const latRt = await runLoad(runtime.url, { concurrency: 1, durationMs: 2_000, next: () => viaRuntime(first) });
    log(`sequential p50: baseline ${summary(latBase.latencies).p50.toFixed(3)} ms, runtime ${summary(latRt.latencies).p50.toFixed(3)} ms`);

    const rounds: Record<'base' | 'one' | 'many', LoadResult[]> = { base: [], one: [], many: [] };
    let rss1 = 0;
    let rssMany = 0;
    for (let round = 0; round < 3; round++) {
      rounds.base.push(await runLoad(baseline.url, { concurrency, durationMs: seconds * 1000, next: () => viaBaseline }));
      rounds.one.push(await runLoad(runtime.url, { concurrency, durationMs: seconds * 1000, next: () => viaRuntime(first) }));
      if (round === 0) {
        rss1 = rssOf(runtime.child);
        log(`warming ${count} tenant pools`);
        await warm(runtime.url, (i) => viaRuntime(tenants[i % count] as Tenant), count);
      }
      if (process.env.BENCH_DEBUG) log(await metricsOf(runtime.metricsUrl ?? runtime.url));
      rounds.many.push(await runLoad(runtime.url, { concurrency, durationMs: seconds * 1000, next: (i) => viaRuntime(tenants[i % count] as Tenant) }));
      if (process.env.BENCH_DEBUG) log(await metricsOf(runtime.metricsUrl ?? runtime.url));
      rssMany = Math.max(rssMany, rssOf(runtime.child));
      log(`round ${round + 1}: baseline ${rounds.base[round]?.qps.toFixed(0)} qps, runtime 1 tenant ${rounds.one[round]?.qps.toFixed(0)} qps, ${count} tenants ${rounds.many[round]?.qps.toFixed(0)} qps`);
    }
    const poolsOpen = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'silo-runtime'`);

    // --- (c) cold first requests on a fresh replica (default budget), beside plain pg connects ---
    // The first replica goes first: its pools still hold the tenants' connections, and with few
    // tenants (several connections each) the fresh one would hit the roles' connection limit.
    await stopChild(runtime.child);
    const fresh = await startChild(children, join(distBench, 'runtime-server.js'), { ...runtimeEnv, RUNTIME_MAX_CONNECTIONS: '100', RUNTIME_IDLE_TIMEOUT_MS: '1000' });
    const sample = tenants.slice(count > 100 ? count - 100 : 0).slice(0, 50);
    const once = async (url: string, t: Tenant) => {
      const t0 = process.hrtime.bigint();
      const r = await send(new URL(url), undefined, viaRuntime(t));
      if (r.status !== 200) throw new Error(`cold request failed: ${r.status} ${r.body}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const coldFull: number[] = [];
    for (const t of sample) coldFull.push(await once(fresh.url, t)); // directory and key from Redis, secret from the store, connect
    await new Promise((r) => setTimeout(r, 2_500)); // idle timeout: every pool closed and forgotten
    const coldNoPool: number[] = [];
    for (const t of sample) coldNoPool.push(await once(fresh.url, t)); // directory, key and secret cached: pool + connect
    const connectMs: number[] = [];
    const connectQueryMs: number[] = [];
    for (const t of sample) {
      const t0 = process.hrtime.bigint();
      const c = new Client({ connectionString: tenantUrl(t) });
      await c.connect();
      const t1 = process.hrtime.bigint();
      await c.query({ text: SQL.sql, values: SQL.params });
      connectMs.push(Number(t1 - t0) / 1e6);
      connectQueryMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await c.end();
    }
    const churn = await runLoad(fresh.url, { concurrency, durationMs: seconds * 1000, next: (i) => viaRuntime(tenants[i % count] as Tenant) });

    const med = (rs: LoadResult[]): Row & { r: LoadResult } => {
      const r = [...rs].sort((x, y) => x.qps - y.qps)[1] ?? (rs[0] as LoadResult);
      const s = summary(r.latencies);
      return { label: '', qps: r.qps, p50: s.p50, p99: s.p99, errors: rs.reduce((a, x) => a + x.errors, 0), load: loadavg()[0] ?? 0, r };
    };
    const result = render({
      count, seconds, concurrency, serverVersion, setupSeconds, privateCluster: !!cluster,
      base: med(rounds.base), one: med(rounds.one), many: med(rounds.many), churn: { ...med([churn]) },
      latBase: summary(latBase.latencies), latRt: summary(latRt.latencies),
      coldFull: summary(coldFull), coldNoPool: summary(coldNoPool), connect: summary(connectMs), connectQuery: summary(connectQueryMs),
      rss1, rssMany, pooled: poolsOpen.rows[0]?.n ?? 0, totalSeconds: (Date.now() - started) / 1000,
      errors: [...rounds.base, ...rounds.one, ...rounds.many, churn].map((r) => r.firstError).filter(Boolean) as string[],
    });
    process.stdout.write(`\n${result}\n`);
    if (writeDocs) {
      writeDocSection(join(repoRoot, 'docs', 'benchmarks.md'), 'Tenant runtime', result);
      log('docs/benchmarks.md updated (Tenant runtime section)');
    }
  } finally {
    await cleanup();
  }
}

type Summary = ReturnType<typeof summary>;

function render(r: {
  count: number; seconds: number; concurrency: number; serverVersion: string; setupSeconds: number; privateCluster: boolean;
  base: Row; one: Row; many: Row; churn: Row; latBase: Summary; latRt: Summary;
  coldFull: Summary; coldNoPool: Summary; connect: Summary; connectQuery: Summary;
  rss1: number; rssMany: number; pooled: number; totalSeconds: number; errors: string[];
}): string {
  const f = (v: number, d = 2) => v.toFixed(d);
  const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
  const row = (label: string, x: Row) => `| ${label} | ${f(x.qps, 0)} | ${f(x.p50)} ms | ${f(x.p99)} ms | ${x.errors} |`;
  const ratioBase = r.one.qps / r.base.qps;
  const ratioMany = r.many.qps / r.one.qps;
  const added = r.latRt.p50 - r.latBase.p50;
  const coldBudget = r.connect.p50 + 2;
  return [
    '## Tenant runtime',
    '',
    `Command: \`npm run build && node dist/scripts/bench/runtime.js --tenants ${r.count} --write-docs\` (${new Date().toISOString().slice(0, 10)}; ${f(r.totalSeconds, 0)} s in all).`,
    '',
    `Machine: ${cpus().length} vCPU shared by the load generator, the servers and PostgreSQL ${r.serverVersion.split(' ')[0]}` +
      (r.privateCluster ? ' (a private cluster started by the benchmark: max_connections=1300, fsync off; trust auth on 127.0.0.1).' : ' (BENCH_DATABASE_URL).'),
    `${r.count} tenants provisioned with the local driver (role, database from the template, secret in the local store; setup ${f(r.setupSeconds, 0)} s, not measured), dropped afterwards.`,
    `Request: \`POST /v1/query {"sql":"${SQL.sql}","params":[42,"hello"]}\` with the tenant in the Host header and its API key, ${r.concurrency} keep-alive`,
    `connections in a closed loop for ${r.seconds} s per run, three rounds, median run reported. The runtime runs with its defaults (access log on, to /dev/null)`,
    `and RUNTIME_MAX_CONNECTIONS=${r.count + 50}, RUNTIME_IDLE_TIMEOUT_MS=300000 (warming ${r.count} pools outlasts the 30 s default here) and the tier's rate limit lifted`,
    '(the benchmark measures routing and pooling, not the 200 req/s starter limit); the baseline (its own tenant database and role) is a bare node:http server with one pg pool (10), same response shape,',
    'no auth, routing, limits or metrics (`scripts/bench/runtime/baseline-server.ts`).',
    '',
    '| Run | QPS | p50 | p99 | errors |',
    '| --- | --- | --- | --- | --- |',
    row('baseline: node:http + pg, 1 database', r.base),
    row('runtime, 1 tenant', r.one),
    row(`runtime, round-robin over ${r.count} tenants (one pool each)`, r.many),
    row(`runtime, round-robin over ${r.count} tenants, default budget of 100 connections (fresh replica)`, r.churn),
    '',
    `Sequential requests (1 connection, 2 s): baseline p50 ${f(r.latBase.p50, 3)} ms / p99 ${f(r.latBase.p99, 3)} ms, runtime p50 ${f(r.latRt.p50, 3)} ms / p99 ${f(r.latRt.p99, 3)} ms.`,
    '',
    'First request for a tenant with no pool (50 tenants, one at a time, on a fresh replica), beside a plain `pg` connect as the tenant role:',
    '',
    '| Measure | p50 | p99 |',
    '| --- | --- | --- |',
    `| runtime, first request on a new replica (directory and key from Redis, secret from the store, connect, query) | ${f(r.coldFull.p50)} ms | ${f(r.coldFull.p99)} ms |`,
    `| runtime, first request after the pool was closed for idleness (connect, query) | ${f(r.coldNoPool.p50)} ms | ${f(r.coldNoPool.p99)} ms |`,
    `| plain pg: \`new Client().connect()\` | ${f(r.connect.p50)} ms | ${f(r.connect.p99)} ms |`,
    `| plain pg: connect + the same SELECT | ${f(r.connectQuery.p50)} ms | ${f(r.connectQuery.p99)} ms |`,
    '',
    `Runtime RSS: ${f(r.rss1 / 1048576, 0)} MB after the 1-tenant runs, ${f(r.rssMany / 1048576, 0)} MB with ${r.count} tenant pools open (${r.pooled} tenant connections in pg_stat_activity at the end).`,
    '',
    'Targets:',
    `- runtime QPS >= 0.6x the baseline: ${f(ratioBase)}x, ${verdict(ratioBase >= 0.6)}.`,
    `- ${r.count}-tenant QPS >= 0.8x single-tenant: ${f(ratioMany)}x with a pool per tenant, ${verdict(ratioMany >= 0.8)}` +
      ` (${f(r.churn.qps / r.one.qps)}x when the budget is a tenth of the active tenants: every request then opens a connection).`,
    `- p50 added latency <= 0.5 ms: ${f(added, 3)} ms (sequential p50 runtime - baseline), ${verdict(added <= 0.5)}.`,
    `- cold first request <= connect time + 2 ms: ${f(r.coldNoPool.p50)} ms vs ${f(coldBudget)} ms (pool closed for idleness), ${verdict(r.coldNoPool.p50 <= coldBudget)};` +
      ` ${f(r.coldFull.p50)} ms on a brand-new replica, ${verdict(r.coldFull.p50 <= coldBudget)}.`,
    ...(r.errors.length ? ['', `Errors seen: ${r.errors.slice(0, 3).join('; ')}`] : []),
  ].join('\n');
}

async function startChild(children: ChildProcess[], script: string, env: Record<string, string>): Promise<{ url: string; metricsUrl?: string; child: ChildProcess }> {
  if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build first`);
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const first = await new Promise<{ url: string; metricsUrl?: string }>((resolveUrl, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl !== -1) resolveUrl(JSON.parse(buf.slice(0, nl)) as { url: string; metricsUrl?: string });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  return { ...first, child };
}

/** SIGTERM (the server drains and closes its pools), SIGKILL after 10 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function rssOf(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function redisFor(): Promise<{ redisUrl: string; child: ChildProcess | null }> {
  const url = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
  if (await redisAnswers(url)) return { redisUrl: url, child: null };
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const local = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 40; i++) {
    if (await redisAnswers(local)) return { redisUrl: local, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no Redis: set BENCH_REDIS_URL or install redis-server');
}


main().catch((err: unknown) => {
  process.stderr.write(`runtime benchmark failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});

/** The runtime's pool and cache counters (BENCH_DEBUG=1), to see why a run is slow. */
async function metricsOf(url: string): Promise<string> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((l) => /^silo_runtime_(connections|pools|pool_evictions_total|cache_lookups_total|connect_duration_seconds_count)/.test(l)).join(' | ');
}
