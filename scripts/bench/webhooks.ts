/**
 * Billing webhook benchmark: acknowledgement latency of POST /webhooks/stripe, beside a no-op
 * route of the same server (GET /health/live) measured in the same run.
 *
 * Boots the real control plane in-process (loopback only) on a throwaway control database on the
 * local Postgres, production-like: info-level logging (to /dev/null), Redis for the directory when
 * one answers, default pool size. The job worker is off: the acknowledgement only enqueues work,
 * and provisioning 200 tenants in the same process would measure provisioning, not the endpoint.
 * Payloads are signed before timing, and the load comes from a worker thread (its own event loop,
 * like a remote sender), so the client does not steal the server's event loop. Everything created
 * is dropped at the end.
 *
 *   npm run build && node dist/scripts/bench/webhooks.js [--deliveries 200] [--rounds 3] [--write-docs]
 *   node dist/scripts/bench/webhooks.js --profile new-subscription.cpuprofile [--profile-kind created|updated|duplicate|noop]
 *     (after the warm-up, a CPU profile of the main thread over 1,000 deliveries sent one at a time,
 *     sampled every 50 µs, summarised on stdout; nothing else is measured)
 *
 * BENCH_DATABASE_URL: superuser URL (default postgres://postgres@127.0.0.1:5432/postgres).
 * BENCH_REDIS_URL: Redis for the directory (default redis://127.0.0.1:6379; in-process cache if it does not answer).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { Client } from 'pg';
import pino from 'pino';
import Stripe from 'stripe';
import { createLogger } from '../../common/logger';
import { newSubscription, nowSeconds, StripeEventFixture, stripeEvents, SubscriptionState } from '../../test/support/stripe-fixtures';
import { loadControlPlaneConfig } from '../../control-plane/config';
import { RunningControlPlane, startControlPlane } from '../../control-plane/server';
import { ident } from '../../provisioning/local/pg-names';
import { deleteRedisPrefix, flag, redisAnswers } from '../support/dev-utils';
import { Cost, costPer, installCounters, perThreadCpu } from './cost-meter';
import { profile } from './cpu-profile';

interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
  /** Requests per second over the batch (concurrent batches only). */
  rps: number;
  statuses: string;
}

const MAX_DELIVERIES = 2_000;
/** Cost phase: blocks per kind, deliveries per block; cheap requests get bigger blocks (each block ≥ ~40 ticks of the 10 ms CPU clock). */
const COST_BLOCKS = 5;
const COST_BLOCK_SIZE = 200;
const CHEAP_BLOCK_SIZE = 1_000;
const REQUEST_TIMEOUT_MS = 10_000;
const PROFILE_DELIVERIES = 1_000;
const PROFILE_INTERVAL_US = 50;
const WATCHDOG_MS = 5 * 60_000;

