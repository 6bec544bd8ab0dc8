/**
 * PostgreSQL front door benchmark (issue #17), one run on one PostgreSQL server:
 * `pgbench -S` TPS and p50/p99 per-transaction latency for
 *   (a) direct connections to PostgreSQL,
 *   (b) PgBouncer (the distribution's package) in transaction mode, the anchor,
 *   (c) Silo's front door (the tenant runtime's wire-protocol listener) in transaction mode,
 * each at 1 tenant (one pgbench, --clients clients, -j 2) and over N tenants (N pgbench processes
 * at once, 1 client each, one per tenant database: the same method for all three targets), in
 * the protocol modes asked for (simple and extended; prepared where the target supports it).
 * Plus a sequential run (1 client, 1 tenant) per target and mode: the per-transaction latency
 * the router adds without queueing.
 *
 *   npm run build && node dist/scripts/bench/front-door.js [--seconds 15] [--tenants 100] [--clients 50] [--modes simple,extended,prepared] [--targets direct,pgbouncer,silo] [--ramp 35] [--no-xact-check] [--write-docs]
 *
 * The tenants are provisioned with the local driver from a template holding `pgbench -i -s 1`'s
 * tables (handed to each tenant role), registered in a control database, and the same databases
 * serve all three targets: direct and PgBouncer connect as the tenant role to its database, Silo
 * routes by the user name (the tenant slug) with an API key as the password. Plaintext everywhere
 * (RUNTIME_PG_ALLOW_PLAINTEXT=true, sslmode=disable): PgBouncer and direct run without TLS too.
 *
 * Postgres: a private throwaway cluster (the host's binaries, scripts/bench/runtime/cluster.ts)
 * unless BENCH_DATABASE_URL names a superuser URL with room for tenants + 30 connections.
 * Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379, own key prefix, deleted afterwards).
 * PgBouncer: `pgbouncer` on PATH or /usr/sbin, else `apt-get install -y pgbouncer` (as root).
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'pg';
import { createControlDataSource, migrateControlDb } from '../../control-plane/db/data-source';
import { LocalProvisioningDriver } from '../../provisioning/local/local-provisioning.driver';
import { ident } from '../../provisioning/local/pg-names';
import { LocalSecretStore } from '../../provisioning/secrets/local-secret-store';
import { seedTenants, SeededTenant } from './seed-tenants';
import { percentile } from './stats';
import { BenchCluster, dropBenchObjects } from './runtime/cluster';
import { deleteRedisPrefix, flag, freePort, redisAnswers, withDb, writeDocSection } from '../support/dev-utils';

type Tenant = SeededTenant;
type Mode = 'simple' | 'extended' | 'prepared';
type Target = 'direct' | 'pgbouncer' | 'silo';

interface Endpoint {
  port: number;
  /** The pooler's process (PgBouncer or the runtime), for its CPU time during each run. */
  pid?: number;
  /** user, database and password for one tenant. */
  login: (t: Tenant) => { user: string; db: string; password: string };
}

interface Run {
  target: Target;
  mode: Mode;
  tenants: number;
  clients: number;
  tps: number;
  p50: number;
  p99: number;
  transactions: number;
  failed: number;
  /** Most tenant backends seen in pg_stat_activity during the run (sampled every 500 ms). */
  backends: number;
  /** The pooler's CPU use over the run, in % of one core (NaN for direct). */
  cpu: number;
  /** Seconds counted: while every pgbench process was running. */
  window: number;
  /** 1-minute load average as the run started. */
  load: number;
}

