/**
 * Scenario 5 of the reliability suite: load. Many clients over many tenants through one runtime
 * process whose connection budget is far below what the tenants' pools could ask for, with a mix of
 * reads, writes and transactions, hot tenants and a long uniform tail (so pools are evicted and
 * recreated all the time). Asserts: no unexpected error, the budget never exceeded (the server's own
 * view, sampled every 250 ms, and the runtime's gauge), memory flat after warm-up, and every write the
 * clients were told succeeded is in its tenant's table (and nothing from a rolled-back transaction).
 *
 *   npx jest -c jest.reliability.config.js test/reliability/load.test.ts
 *   RELIABILITY_LOAD_TENANTS / _CLIENTS / _SECONDS / _BUDGET / _THINK_MS / _HOT / _TAIL_SHARE override the shape;
 *   RELIABILITY_SEED replays a run's tenant and op choices; RUNTIME_* variables are passed to the runtime.
 */
import { Agent } from 'node:http';
import { Client } from 'pg';
import { testDatabaseUrl, withDatabase } from '../support/env';
import { adminQuery } from '../support/test-db';
import { httpCall, HttpResult, runLoad, Sample, summarize } from './support/load';
import { ServiceProcess, sleep } from './support/processes';
import { recordFigures, round, runSeed, seededRandom } from './support/report';
import { SeededTenant, seedStackTenants } from './support/seeded-tenants';
import { mapLimit, ReliabilityStack } from './support/stack';

const envNum = (name: string, def: number, min = 1) => {
  const v = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isFinite(v) && v >= min ? v : def;
};
/**
 * The figures, also the CI default: 200 clients over 500 tenants for 60 s (about 2.5
 * minutes with provisioning). They used to pass 4 runs in 5: all clients fired their first request
 * at once (see SYNC_START), and in the run measured for it all 200 requests over 500 ms fell in the
 * first 10 s.
 */
const TENANTS = Math.round(envNum('RELIABILITY_LOAD_TENANTS', 500));
const CLIENTS = Math.round(envNum('RELIABILITY_LOAD_CLIENTS', 200));
const SECONDS = envNum('RELIABILITY_LOAD_SECONDS', 60);
/**
 * Connections the runtime may hold across all tenants: 500 tenants x a starter pool of 10 could ask
 * for 5,000. The PostgreSQL here has max_connections=100, shared with the control database and the
 * rest of the suite, so the budget is 50: a hundredth of that.
 */
const BUDGET = Math.round(envNum('RELIABILITY_LOAD_BUDGET', 50));
/**
 * Each client pauses 0..2x this (uniform) between requests, like an application doing other work.
 * Every request to a tenant without a warm connection opens one, and PostgreSQL on this machine
 * accepts only ~40 new connections a second at best (measured at the start: `connectsPerSecond`),
 * each costing 25-80 ms of server CPU: the tail alone asks for ~15 a second. This is what found
 * the pool manager's connect storms (fixed: connects capped per server, busy tenants keep their
 * connections, no handover between two starved tenants). 0 allowed.
 */
const THINK_MS = envNum('RELIABILITY_LOAD_THINK_MS', 1000, 0);
/**
 * A few hot tenants (Zipf s=0.5 among them) take 95% of the requests and fit the budget with their
 * full pools; the long tail shares 5% uniformly, so tail pools are created, evicted and recreated
 * all along (nearly every tail request opens a connection), taking connections from the hot ones.
 * The tail's share sets the connect rate: at 10% (~17 new connections a second) this machine's
 * PostgreSQL is at its connect capacity under the rest of the load (connects then take 60-150 ms
 * and queue), and 3-75 of ~10,000 requests time out (POOL_EXHAUSTED) depending on the run.
 */
const HOT = Math.min(TENANTS, Math.round(envNum('RELIABILITY_LOAD_HOT', 4)));
const TAIL_SHARE = HOT === TENANTS ? 0 : envNum('RELIABILITY_LOAD_TAIL_SHARE', 0.05, 0);
const ZIPF_S = 0.5;
/**
 * Clients start at random points of their think cycle (a steady closed loop), unless
 * RELIABILITY_LOAD_SYNC_START=1: then all of them send their first request at once to a runtime
 * with no connection open. That burst is the hardest moment of a run: at the figures ~70
 * requests queue on the hottest tenant while connections open two at a time, and waits reach
 * 1.5-1.9 s against the 2 s acquire timeout (every slow request of such runs fell in the first 10 s).
 */