const repoRoot = findRepoRoot(__dirname);
const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const deliveries = Math.min(MAX_DELIVERIES, Number(flag(args, '--deliveries') ?? 200));
  const rounds = Math.min(10, Number(flag(args, '--rounds') ?? 3));
  const writeDocs = args.includes('--write-docs');
  const adminUrl = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisUrl = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';

  const tag = `silo_bench_wh_${process.pid}_${randomBytes(3).toString('hex')}`;
  const names = { control: `${tag}_ctl`, template: `${tag}_tpl` };
  const kvPrefix = `silobench:${tag}:`;
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const useRedis = await redisAnswers(redisUrl);
  let cp: RunningControlPlane | null = null;
  let stopClient: () => Promise<void> = async () => undefined;

  const cleanup = async () => {
    await stopClient().catch(() => undefined);
    await cp?.close().catch((e: Error) => log(`close: ${e.message}`));
    cp = null;
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${ident(names.control)} WITH (FORCE)`).catch((e: Error) => log(`drop: ${e.message}`));
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${ident(names.template)} WITH (FORCE)`).catch(() => undefined);
    if (useRedis) await deleteRedisPrefix(redisUrl, kvPrefix).catch(() => undefined);
  };
  const watchdog = setTimeout(() => {
    log('watchdog: benchmark took too long, aborting');
    void cleanup().finally(() => process.exit(3));
  }, WATCHDOG_MS);
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    await adminQuery(adminUrl, `CREATE DATABASE ${ident(names.control)}`);
    const config = loadControlPlaneConfig({
      DATABASE_URL: withDatabase(adminUrl, names.control),
      TENANT_DATABASE_URL: adminUrl,
      TENANT_TEMPLATE_DATABASE: names.template,
      ...(useRedis ? { REDIS_URL: redisUrl } : {}),
      ADMIN_TOKEN: randomBytes(24).toString('base64url'),
      SILO_MASTER_KEY: randomBytes(32).toString('base64'),
      SILO_DIRECTORY_KEY: randomBytes(32).toString('base64url'),
      STRIPE_WEBHOOK_SECRET: secret,
      TIERS_FILE: join(repoRoot, 'control-plane', 'billing', 'plans.example.json'),
      HOST: '127.0.0.1',
      CONTROL_PLANE_PORT: '0',
      JOB_WORKER_ENABLED: 'false',
      LOG_LEVEL: 'info',
    });
    const logger = createLogger({ name: 'bench-control-plane', level: 'info', destination: pino.destination({ dest: '/dev/null', sync: false }) });
    cp = await startControlPlane(config, { logger, kvPrefix });
    const base = new URL(cp.url);
    const stripe = new Stripe('sk_test_silo_bench');
    const sign = (e: StripeEventFixture): Request => {
      const body = JSON.stringify(e, null, 2);
      return { method: 'POST', path: '/webhooks/stripe', body, headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload: body, secret }) } };
    };
    const client = new LoadClient(base);
    stopClient = () => client.close();
    const noop: Request = { method: 'GET', path: '/health/live' };

    log(`control plane ${cp.url}  (db pool ${config.DATABASE_POOL_SIZE}, directory: ${useRedis ? 'Redis' : 'in-process'}, worker off, ${cpus().length} CPUs, node ${process.version})`);
    // Warm-up: JIT, connection pools, sockets.
    await client.run('concurrent', Array.from({ length: deliveries }, () => noop));
    const warm = Array.from({ length: 50 }, () => newSubscription());
    await client.run('concurrent', warm.map((s) => sign(stripeEvents.subscriptionCreated(s))));
    await client.run('concurrent', warm.map((s) => sign(stripeEvents.invoicePaymentFailed(s))));

    const profileFile = flag(args, '--profile');
    if (profileFile) {
      const kind = flag(args, '--profile-kind') ?? 'created';
      const subs = Array.from({ length: PROFILE_DELIVERIES }, () => newSubscription());
      const at = nowSeconds();
      const created = subs.map((s) => sign(stripeEvents.subscriptionCreated(s, at)));
      if (kind !== 'created') await client.run('sequential', created);
      const reqs = kind === 'created' ? created
        : kind === 'duplicate' ? created
          : kind === 'noop' ? Array.from({ length: PROFILE_DELIVERIES }, () => noop)
            : subs.map((s) => sign(stripeEvents.subscriptionUpdated({ ...s, status: 'past_due' }, at + 1, { status: 'active' })));
      const summary = await profile(profileFile, PROFILE_INTERVAL_US, async () => {
        await client.run('sequential', reqs);
        await new Promise((r) => setTimeout(r, 200));
      });
      log(`profile of ${reqs.length} ${kind} deliveries written to ${profileFile}; busy ${(summary.busyShare * 100).toFixed(1)}% of samples`);
      const pct = (x: number) => `${(x * 100).toFixed(1)}%`.padStart(6);
      log('\nself time by place (share of busy samples):');
      for (const r of summary.byPlace) log(`${pct(r.share)}  ${r.name}`);
      log('\ninclusive time by place:');
      for (const r of summary.inclusive) log(`${pct(r.share)}  ${r.name}`);
      log('\nself time by function:');
      for (const r of summary.byFunction) log(`${pct(r.share)}  ${r.name}`);
      return;
    }

    const samples: Record<string, { concurrent: number[]; sequential: number[]; rps: number[]; statuses: Map<number, number> }> = {};
    const record = (label: string, mode: 'concurrent' | 'sequential', r: BatchResult) => {
      const s = (samples[label] ??= { concurrent: [], sequential: [], rps: [], statuses: new Map() });
      s[mode].push(...r.ms);
      if (mode === 'concurrent') s.rps.push((r.ms.length / r.wallMs) * 1000);
      for (const code of r.statuses) s.statuses.set(code, (s.statuses.get(code) ?? 0) + 1);
    };

    for (let round = 1; round <= rounds; round++) {
      const subs: SubscriptionState[] = Array.from({ length: deliveries }, (_, i) => newSubscription({ slug: `bench-${round}-${i}` }));
      const at = nowSeconds();
      const created = subs.map((s) => sign(stripeEvents.subscriptionCreated(s, at)));
      const pastDue = subs.map((s) => sign(stripeEvents.subscriptionUpdated({ ...s, status: 'past_due' }, at + 1, { status: 'active' })));
      const noops = Array.from({ length: deliveries }, () => noop);

      record('no-op GET /health/live', 'concurrent', await client.run('concurrent', noops));
      record('new subscription (creates a tenant, enqueues provisioning)', 'concurrent', await client.run('concurrent', created));
      record('subscription.updated past_due (existing tenant)', 'concurrent', await client.run('concurrent', pastDue));
      record('duplicate delivery (already stored)', 'concurrent', await client.run('concurrent', created));
      record('no-op GET /health/live', 'concurrent', await client.run('concurrent', noops));

      // One at a time: the per-request cost without queueing.
      const seqSubs = Array.from({ length: 50 }, () => newSubscription());
      const seqCreated = seqSubs.map((s) => sign(stripeEvents.subscriptionCreated(s)));
      record('no-op GET /health/live', 'sequential', await client.run('sequential', Array.from({ length: 100 }, () => noop)));
      record('new subscription (creates a tenant, enqueues provisioning)', 'sequential', await client.run('sequential', seqCreated));
      record('duplicate delivery (already stored)', 'sequential', await client.run('sequential', [...created.slice(0, 50), ...seqCreated]));
      record('no-op GET /health/live', 'sequential', await client.run('sequential', Array.from({ length: 100 }, () => noop)));
      log(`round ${round}/${rounds} done`);
    }

    // Server cost per delivery, one at a time: main-thread CPU, SQL round trips, Redis commands. Kinds
    // alternate in blocks (CPU time on a shared VM drifts); each figure is the median of its blocks.
    installCounters();
    const loadAtCostStart = loadavg()[0];
    const blocks = COST_BLOCKS;
    const n = COST_BLOCK_SIZE;
    const settle = () => new Promise((r) => setTimeout(r, 200)); // after-commit work finishes inside the block
    const kinds = ['no-op GET /health/live', 'new subscription', 'duplicate (this replica stored it)', 'subscription.updated past_due (existing tenant)'] as const;
    const perKind = new Map<string, Cost[]>(kinds.map((k) => [k, []]));
    for (let b = 0; b < blocks; b++) {
      const subs = Array.from({ length: n }, () => newSubscription());
      const at = nowSeconds();
      const created = subs.map((s) => sign(stripeEvents.subscriptionCreated(s, at)));
      const requests: Record<(typeof kinds)[number], Request[]> = {
        'no-op GET /health/live': Array.from({ length: CHEAP_BLOCK_SIZE }, () => noop),
        'new subscription': created,
        'duplicate (this replica stored it)': Array.from({ length: CHEAP_BLOCK_SIZE }, (_, i) => created[i % created.length]),
        'subscription.updated past_due (existing tenant)': subs.map((s) => sign(stripeEvents.subscriptionUpdated({ ...s, status: 'past_due' }, at + 1, { status: 'active' }))),
      };
      for (const kind of kinds) {
        const reqs = requests[kind];
        perKind.get(kind)?.push(await costPer(reqs.length, async () => { await client.run('sequential', reqs); await settle(); }));
      }
    }
    const loadAtCostEnd = loadavg()[0];
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const costs: Array<[string, Cost, number[]]> = kinds.map((k) => {
      const cs = perKind.get(k) ?? [];
      return [k, { cpuUs: median(cs.map((c) => c.cpuUs)), sqlStatements: median(cs.map((c) => c.sqlStatements)), sqlRoundTrips: median(cs.map((c) => c.sqlRoundTrips)), redisCommands: median(cs.map((c) => c.redisCommands)) }, cs.map((c) => c.cpuUs)];
    });
    const noopCpu = costs[0][1].cpuUs;
    const costLines = [
      `| Delivery (${blocks} blocks of ${n}, cheap ones of ${CHEAP_BLOCK_SIZE}; one at a time) | server CPU per delivery, median of blocks (µs) | × no-op | blocks (µs) | SQL round trips | SQL statements | Redis commands |`,
      '|---|---|---|---|---|---|---|',
      ...costs.map(([label, c, all]) => `| ${label} | ${Math.round(c.cpuUs)} | ${fmtRatio(c.cpuUs / noopCpu)} | ${all.map((x) => Math.round(x)).join(', ')} | ${c.sqlRoundTrips.toFixed(1)} | ${c.sqlStatements.toFixed(1)} | ${c.redisCommands.toFixed(1)} |`),
    ];
    const createdCost = costs[1][1];

    const table: Array<{ label: string; concurrent: Stats; sequential: Stats | null }> = Object.entries(samples).map(([label, s]) => ({
      label,
      concurrent: stats(s.concurrent, s.rps, s.statuses),
      sequential: s.sequential.length ? stats(s.sequential, [], s.statuses) : null,
    }));
    const noopStats = table[0];
    const dup = table.find((r) => r.label.startsWith('duplicate'));
    const created = table.find((r) => r.label.startsWith('new subscription'));
    const updated = table.find((r) => r.label.startsWith('subscription.updated'));
    if (!dup || !created || !updated) throw new Error('missing measurements');
    const worstP99 = Math.max(created.concurrent.p99, updated.concurrent.p99, dup.concurrent.p99);
    const ratio = (a: number, b: number) => (b > 0 ? a / b : Infinity);
    const dupRatioSeq = dup.sequential && noopStats.sequential ? ratio(dup.sequential.p50, noopStats.sequential.p50) : NaN;
    const dupRatioConc = ratio(dup.concurrent.p50, noopStats.concurrent.p50);

    const lines = [
      `| Request | ${deliveries} concurrent: p50 / p99 / max (ms) | throughput (req/s) | one at a time: p50 / p99 (ms) | statuses |`,
      '|---|---|---|---|---|',
      ...table.map((r) => `| ${r.label} | ${fmt(r.concurrent.p50)} / ${fmt(r.concurrent.p99)} / ${fmt(r.concurrent.max)} | ${Math.round(r.concurrent.rps)} | ${r.sequential ? `${fmt(r.sequential.p50)} / ${fmt(r.sequential.p99)}` : '–'} | ${r.concurrent.statuses} |`),
    ];
    const verdict = [
      `- p99 acknowledgement, ${deliveries} concurrent distinct deliveries: ${fmt(Math.max(created.concurrent.p99, updated.concurrent.p99))} ms (target ≤ 50 ms: ${Math.max(created.concurrent.p99, updated.concurrent.p99) <= 50 ? 'met' : 'MISSED'}); worst p99 including duplicates ${fmt(worstP99)} ms.`,
      `- new subscription: ${createdCost.sqlRoundTrips.toFixed(1)} SQL round trips (target ≤ 5: ${createdCost.sqlRoundTrips <= 5 ? 'met' : 'MISSED'}), server CPU ${fmtRatio(createdCost.cpuUs / noopCpu)} the no-op's (target ≤ 5×: ${createdCost.cpuUs <= 5 * noopCpu ? 'met' : 'MISSED'}).`,
      `- duplicate vs no-op, p50 one at a time: ${fmtRatio(dupRatioSeq)} (target ≤ 1.2×: ${dupRatioSeq <= 1.2 ? 'met' : 'MISSED'}); at ${deliveries} concurrent: ${fmtRatio(dupRatioConc)} (${dupRatioConc <= 1.2 ? 'met' : 'MISSED'}).`,
    ];
    const env = `${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), node ${process.version}, PostgreSQL ${await serverVersion(adminUrl)} on loopback, control-plane pool ${config.DATABASE_POOL_SIZE}, directory in ${useRedis ? 'Redis' : 'process memory'}, ${rounds} rounds × ${deliveries} deliveries, commit ${commitMeasured()}, 1-minute load average ${loadAtCostStart.toFixed(2)} at the cost phase's start and ${loadAtCostEnd.toFixed(2)} at its end (the machine is shared), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    log('');
    const cpuNote = perThreadCpu ? 'CPU is the main thread\'s (the server\'s event loop; the load generator runs on another thread and is not counted; GC helper threads are not counted either), 10 ms clock ticks' : 'CPU is the whole process\'s (no per-thread clock on this OS), so it includes the load generator';
    for (const l of [...lines, '', ...costLines, '', ...verdict, '', cpuNote, '', env]) log(l);
    if (writeDocs) writeSection([...lines, '', ...costLines, '', `${cpuNote}.`], verdict, env, deliveries, rounds);
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
}

interface BatchResult {
  ms: number[];
  statuses: number[];
  wallMs: number;
}

/** The load generator, on a worker thread with its own keep-alive sockets (kept across batches). */
class LoadClient {
  private readonly worker = new Worker(__filename);
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>();

  constructor(private readonly base: URL) {
    this.worker.on('message', (m: { id: number; result?: BatchResult; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.result) p?.resolve(m.result);
      else p?.reject(new Error(m.error ?? 'worker failed'));
    });
    this.worker.on('error', (err) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  run(mode: 'concurrent' | 'sequential', requests: Request[]): Promise<BatchResult> {
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, mode, url: this.base.toString(), requests });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Worker side: all requests at once, or one after another; latency from write to the end of the response. */
function serveLoad(): void {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  parentPort?.on('message', (m: { id: number; mode: 'concurrent' | 'sequential'; url: string; requests: Request[] }) => {
    const base = new URL(m.url);
    const run = async (): Promise<BatchResult> => {
      const t0 = performance.now();
      let results: Array<{ ms: number; status: number }>;
      if (m.mode === 'concurrent') {
        results = await Promise.all(m.requests.map((r) => request(agent, base, r)));
      } else {
        results = [];
        for (const r of m.requests) results.push(await request(agent, base, r));
      }
      return { ms: results.map((r) => r.ms), statuses: results.map((r) => r.status), wallMs: performance.now() - t0 };
    };
    run().then((result) => parentPort?.postMessage({ id: m.id, result }), (err: Error) => parentPort?.postMessage({ id: m.id, error: err.message }));
  });
}

function request(agent: http.Agent, base: URL, r: Request): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request({
      host: base.hostname, port: base.port, method: r.method, path: r.path, agent, timeout: REQUEST_TIMEOUT_MS,
      headers: { ...(r.headers ?? {}), ...(r.body ? { 'content-length': Buffer.byteLength(r.body) } : {}) },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - started, status: res.statusCode ?? 0 }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(r.body);
  });
}

function stats(ms: number[], rps: number[], statuses: Map<number, number>): Stats {
  const sorted = [...ms].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return {
    n: sorted.length, p50: q(0.5), p99: q(0.99), max: sorted[sorted.length - 1],
    rps: rps.length ? rps.reduce((a, b) => a + b, 0) / rps.length : 0,
    statuses: [...statuses.entries()].map(([code, n]) => `${code}×${n}`).join(' '),
  };
}

/** Replaces only the "## Billing webhooks" section of docs/benchmarks.md (other sections belong to others). */
function writeSection(table: string[], verdict: string[], env: string, deliveries: number, rounds: number): void {
  const file = join(repoRoot, 'docs', 'benchmarks.md');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const section = [
    '## Billing webhooks',
    '',
    'Acknowledgement latency of `POST /webhooks/stripe` (signature check, idempotent store, lifecycle change, commit) next to a no-op route of the same server in the same run. In-process control plane on a throwaway control database, info-level logging, job worker off (the endpoint only enqueues provisioning). Latency is measured by the client, from request to the end of the response; payloads are signed beforehand.',
    '',
    '```',
    `npm run build && node dist/scripts/bench/webhooks.js --deliveries ${deliveries} --rounds ${rounds} --write-docs`,
    '```',
    '',
    ...table,
    '',
    ...verdict,
    '',
    `Environment: ${env}.`,
    '',
  ].join('\n');
  const start = current.indexOf('## Billing webhooks');
  let next: string;
  if (start === -1) {
    next = `${current.trimEnd()}\n\n${section}`;
  } else {
    const after = current.indexOf('\n## ', start + 3);
    next = current.slice(0, start) + section + (after === -1 ? '' : `\n${current.slice(after + 1)}`);
  }
  writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
  log(`wrote the "Billing webhooks" section of ${file}`);
}

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const fmtRatio = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');


/** The commit measured: BENCH_COMMIT (for a build outside a checkout), else the checkout's HEAD (+ "with local changes"). */
function commitMeasured(): string {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    return dirty ? `${head} with local changes` : head;
  } catch {
    return 'unknown';
  }
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function serverVersion(url: string): Promise<string> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version.split(' ')[0];
  } finally {
    await c.end();
  }
}

function findRepoRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + from);
    dir = up;
  }
  return dir;
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
} else {
  serveLoad();
}