const repoRoot = resolve(__dirname, '..', '..', '..');
const distBench = join(repoRoot, 'dist', 'scripts', 'bench', 'runtime');
/** The per-tenant pool cap for Silo and PgBouncer alike (the runtime's default RUNTIME_MAX_CONNECTIONS_PER_TENANT and PgBouncer's default_pool_size are both 20). */
const POOL_PER_TENANT = 20;
const log = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const seconds = Number(flag(args, '--seconds') ?? 15);
  const count = Number(flag(args, '--tenants') ?? 100);
  const clients = Number(flag(args, '--clients') ?? 50);
  const seqSeconds = Number(flag(args, '--sequential-seconds') ?? 5);
  const warmSeconds = Number(flag(args, '--warmup') ?? 3);
  const ramp = Number(flag(args, '--ramp') ?? 8);
  const modes = (flag(args, '--modes') ?? 'simple,extended,prepared').split(',') as Mode[];
  for (const m of modes) if (!['simple', 'extended', 'prepared'].includes(m)) throw new Error(`unknown mode ${m}`);
  const writeDocs = args.includes('--write-docs');
  const checkXacts = !args.includes('--no-xact-check');
  const targets = (flag(args, '--targets') ?? 'direct,pgbouncer,silo').split(',');
  const command = `node dist/scripts/bench/front-door.js ${args.filter((a) => a !== '--write-docs').join(' ')}`.trim();
  const started = Date.now();

  const pgbouncerBin = ensurePgbouncer();
  const cluster = process.env.BENCH_DATABASE_URL ? null : new BenchCluster(await freePort());
  const children: ChildProcess[] = [];
  const tenants: Tenant[] = [];
  let adminUrl = process.env.BENCH_DATABASE_URL ?? '';
  let admin: Pool | null = null;
  let control: Pool | null = null;
  let driver: LocalProvisioningDriver | null = null;
  let redisUrl = '';
  const kvPrefix = `silobench:fd:${randomBytes(4).toString('hex')}:`;
  const names = { control: `silo_bench_fd_${process.pid}_ctl`, template: `silo_bench_fd_${process.pid}_tpl`, owner: `silo_bench_fd_${process.pid}_owner` };
  const work = mkdtempSync(join(tmpdir(), 'silo-bench-front-door-'));

  const cleanup = async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await driver?.close().catch(() => undefined);
    await control?.end().catch(() => undefined);
    if (redisUrl) await deleteRedisPrefix(redisUrl, kvPrefix).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    if (cluster) {
      await admin?.end().catch(() => undefined);
      cluster.stop(); // every tenant database and role goes with the cluster
      return;
    }
    if (admin) {
      log(`cleanup: dropping ${tenants.length} tenant databases and roles`);
      await dropBenchObjects(admin, { tenantRoles: tenants.map((t) => t.role), databases: [names.template, names.control], roles: [names.owner] });
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
    admin = new Pool({ connectionString: adminUrl, max: 4 });
    const pgVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
    const pgPort = Number(new URL(adminUrl).port || 5432);
    const versions = {
      postgres: pgVersion.split(' ')[0] as string,
      pgbench: execFileSync('pgbench', ['--version']).toString().trim().replace(/^pgbench \(PostgreSQL\) /, ''),
      pgbouncer: execFileSync(pgbouncerBin, ['--version']).toString().split('\n')[0]?.replace(/^PgBouncer /, '').trim() ?? '?',
    };
    const bouncerPrepared = versionAtLeast(versions.pgbouncer, [1, 21]);
    log(`PostgreSQL ${versions.postgres}, pgbench ${versions.pgbench}, PgBouncer ${versions.pgbouncer}${bouncerPrepared ? '' : ' (< 1.21: no prepared statements in transaction mode)'}`);
    const redis = await redisFor(children);
    redisUrl = redis;

    // --- setup: control database, template with pgbench's tables, N tenants cloned from it ---
    const setupStarted = Date.now();
    await admin.query(`CREATE DATABASE ${ident(names.control)}`);
    const controlUrl = withDb(adminUrl, names.control);
    const ds = createControlDataSource(controlUrl, { poolSize: 1 });
    await ds.initialize();
    await migrateControlDb(ds);
    await ds.destroy();
    control = new Pool({ connectionString: controlUrl, max: 4 });
    const masterKey = randomBytes(32);
    const secrets = new LocalSecretStore(control, masterKey);
    driver = new LocalProvisioningDriver({
      adminUrl, templateDatabase: names.template, templateOwner: names.owner, secretStore: secrets, secretPrefix: 'silo/tenants/', protectDatabases: [names.control],
      // pgbench -i -s 1 once, into the template: each tenant database is a clone, its tables REASSIGNed to the tenant role.
      prepareTemplate: async (templateUrl) => {
        execFileSync('pgbench', ['-i', '-s', '1', '-q', templateUrl], { stdio: ['ignore', 'ignore', 'pipe'] });
        const p = new Pool({ connectionString: templateUrl, max: 1 });
        try {
          for (const t of ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history']) await p.query(`ALTER TABLE ${t} OWNER TO ${ident(names.owner)}`);
          await p.query('VACUUM ANALYZE');
        } finally {
          await p.end();
        }
      },
    });
    await driver.ensureReady();
    log(`setup: ${count} tenants with pgbench tables (local driver, 4 at a time)`);
    const specs = Array.from({ length: count }, (_, i) => ({ id: randomUUID(), slug: `bench-${String(i + 1).padStart(4, '0')}` }));
    await seedTenants({ driver, secrets, control, specs, concurrency: 4, onProvisioned: (t, done) => { tenants.push(t); if (done % 25 === 0) log(`  ${done}/${count}`); } });
    // The tier sizes each role's CONNECTION LIMIT for the runtime's pools; direct runs open --clients connections as the role.
    for (const t of tenants) await admin.query(`ALTER ROLE ${ident(t.role)} CONNECTION LIMIT -1`);
    await admin.query('CHECKPOINT');
    execFileSync('sync');
    const setupSeconds = (Date.now() - setupStarted) / 1000;
    log(`setup done in ${setupSeconds.toFixed(0)} s`);

    const roles = tenants.map((t) => t.role);
    const runAll = async (target: Target, ep: Endpoint, targetModes: Mode[]): Promise<{ runs: Run[]; seq: Run[] }> => {
      const runs: Run[] = [];
      const seq: Run[] = [];
      for (const mode of targetModes) {
        const go = (ts: Tenant[], perProcess: number, secs: number, delay: number, measure: boolean) =>
          pgbench({ target, mode, ep, tenants: ts, clientsPerProcess: perProcess, seconds: secs, startDelay: delay, dir: work, admin: admin as Pool, roles, children, measure });
        await go([tenants[0] as Tenant], clients, warmSeconds, 1, false);
        const one = await go([tenants[0] as Tenant], clients, seconds, 2, true);
        // N processes: every client connects, then waits for the same start time (`ramp` s after the
        // spawn), so none connects under the load of the others.
        await go(tenants, 1, warmSeconds, ramp, false);
        const many = await go(tenants, 1, seconds, ramp, true);
        const s = await go([tenants[0] as Tenant], 1, seqSeconds, 1, true);
        for (const r of [one, many, s]) log(`${target} ${mode} ${r.tenants} tenant(s) x ${r.clients} client(s): ${r.tps.toFixed(0)} tps, p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, ${r.failed} failed, <= ${r.backends} backends, pooler CPU ${r.cpu.toFixed(0)}%, ${r.window.toFixed(1)} s counted`);
        runs.push(one, many);
        seq.push(s);
      }
      return { runs, seq };
    };
    const byRole = (t: Tenant) => ({ user: t.role, db: t.role, password: t.password });

    // --- (a) direct ---
    const direct = targets.includes('direct') ? await runAll('direct', { port: pgPort, login: byRole }, modes) : { runs: [], seq: [] };

    const xacts: Record<string, number> = {};
    let bouncerRuns: { runs: Run[]; seq: Run[] } = { runs: [], seq: [] };
    let silo: { runs: Run[]; seq: Run[] } = { runs: [], seq: [] };
    const budget = count + POOL_PER_TENANT;
    if (targets.includes('pgbouncer')) {
      // --- (b) PgBouncer, transaction mode ---
      const bouncerPort = await freePort();
      const bouncer = startPgbouncer(pgbouncerBin, work, bouncerPort, pgPort, tenants, clients, bouncerPrepared, children);
      await waitForPort(bouncerPort, bouncer);
      const bouncerEp: Endpoint = { port: bouncerPort, pid: bouncer.pid, login: byRole };
      bouncerRuns = await runAll('pgbouncer', bouncerEp, modes.filter((m) => m !== 'prepared' || bouncerPrepared));
      if (checkXacts) {
        xacts.pgbouncer = await serverXactsPerTxn(admin, bouncerEp, tenants[1] ?? (tenants[0] as Tenant), 'simple');
        log(`pgbouncer: ${xacts.pgbouncer.toFixed(2)} server transactions per pgbench transaction`);
      }
      await stopChild(bouncer, 'SIGINT');
    }
    if (targets.includes('silo')) {
      // --- (c) Silo's front door, transaction mode ---
      const tiersFile = join(work, 'tiers.json');
      // The benchmark measures routing and pooling: the starter tier's rate limit lifted, its connection cap at the pool size.
      writeFileSync(tiersFile, JSON.stringify({ tiers: { starter: { connectionLimit: POOL_PER_TENANT, rateLimitPerSecond: 1_000_000, rateLimitBurst: 1_000_000 } } }));
      const siloPort = await freePort();
      const runtime = await startChild(children, join(distBench, 'runtime-server.js'), {
        TIERS_FILE: tiersFile, RUNTIME_IDLE_TIMEOUT_MS: '300000',
        DATABASE_URL: controlUrl, REDIS_URL: redis, BENCH_KV_PREFIX: kvPrefix, SILO_MASTER_KEY: masterKey.toString('base64'), SILO_DIRECTORY_KEY: randomBytes(32).toString('base64url'),
        RUNTIME_PORT: '0', RUNTIME_METRICS_PORT: '0', LOG_LEVEL: 'info',
        RUNTIME_PG_PORT: String(siloPort), RUNTIME_PG_HOST: '127.0.0.1', RUNTIME_PG_ALLOW_PLAINTEXT: 'true',
        RUNTIME_MAX_CONNECTIONS: String(budget), RUNTIME_MAX_CONNECTIONS_PER_TENANT: String(POOL_PER_TENANT),
      });
      await waitForPort(siloPort, runtime.child);
      const siloEp: Endpoint = { port: siloPort, pid: runtime.child.pid, login: (t) => ({ user: t.slug, db: 'app', password: t.key }) };
      silo = await runAll('silo', siloEp, modes);
      if (checkXacts) {
        xacts.silo = await serverXactsPerTxn(admin, siloEp, tenants[1] ?? (tenants[0] as Tenant), 'simple');
        log(`silo: ${xacts.silo.toFixed(2)} server transactions per pgbench transaction`);
      }
      await stopChild(runtime.child, 'SIGTERM');
    }

    const result = render({
      command, seconds, seqSeconds, warmSeconds, ramp, count, clients, budget, versions, bouncerPrepared, setupSeconds, privateCluster: !!cluster,
      modes, xacts, runs: [...direct.runs, ...bouncerRuns.runs, ...silo.runs], seq: [...direct.seq, ...bouncerRuns.seq, ...silo.seq],
      totalSeconds: (Date.now() - started) / 1000,
    });
    process.stdout.write(`\n${result}\n`);
    if (writeDocs) {
      writeDocSection(join(repoRoot, 'docs', 'benchmarks.md'), 'Front door', result);
      log('docs/benchmarks.md updated (Front door section)');
    }
  } finally {
    await cleanup();
  }
}