const SYNC_START = process.env.RELIABILITY_LOAD_SYNC_START === '1';
/** The first part of the run, while pools and caches fill, is left out of the memory comparison. */
const WARMUP_MS = Math.min(10_000, (SECONDS * 1000) / 4);
const SEED = runSeed();

type Op = 'read' | 'insert' | 'update' | 'transaction' | 'rollback';
/** Op mix (cumulative); `rollback` is a transaction that fails on purpose: its insert must not survive. */
const MIX: Array<[Op, number]> = [['read', 0.45], ['insert', 0.7], ['update', 0.82], ['transaction', 0.97], ['rollback', 1]];
/** The one error that is part of the plan: the rollback op's division by zero. Anything else is unexpected. */
const EXPECTED = { op: 'rollback', status: 400, code: 'QUERY_FAILED', sqlstate: '22012' };

const TABLE = `CREATE TABLE items (id bigserial PRIMARY KEY, client int NOT NULL, seq int NOT NULL, note text NOT NULL, n int NOT NULL DEFAULT 0, UNIQUE (client, seq))`;

describe(`load: ${CLIENTS} clients over ${TENANTS} tenants for ${SECONDS} s through one runtime with a budget of ${BUDGET} connections`, () => {
  let stack: ReliabilityStack;
  let runtime: ServiceProcess & { url: string; metricsUrl: string };
  let tenants: SeededTenant[] = [];
  let provisionSeconds = 0;

  beforeAll(async () => {
    stack = await ReliabilityStack.create('relload');
    const seeded = await seedStackTenants(stack, {
      count: TENANTS,
      slugPrefix: 'load',
      prepareTemplate: async (url) => {
        const c = new Client({ connectionString: url });
        await c.connect();
        try {
          await c.query(`SET ROLE silo_template_owner; ${TABLE}`);
        } finally {
          await c.end();
        }
      },
    });
    tenants = seeded.tenants;
    provisionSeconds = seeded.seconds;
    // RUNTIME_* variables of this process reach the runtime too (to try pool settings).
    const runtimeOverrides = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('RUNTIME_') && v !== undefined)) as Record<string, string>;
    runtime = await stack.runtime({ RUNTIME_MAX_CONNECTIONS: String(BUDGET), ...runtimeOverrides });
    await runtime.start();
  }, 240_000);

  afterAll(async () => {
    const started = Date.now();
    // Tenant databases first, 16 at a time (each DROP DATABASE waits for a checkpoint: they share them).
    await runtime?.kill();
    if (stack && tenants.length) await stack.dropTenants(tenants.map((t) => t.role), 16);
    await stack?.cleanup();
    process.stdout.write(`[load] cleanup ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }, 180_000);

  it('serves the mix with no unexpected error, never exceeds the connection budget, keeps memory flat and keeps every acknowledged write', async () => {
    const maxConnections = Number((await adminQuery<{ v: number }>(`SELECT current_setting('max_connections')::int AS v`))[0]?.v);
    const inUseBefore = Number((await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity'))[0]?.n);
    const roles = tenants.map((t) => t.role);
    const rnd = seededRandom(SEED);
    // What this machine's PostgreSQL takes in new connections a second (4 at a time, 2 s): the
    // ceiling on how many requests a second can land on a tenant without a warm connection.
    const calibrate = async () => {
      let n = 0;
      const until = performance.now() + 2_000;
      await Promise.all([0, 1, 2, 3].map(async (k) => {
        while (performance.now() < until) {
          const c = new Client({ connectionString: withDatabase(testDatabaseUrl(), (tenants[(n + k) % tenants.length] as SeededTenant).role), application_name: 'silo-reliability-calibrate' });
          await c.connect();
          await c.end();
          n++;
        }
      }));
      return round(n / 2, 0);
    };
    const connectsPerSecond = await calibrate();
    // Sessions opened on the hot tenants' databases (PostgreSQL's own count): connections a busy tenant had to reopen.
    const hotSessions = async () => Number((await adminQuery<{ n: number }>('SELECT coalesce(sum(sessions), 0)::int AS n FROM pg_stat_database WHERE datname = ANY($1)', [roles.slice(0, HOT)]))[0]?.n);
    const hotSessionsBefore = await hotSessions();
    // Checkpoints while the load runs (writes that every commit's WAL flush then queues behind).
    const checkpoints = async () => Number((await adminQuery<{ n: number }>('SELECT (checkpoints_timed + checkpoints_req)::int AS n FROM pg_stat_bgwriter'))[0]?.n);
    const checkpointsBefore = await checkpoints();

    // Tenant choice: cumulative weights, binary-searched.
    const zipf = Array.from({ length: HOT }, (_, i) => (i + 1) ** -ZIPF_S);
    const zipfSum = zipf.reduce((a, b) => a + b, 0);
    const weights = tenants.map((_, i) => (i < HOT ? ((1 - TAIL_SHARE) * (zipf[i] as number)) / zipfSum : TAIL_SHARE / (TENANTS - HOT)));
    const cumulative: number[] = [];
    weights.reduce((acc, w, i) => (cumulative[i] = acc + w), 0);
    const total = cumulative[cumulative.length - 1] as number;
    const pickTenant = () => {
      const x = rnd() * total;
      let lo = 0;
      let hi = cumulative.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((cumulative[mid] as number) < x) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const pickOp = (): Op => {
      const x = rnd();
      return (MIX.find(([, c]) => x < c) as [Op, number])[0];
    };

    // What the clients were told: inserted ids per tenant (2xx only), and inserts whose fate is unknown.
    const acked = tenants.map(() => new Set<string>());
    const uncertain = tenants.map(() => 0);
    const seqs = new Array<number>(CLIENTS).fill(0);
    const unexpected: Array<{ op: Op; status: number; code: string | null; text: string }> = [];
    const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS + 8 });

    const send = (t: SeededTenant, client: number, path: string, body: unknown): Promise<HttpResult> =>
      client % 2 === 0
        ? httpCall(runtime.url, path, { host: `${t.slug}.localhost`, key: t.key, body, agent, timeoutMs: 30_000 })
        : httpCall(runtime.url, `/tenants/${t.slug}${path}`, { key: t.key, body, agent, timeoutMs: 30_000 });

    const step = async (client: number): Promise<{ tenant: number; op: string; result: HttpResult }> => {
      const i = pickTenant();
      const t = tenants[i] as SeededTenant;
      const op = pickOp();
      const seq = ++seqs[client]!;
      const insert = { sql: 'INSERT INTO items (client, seq, note) VALUES ($1, $2, $3) RETURNING id', params: [client, seq, `c${client}-s${seq}`] };
      let result: HttpResult;
      switch (op) {
        case 'read':
          result = await send(t, client, '/v1/query', { sql: 'SELECT id, seq, n FROM items ORDER BY id DESC LIMIT 5' });
          break;
        case 'insert':
          result = await send(t, client, '/v1/query', insert);
          break;
        case 'update':
          result = await send(t, client, '/v1/query', { sql: 'UPDATE items SET n = n + 1 WHERE id = (SELECT max(id) FROM items)' });
          break;
        case 'transaction':
          result = await send(t, client, '/v1/transaction', { statements: [
            insert,
            { sql: 'UPDATE items SET n = n + 1 WHERE client = $1 AND seq = $2', params: [client, seq] },
            { sql: 'SELECT count(*)::int AS rows FROM items' },
          ] });
          break;
        case 'rollback':
          result = await send(t, client, '/v1/transaction', { statements: [insert, { sql: 'SELECT 1 / 0' }] });
          break;
      }
      const writes = op === 'insert' || op === 'transaction';
      if (result.status >= 200 && result.status < 300) {
        if (op === 'rollback') unexpected.push({ op, status: result.status, code: 'ROLLBACK_SUCCEEDED', text: result.text.slice(0, 300) });
        const id = op === 'insert' ? result.body?.rows?.[0]?.id : op === 'transaction' ? result.body?.results?.[0]?.rows?.[0]?.id : null;
        if (writes) {
          if (id == null) unexpected.push({ op, status: result.status, code: 'NO_ID', text: result.text.slice(0, 300) });
          else (acked[i] as Set<string>).add(String(id));
        }
      } else {
        const planned = op === EXPECTED.op && result.status === EXPECTED.status && result.code === EXPECTED.code && result.body?.error?.details?.sqlstate === EXPECTED.sqlstate;
        if (!planned) {
          // POOL_EXHAUSTED says which limit was full: the tenant's pool or the replica's budget.
          const limit = result.body?.error?.details?.limit;
          unexpected.push({ op, status: result.status, code: limit ? `${result.code}:${limit}` : result.code, text: result.text.slice(0, 300) });
          if (writes) uncertain[i]!++;
        }
      }
      // The planned failure is not an error of the run: report it as its own op outcome.
      const planned = op === 'rollback' && result.code === EXPECTED.code;
      return { tenant: i, op, result: planned ? { ...result, code: null } : result };
    };

    // Samplers: the server's count of this runtime's tenant connections (every 250 ms), the
    // runtime's RSS (every 250 ms) and its own gauges and heap (every second).
    const metric = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
    const sampler = new Client({ connectionString: testDatabaseUrl(), application_name: 'silo-reliability-sampler' });
    await sampler.connect();
    const serverConns: Array<{ at: number; n: number }> = [];
    const rss: Array<{ at: number; kb: number }> = [];
    const gauges: Array<{ at: number; connections: number; pools: number; heap: number }> = [];
    const signal = { stopped: false };
    const t0 = performance.now();
    const every = async (ms: number, fn: () => Promise<void>) => {
      while (!signal.stopped) {
        const next = performance.now() + ms;
        await fn().catch(() => undefined);
        await sleep(Math.max(0, next - performance.now()));
      }
    };
    const samplers = Promise.all([
      every(250, async () => {
        const r = await sampler.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'silo-runtime' AND usename = ANY($1)`, [roles]);
        serverConns.push({ at: performance.now() - t0, n: r.rows[0]?.n ?? 0 });
      }),
      every(250, async () => {
        rss.push({ at: performance.now() - t0, kb: runtime.rssKb() });
      }),
      every(1_000, async () => {
        const r = await httpCall(runtime.metricsUrl, '/metrics', { agent });
        const gauge = (name: string) => metric(r.text, name);
        gauges.push({ at: performance.now() - t0, connections: gauge('silo_runtime_connections'), pools: gauge('silo_runtime_pools'), heap: gauge('nodejs_heap_size_used_bytes') });
      }),
    ]);

    let run: { samples: Sample[]; durationMs: number };
    try {
      const thinkRnd = seededRandom(SEED + 1);
      run = await runLoad({ clients: CLIENTS, durationMs: SECONDS * 1000, step, thinkMs: () => thinkRnd() * 2 * THINK_MS, staggered: !SYNC_START });
    } finally {
      signal.stopped = true;
      await samplers;
      await sampler.end();
      agent.destroy();
    }
    const finalMetrics = (await httpCall(runtime.metricsUrl, '/metrics')).text;
    const hotConnects = (await hotSessions()) - hotSessionsBefore;
    const connects = metric(finalMetrics, 'silo_runtime_connect_duration_seconds_count');
    const connectMsMean = round((metric(finalMetrics, 'silo_runtime_connect_duration_seconds_sum') / connects) * 1000);
    const evictionsByReason = Object.fromEntries(['idle', 'handover'].map((r) => [r, metric(finalMetrics, `silo_runtime_pool_evictions_total\\{[^}]*reason="${r}"[^}]*\\}`) || 0]));
    const evictions = (evictionsByReason.idle as number) + (evictionsByReason.handover as number);
    // Where requests waited for a connection (the runtime's histogram): how many, and how many over 0.5 s and 1 s.
    const poolWait = Object.fromEntries(['idle', 'release', 'connect'].map((via) => {
      const bucket = (le: string) => metric(finalMetrics, `silo_runtime_pool_wait_seconds_bucket\\{le="${le}",[^}]*via="${via}"\\}`) || 0;
      const count = bucket('\\+Inf');
      return [via, { count, over500ms: count - bucket('0.5'), over1s: count - bucket('1') }];
    }));
    const slowRequests = run.samples.filter((x) => x.ms > 500).length;
    // When they happened: requests over 500 ms per 10 s of the run.
    const slowByTenSeconds = Array.from({ length: Math.ceil(run.durationMs / 10_000) }, (_, k) => run.samples.filter((x) => x.ms > 500 && Math.floor(x.at / 10_000) === k).length);
    const checkpointsDuring = (await checkpoints()) - checkpointsBefore;

    // Durability: every tenant's table against what its clients were told.
    const found = await mapLimit(tenants, 8, async (t) => {
      const c = new Client({ connectionString: withDatabase(testDatabaseUrl(), t.role), application_name: 'silo-reliability-verify' });
      await c.connect();
      try {
        return (await c.query<{ id: string }>('SELECT id::text AS id FROM items')).rows.map((r) => r.id);
      } finally {
        await c.end();
      }
    });
    let rowsAcked = 0;
    let rowsFound = 0;
    let lost = 0;
    let extra = 0;
    const lostExamples: string[] = [];
    tenants.forEach((t, i) => {
      const want = acked[i] as Set<string>;
      const have = new Set(found[i]);
      rowsAcked += want.size;
      rowsFound += have.size;
      for (const id of want) if (!have.has(id)) {
        lost++;
        if (lostExamples.length < 5) lostExamples.push(`${t.slug}#${id}`);
      }
      // Rows nobody was told about: only allowed where a write's outcome was unknown (failed request).
      extra += Math.max(0, have.size - want.size - (uncertain[i] as number));
    });

    // Figures.
    const s = summarize(run.samples, run.durationMs);
    const byOp: Record<string, number> = {};
    for (const x of run.samples) byOp[x.op] = (byOp[x.op] ?? 0) + 1;
    const perTenantSecond = new Map<string, number>();
    for (const x of run.samples) {
      const k = `${x.tenant}:${Math.floor(x.at / 1000)}`;
      perTenantSecond.set(k, (perTenantSecond.get(k) ?? 0) + 1);
    }
    const tenantsTouched = new Set(run.samples.map((x) => x.tenant)).size;
    const maxServerConns = serverConns.reduce((m, x) => Math.max(m, x.n), 0);
    const maxGauge = gauges.reduce((m, x) => Math.max(m, Number.isFinite(x.connections) ? x.connections : 0), 0);
    const after = rss.filter((x) => x.at >= WARMUP_MS);
    const third = Math.floor(after.length / 3);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const rssFirst = mean(after.slice(0, third).map((x) => x.kb)) / 1024;
    const rssLast = mean(after.slice(-third).map((x) => x.kb)) / 1024;
    const heapAfter = gauges.filter((x) => x.at >= WARMUP_MS && Number.isFinite(x.heap));
    const heapThird = Math.floor(heapAfter.length / 3);
    const heapFirst = mean(heapAfter.slice(0, heapThird).map((x) => x.heap)) / 1048576;
    const heapLast = mean(heapAfter.slice(-heapThird).map((x) => x.heap)) / 1048576;
    const unexpectedByCode: Record<string, number> = {};
    for (const u of unexpected) unexpectedByCode[`${u.op}:${u.code}`] = (unexpectedByCode[`${u.op}:${u.code}`] ?? 0) + 1;
    const failed = run.samples.filter((x) => x.code !== null);
    const errorsByClass = { hot: failed.filter((x) => x.tenant < HOT).length, tail: failed.filter((x) => x.tenant >= HOT).length };
    // Latency by tenant class: the tail's requests nearly all wait for a new connection, the hot ones should not.
    const classLatency = (hot: boolean) => {
      const c = summarize(run.samples.filter((x) => (x.tenant < HOT) === hot), run.durationMs);
      return { requests: c.requests, p50Ms: c.p50, p99Ms: c.p99, maxMs: c.max };
    };
    const latencyByClass = { hot: classLatency(true), tail: classLatency(false) };
    const figures = {
      seed: SEED, syncStart: SYNC_START, tenants: TENANTS, tenantsTouched, hotTenants: HOT, tailShare: TAIL_SHARE, clients: CLIENTS, thinkMsMean: THINK_MS, seconds: round(run.durationMs / 1000), budget: BUDGET,
      postgresMaxConnections: maxConnections, connectsPerSecond, serverConnectionsInUseBefore: inUseBefore, provisionSeconds: round(provisionSeconds),
      requests: s.requests, rps: s.rps, byOp, plannedRollbacks: byOp.rollback ?? 0,
      errors: unexpected.length, errorsByCode: unexpectedByCode, errorsByClass, firstErrors: unexpected.slice(0, 3),
      p50Ms: s.p50, p95Ms: s.p95, p99Ms: s.p99, maxMs: s.max, latencyByClass,
      connectsOpened: connects, hotConnects, poolWait, slowRequests, slowByTenSeconds, checkpointsDuring, connectMsMean, evictions, evictionsByReason,
      hottestTenantRpsMax: Math.max(0, ...perTenantSecond.values()),
      maxServerConnections: maxServerConns, serverSamples: serverConns.length, maxRuntimeConnectionsGauge: maxGauge, maxPools: gauges.reduce((m, x) => Math.max(m, x.pools || 0), 0),
      rssMb: { first: round(rssFirst), last: round(rssLast), max: round(Math.max(...rss.map((x) => x.kb)) / 1024), samples: rss.length, warmupMs: WARMUP_MS },
      heapMb: { first: round(heapFirst), last: round(heapLast) },
      runtimeWarnings: [...new Set(runtime.output(300).split('\n').filter((l) => /connection failed/.test(l)).map((l) => l.replace(/.*"err":/, '').slice(0, 200)))].slice(0, 3),
      // The runtime's own account of a timed-out wait: the pool and the budget at that moment.
      exhaustedSnapshots: runtime.output(2000).split('\n').filter((l) => /POOL_EXHAUSTED/.test(l)).slice(0, 5).map((l) => l.replace(/^.*?"tenant"/, '{"tenant"')),
      rowsWritten: rowsAcked, rowsFound, rowsLost: lost, rowsUnacknowledged: extra, dataLost: lost,
    };
    recordFigures('Load', figures);
    process.stdout.write(`[load] ${JSON.stringify(figures)}\n`);

    // Durability first (it holds whatever else happened): every acknowledged insert is there, and
    // nothing else is, beyond inserts whose request failed (rolled-back inserts are gone).
    expect(lostExamples).toEqual([]);
    expect(lost).toBe(0);
    expect(extra).toBe(0);
    expect(unexpected.slice(0, 5)).toEqual([]);
    expect(unexpected.length).toBe(0);
    expect(rowsFound).toBe(rowsAcked);
    // At least half what the clients would send if every answer were instant, or the run proved little.
    expect(s.requests).toBeGreaterThan((CLIENTS * SECONDS * 1000) / Math.max(50, THINK_MS) / 2);
    expect(tenantsTouched).toBeGreaterThan(TENANTS / 2);
    // The budget: the server's own count, and the runtime's gauge.
    expect(serverConns.length).toBeGreaterThan(SECONDS * 2);
    expect(maxServerConns).toBeLessThanOrEqual(BUDGET);
    expect(maxGauge).toBeLessThanOrEqual(BUDGET);
    // The budget was under pressure: filled, and connections closed to open others' (pools evicted and recreated).
    expect(maxServerConns).toBeGreaterThan(BUDGET / 2);
    expect(evictions).toBeGreaterThan(0);
    expect(connects).toBeGreaterThan(tenantsTouched);
    // Busy tenants keep their connections: the tail's churn does not make them reconnect (before the
    // fix they reopened one connection for every ~15 requests, here about one in 300).
    const hotRequests = run.samples.filter((x) => x.tenant < HOT).length;
    expect(hotConnects).toBeLessThan(Math.max(HOT * 10, hotRequests * 0.02));
    // Memory flat after warm-up: the last third's mean within 15% (+ 20 MB for GC timing) of the first third's.
    expect(third).toBeGreaterThan(10);
    expect(rssLast).toBeLessThanOrEqual(rssFirst * 1.15 + 20);
    if (heapThird > 2) expect(heapLast).toBeLessThanOrEqual(heapFirst * 1.25 + 15);
  });
});