/**
 * One measured configuration: one pgbench process per tenant given (clientsPerProcess clients,
 * -j 2 when there are several), all started at once, with per-transaction logs (--log). TPS and
 * percentiles come from the logs, over the window every process was running in (from the latest
 * first transaction to the earliest last one), so staggered starts and exits do not count.
 */
async function pgbench(o: {
  target: Target; mode: Mode; ep: Endpoint; tenants: Tenant[]; clientsPerProcess: number; seconds: number; startDelay: number; dir: string;
  admin: Pool; roles: string[]; children: ChildProcess[]; measure: boolean;
}): Promise<Run> {
  const runDir = mkdtempSync(join(o.dir, 'run-'));
  const script = join(o.dir, 'select-only.sql');
  // pgbench -S's transaction, behind a start barrier: each client's first transaction waits until
  // `startms` (one clock for all processes) and is left out of the figures.
  writeFileSync(script, [
    '\\if :started = 0',
    'SELECT greatest(0, :startms - (extract(epoch FROM clock_timestamp()) * 1000)::bigint) AS wait \\gset',
    '\\sleep :wait ms',
    '\\set started 1',
    '\\endif',
    '\\set aid random(1, 100000 * :scale)',
    'SELECT abalance FROM pgbench_accounts WHERE aid = :aid;',
    '',
  ].join('\n'));
  const startms = Date.now() + o.startDelay * 1000;
  let backends = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await o.admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = ANY($1)", [o.roles]).catch(() => null);
      backends = Math.max(backends, r?.rows[0]?.n ?? 0);
      await new Promise((r2) => setTimeout(r2, 500));
    }
  })();
  const failures: string[] = [];
  const load = loadavg()[0] ?? NaN;
  const cpu0 = cpuSeconds(o.ep.pid);
  const t0 = process.hrtime.bigint();
  await Promise.all(o.tenants.map((t, i) => new Promise<void>((done) => {
    const { user, db, password } = o.ep.login(t);
    const threads = Math.min(2, o.clientsPerProcess);
    const args = ['-h', '127.0.0.1', '-p', String(o.ep.port), '-U', user, '-n', '-f', script, '-D', 'started=0', '-D', `startms=${startms}`, '-D', 'scale=1',
      '-M', o.mode, '-c', String(o.clientsPerProcess), '-j', String(threads), '-T', String(o.seconds + o.startDelay), '-l', '--log-prefix', join(runDir, `p${i}`), db];
    const child = spawn('pgbench', args, { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' }, stdio: ['ignore', 'pipe', 'pipe'] });
    o.children.push(child);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      o.children.splice(o.children.indexOf(child), 1);
      if (code !== 0) failures.push(`${o.target} ${t.slug}: pgbench exited ${code}: ${out.split('\n').filter((l) => /error|fatal|abort/i.test(l)).slice(0, 2).join(' / ')}`);
      done();
    });
  })));
  const cpu = ((cpuSeconds(o.ep.pid) - cpu0) / (Number(process.hrtime.bigint() - t0) / 1e9)) * 100;
  sampling = false;
  await sampler;
  if (failures.length && o.measure) log(`  ${failures.length} pgbench process(es) failed; first: ${failures[0]}`);

  // Per-transaction log: client_id transaction_no time(us, or "failed"/"skipped") script_no time_epoch time_us
  const perProcess: Array<{ ends: Float64Array; lat: Float64Array; n: number }> = [];
  /** Per process: when its last client passed the barrier. */
  const began: number[] = [];
  let failed = 0;
  for (const f of readdirSync(runDir)) {
    const lines = readFileSync(join(runDir, f), 'utf8').split('\n');
    const proc = /^p(\d+)/.exec(f)?.[1] as string;
    const ends = new Float64Array(lines.length);
    const lat = new Float64Array(lines.length);
    let n = 0;
    const k = Number(proc);
    const barrierPassed = new Set<string>();
    for (const line of lines) {
      if (!line) continue;
      const parts = line.split(' ');
      if (parts[2] === 'failed' || parts[2] === 'skipped') { failed++; continue; }
      const end = Number(parts[4]) + Number(parts[5]) / 1e6;
      if (!barrierPassed.has(parts[0] as string)) {
        barrierPassed.add(parts[0] as string);
        began[k] = Math.max(began[k] ?? 0, end);
        continue;
      }
      ends[n] = end;
      lat[n++] = Number(parts[2]) / 1000;
    }
    const prev = perProcess[k];
    if (!prev) perProcess[k] = { ends: ends.subarray(0, n), lat: lat.subarray(0, n), n };
    else { // the process's other thread's file
      const e2 = new Float64Array(prev.n + n); e2.set(prev.ends); e2.set(ends.subarray(0, n), prev.n);
      const l2 = new Float64Array(prev.n + n); l2.set(prev.lat); l2.set(lat.subarray(0, n), prev.n);
      perProcess[k] = { ends: e2, lat: l2, n: prev.n + n };
    }
  }
  rmSync(runDir, { recursive: true, force: true });
  const live = perProcess.filter((p) => p && p.n > 0);
  const from = Math.max(0, ...began.filter((b) => b !== undefined));
  let to = Infinity;
  for (const p of live) {
    let hi = 0;
    for (let i = 0; i < p.n; i++) { const e = p.ends[i] as number; if (e > hi) hi = e; }
    to = Math.min(to, hi);
  }
  const lats: number[] = [];
  for (const p of live) for (let i = 0; i < p.n; i++) { const e = p.ends[i] as number; if (e >= from && e <= to) lats.push(p.lat[i] as number); }
  const window = to - from;
  if (o.measure && from > startms / 1000 + 0.5) log(`  a client passed the start barrier ${(from - startms / 1000).toFixed(1)} s late (still connecting): counted from then`);
  lats.sort((a, b) => a - b);
  return {
    target: o.target, mode: o.mode, tenants: o.tenants.length, clients: o.tenants.length * o.clientsPerProcess,
    tps: live.length === o.tenants.length && window > 0 ? lats.length / window : 0,
    p50: percentile(lats, 50), p99: percentile(lats, 99), transactions: lats.length, failed: failed + failures.length, backends, cpu, window: Math.max(0, window), load,
  };
}

/** utime + stime of a process, in seconds (NaN without a pid). */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // fields 14 and 15 of stat, in clock ticks (100/s)
}

/**
 * Transactions the server ran per pgbench transaction: `pgbench -S -t n -c 1` on one tenant, then
 * pg_stat_database.xact_commit of its database (a pooled backend stays open and flushes its counters
 * when idle, at most every 10 s in PostgreSQL 15: hence the wait). Direct is 1 per transaction; a
 * pooler that resets its backend with a statement of its own after each transaction shows 2.
 */
async function serverXactsPerTxn(admin: Pool, ep: Endpoint, t: Tenant, mode: Mode, n = 2_000): Promise<number> {
  const read = async () => Number((await admin.query<{ n: string }>('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1', [t.role])).rows[0]?.n ?? 0);
  await new Promise((r) => setTimeout(r, 11_000));
  const before = await read();
  const { user, db, password } = ep.login(t);
  execFileSync('pgbench', ['-h', '127.0.0.1', '-p', String(ep.port), '-U', user, '-n', '-S', '-M', mode, '-c', '1', '-t', String(n), db], { env: { ...process.env, PGPASSWORD: password, PGSSLMODE: 'disable' }, stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 11_000));
  return (await read() - before) / n;
}

function startPgbouncer(bin: string, dir: string, port: number, pgPort: number, tenants: Tenant[], clients: number, prepared: boolean, children: ChildProcess[]): ChildProcess {
  const bdir = join(dir, 'pgbouncer');
  execFileSync('mkdir', ['-m', '700', bdir]);
  const ini = [
    '[databases]',
    ...tenants.map((t) => `${t.role} = host=127.0.0.1 port=${pgPort} dbname=${t.role}`),
    '',
    '[pgbouncer]',
    `listen_addr = 127.0.0.1`,
    `listen_port = ${port}`,
    "unix_socket_dir = ''",
    'auth_type = trust', // as the server: trust on loopback (the pooled connections skip auth either way)
    `auth_file = ${join(bdir, 'userlist.txt')}`,
    'pool_mode = transaction',
    `max_client_conn = ${Math.max(200, tenants.length + clients + 50)}`,
    `default_pool_size = ${POOL_PER_TENANT}`,
    `max_db_connections = ${POOL_PER_TENANT}`,
    'ignore_startup_parameters = extra_float_digits',
    'log_connections = 0',
    'log_disconnections = 0',
    'stats_period = 3600',
    ...(prepared ? ['max_prepared_statements = 1000'] : []),
  ].join('\n');
  writeFileSync(join(bdir, 'pgbouncer.ini'), `${ini}\n`, { mode: 0o600 });
  writeFileSync(join(bdir, 'userlist.txt'), tenants.map((t) => `"${t.role}" "${t.password}"`).join('\n') + '\n', { mode: 0o600 });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    // PgBouncer refuses to run as root: -u postgres, which must be able to read its files.
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    for (const f of [bdir, join(bdir, 'pgbouncer.ini'), join(bdir, 'userlist.txt')]) chownSync(f, uid, gid);
  }
  const child = spawn(bin, [...(asRoot ? ['-u', 'postgres'] : []), join(bdir, 'pgbouncer.ini')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { if (err.length < 4000) err += d.toString(); });
  child.on('exit', (code) => { if (code) log(`pgbouncer exited ${code}: ${err.split('\n').filter((l) => /FATAL|ERROR/.test(l)).slice(0, 3).join(' / ')}`); });
  children.push(child);
  return child;
}

function ensurePgbouncer(): string {
  const found = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p)) ?? (spawnSync('which', ['pgbouncer']).stdout?.toString().trim() || '');
  if (found) return found;
  if (process.getuid?.() !== 0) throw new Error('pgbouncer is not installed: apt-get install -y pgbouncer');
  log('installing pgbouncer (apt-get)');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'pgbouncer'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  // The package enables a system service on 6432; the benchmark runs its own instance, so stop that one.
  spawnSync('service', ['pgbouncer', 'stop'], { stdio: 'ignore' });
  return '/usr/sbin/pgbouncer';
}

function gitHead(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  return r.status === 0 ? `commit ${r.stdout.trim()}` : 'an unknown commit';
}

function versionAtLeast(v: string, min: [number, number]): boolean {
  const [a = 0, b = 0] = v.split('.').map(Number);
  return a > min[0] || (a === min[0] && b >= min[1]);
}

function render(r: {
  command: string; seconds: number; seqSeconds: number; warmSeconds: number; ramp: number; count: number; clients: number; budget: number;
  versions: { postgres: string; pgbench: string; pgbouncer: string }; bouncerPrepared: boolean; setupSeconds: number; privateCluster: boolean;
  modes: Mode[]; xacts: Record<string, number>; runs: Run[]; seq: Run[]; totalSeconds: number;
}): string {
  const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
  const label: Record<Target, string> = { direct: 'direct', pgbouncer: 'PgBouncer', silo: 'Silo front door' };
  const find = (list: Run[], target: Target, mode: Mode, tenants: number) => list.find((x) => x.target === target && x.mode === mode && x.tenants === tenants);
  const lines: string[] = [
    '## Front door',
    '',
    `Command: \`npm run build && ${r.command} --write-docs\` (${new Date().toISOString().slice(0, 10)}, at ${gitHead()}; ${f(r.totalSeconds, 0)} s in all).`,
    '',
    `Machine: ${cpus().length} vCPU shared by pgbench, PgBouncer or the runtime, and PostgreSQL ${r.versions.postgres}` +
      (r.privateCluster ? ' (a private cluster the benchmark starts with the host\'s binaries: max_connections=1300, fsync off, trust on 127.0.0.1; the host\'s own server has max_connections=100 and other users, too few for 100 direct clients).' : ' (BENCH_DATABASE_URL).') +
      ` pgbench ${r.versions.pgbench}, PgBouncer ${r.versions.pgbouncer} (Debian package).`,
    '',
    `Workload: pgbench -S's select-only transaction (one indexed SELECT on pgbench_accounts per transaction, scale 1), one run per configuration.`,
    `1 tenant: one pgbench, \`-c ${r.clients} -j 2\`. ${r.count} tenants: ${r.count} pgbench processes at once, \`-c 1 -j 1\`, one per tenant database (${r.count} clients in all),`,
    `the same way for the three targets; each after a ${r.warmSeconds} s warm-up run of the same shape. The transaction is -S's own (\`SELECT abalance FROM pgbench_accounts WHERE aid = :aid\`,`,
    `random aid) in a script (\`-f\`) whose first transaction per client waits for one start time (${r.ramp} s after the spawn for ${r.count} processes): without it the last of ${r.count}`,
    'processes connected up to 50 s after the first here (PostgreSQL forks backends one at a time, under the load of the clients already running). That first transaction is not counted;',
    'the window counted runs from the start time to the first process\'s end ("counted" below).',
    `Sequential: 1 client on 1 tenant for ${r.seqSeconds} s (latency without queueing). TPS and p50/p99 come from pgbench's per-transaction logs (\`--log\`),`,
    'over the window every process was running in. Plaintext everywhere (`sslmode=disable`; Silo with `RUNTIME_PG_ALLOW_PLAINTEXT=true`).',
    `The ${r.count} tenant databases are clones of one \`pgbench -i -s 1\` template (local driver; setup ${f(r.setupSeconds, 0)} s, not measured); all three targets use the same databases:`,
    'direct and PgBouncer as the tenant role into its database, Silo routed by the user name (the slug) with an API key as the password.',
    `Pools: Silo RUNTIME_MAX_CONNECTIONS=${r.budget} (the budget: ${r.count} tenants + one full tenant pool), RUNTIME_MAX_CONNECTIONS_PER_TENANT=${POOL_PER_TENANT} (the tier's connectionLimit set to ${POOL_PER_TENANT} and its rate limit lifted);`,
    `PgBouncer \`pool_mode=transaction\`, \`default_pool_size=${POOL_PER_TENANT}\`, \`max_db_connections=${POOL_PER_TENANT}\`, \`auth_type=trust\`, connection logging off` +
      (r.bouncerPrepared ? ', `max_prepared_statements=1000`.' : `; PgBouncer ${r.versions.pgbouncer} predates \`max_prepared_statements\` (1.21), so it has no \`-M prepared\` rows.`),
    `1-minute load average as the measured runs started: ${f(Math.min(...r.runs.map((x) => x.load)), 1)} to ${f(Math.max(...r.runs.map((x) => x.load)), 1)} (the benchmark's own processes, and whatever else runs on the machine: not controlled).`,
    'Direct: one backend per client. "backends" is the most tenant backends pg_stat_activity showed during the run; "pooler CPU" the PgBouncer or runtime process\'s CPU time over the run, in % of one core (both are single-threaded event loops).',
    '',
    '| Target | Mode | Tenants | Clients | TPS | p50 | p99 | failed | backends | pooler CPU | counted |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const mode of r.modes) {
    for (const tenants of [1, r.count]) {
      for (const t of ['direct', 'pgbouncer', 'silo'] as Target[]) {
        const x = find(r.runs, t, mode, tenants);
        if (x) lines.push(`| ${label[t]} | ${mode} | ${tenants} | ${x.clients} | ${f(x.tps, 0)} | ${f(x.p50, 3)} ms | ${f(x.p99, 3)} ms | ${x.failed} | ${x.backends} | ${Number.isFinite(x.cpu) ? `${f(x.cpu, 0)}%` : '-'} | ${f(x.window, 1)} s |`);
      }
    }
  }
  lines.push('', 'Sequential (1 client, 1 tenant):', '', '| Target | Mode | TPS | p50 | p99 |', '| --- | --- | --- | --- | --- |');
  for (const mode of r.modes) for (const t of ['direct', 'pgbouncer', 'silo'] as Target[]) {
    const x = find(r.seq, t, mode, 1);
    if (x) lines.push(`| ${label[t]} | ${mode} | ${f(x.tps, 0)} | ${f(x.p50, 3)} ms | ${f(x.p99, 3)} ms |`);
  }
  if (r.xacts.silo !== undefined) {
    lines.push('', `Server transactions per pgbench transaction (\`-S -M simple -c 1 -t 2000\`, pg_stat_database.xact_commit + xact_rollback of the tenant database): direct 1 by construction,` +
      ` PgBouncer ${f(r.xacts.pgbouncer ?? NaN)}, Silo ${f(r.xacts.silo)}.`);
  }
  lines.push('', 'Targets (issue #17):');
  for (const mode of r.modes) {
    const s1 = find(r.runs, 'silo', mode, 1);
    const sN = find(r.runs, 'silo', mode, r.count);
    const d1 = find(r.runs, 'direct', mode, 1);
    const dN = find(r.runs, 'direct', mode, r.count);
    const b1 = find(r.runs, 'pgbouncer', mode, 1);
    const sSeq = find(r.seq, 'silo', mode, 1);
    const dSeq = find(r.seq, 'direct', mode, 1);
    const bSeq = find(r.seq, 'pgbouncer', mode, 1);
    if (!s1 || !sN || !d1 || !dN) continue;
    const parts: string[] = [];
    if (b1) {
      const ratio = s1.tps / b1.tps;
      parts.push(`Silo / PgBouncer TPS at 1 tenant ${f(ratio)}x (>= 0.8: ${verdict(ratio >= 0.8)})`);
    } else {
      parts.push('Silo / PgBouncer: no PgBouncer row');
    }
    const added = s1.p50 - d1.p50;
    const addedSeq = sSeq && dSeq ? sSeq.p50 - dSeq.p50 : NaN;
    parts.push(`added p50 vs direct ${f(addedSeq, 3)} ms sequential (<= 0.3 ms: ${verdict(addedSeq <= 0.3)}), ${f(added, 3)} ms at ${r.clients} clients` +
      (bSeq && b1 ? ` (PgBouncer: ${f(bSeq.p50 - (dSeq?.p50 ?? NaN), 3)} ms and ${f(b1.p50 - d1.p50, 3)} ms)` : ''));
    const scale = (sN.tps / s1.tps) / (dN.tps / d1.tps);
    parts.push(`${r.count}-tenant / 1-tenant TPS: Silo ${f(sN.tps / s1.tps)}, direct ${f(dN.tps / d1.tps)}, so ${f(scale)} (>= 0.9: ${verdict(scale >= 0.9)})`);
    lines.push(`- ${mode}: ${parts.join('; ')}.`);
  }
  return lines.join('\n');
}

async function startChild(children: ChildProcess[], script: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build first`);
  // BENCH_NODE_ARGS: flags for the runtime's node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`; NODE_OPTIONS refuses --cpu-prof).
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const first = await new Promise<{ url: string }>((resolveUrl, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl !== -1) resolveUrl(JSON.parse(buf.slice(0, nl)) as { url: string });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited ${code}`)));
  });
  return { ...first, child };
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`process exited ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listening on ${port}`);
}

async function redisFor(children: ChildProcess[]): Promise<string> {
  const url = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
  if (await redisAnswers(url)) return url;
  const port = await freePort();
  children.push(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' }));
  const local = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 40; i++) {
    if (await redisAnswers(local)) return local;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no Redis: set BENCH_REDIS_URL or install redis-server');
}

main().catch((err: unknown) => {
  process.stderr.write(`front-door benchmark failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
