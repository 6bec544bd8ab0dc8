import { unlinkSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { DEFAULT_TIERS, TierSettings } from '../../provisioning/tiers';
import { httpCall, runLoad, Sample, summarize } from './support/load';
import { ServiceProcess, sleep } from './support/processes';
import { percentile, recordFigures, round } from './support/report';
import { procMemory, RssSampler, RssSummary } from './support/rss-sampler';
import { ReliabilityStack } from './support/stack';
import { LiveTenant, provisionTenants, tenantQuery, writeTiersFile } from './support/tenants';

/**
 * Scenario 8, hostile tenant vs runtime memory (issue #13, "Done when": the runtime stays up and
 * its RSS under a stated bound while tenants send 600 MiB values, many 200 MiB rows at once and
 * huge notices). A runtime process spawned from dist/ with the default 10 MiB result cap; one
 * tenant (enterprise with a 120 s statement timeout, so a 600 MiB value reaches the guard, not the
 * timeout) sends, from 14 concurrent loops for 30 s, 600 MiB values (over /v1/query,
 * /sql and /v1/transaction in turn), 200 MiB rows from 8 loops at once, 200 MiB through COPY TO
 * STDOUT, 2,000 rows of 100 kB, and DO blocks raising a 50 MiB NOTICE and a 50 MiB EXCEPTION,
 * while a neighbour tenant runs SELECT 1 in a loop. The runtime's VmRSS is read from /proc every
 * 100 ms, and VmHWM (the kernel's peak) at the end.
 *
 * Asserted: the process never exits (same pid, never missing from /proc, /health/live 200 after);
 * every hostile request answers 400 RESULT_TOO_LARGE (with the message kind and limit the guard
 * names); the neighbour gets 200 on every call; the peak (max VmRSS sample and VmHWM) stays under
 * the formula, (concurrent requests x cap) + fixed overhead:
 *   baseline VmRSS after warm-up + (hostile loops + neighbour loops) x 2 x cap + 64 MiB,
 * two copies of a capped result per request (pg's rows and the response body being built).
 *
 * The bound always uses the default 10 MiB cap. RUNTIME_* variables of this process are passed to
 * the runtime, so `RUNTIME_MAX_RESULT_BYTES=1073741824` turns the guard's result cap off and shows
 * the bound bite (the 200 MiB rows are then buffered whole): see docs/reliability.md, scenario 8.
 *
 *   npx jest -c jest.reliability.config.js test/reliability/hostile-tenant.test.ts
 *   RELIABILITY_HOSTILE_SECONDS (default 30) sets the attack's length.
 */
const SCENARIO = 'Scenario 8: hostile tenant, runtime memory';
const MiB = 1024 * 1024;
/** RUNTIME_MAX_RESULT_BYTES default: what the bound is computed from, whatever the runtime is given. */
const CAP = 10 * MiB;
/** guarded-connection.ts MAX_MESSAGE_BYTES: notices and errors are held to this. */
const MESSAGE_CAP = MiB;
const FIXED_OVERHEAD = 64 * MiB;
const envSeconds = Number(process.env.RELIABILITY_HOSTILE_SECONDS);
const ATTACK_MS = (Number.isFinite(envSeconds) && envSeconds > 0 ? envSeconds : 30) * 1000;
const NEIGHBOUR_LOOPS = 1;

type Route = '/v1/query' | '/sql' | '/v1/transaction';
interface Attack {
  kind: string;
  loops: number;
  sql: string;
  routes: Route[];
  /** details the guard's error must carry on /v1 routes (/sql carries Silo's code only). */
  details: Record<string, unknown>;
}

const ATTACKS: Attack[] = [
  { kind: '600 MiB value', loops: 2, sql: `SELECT repeat('x', ${600 * MiB}) AS v`, routes: ['/v1/query', '/sql', '/v1/transaction'], details: { unit: 'bytes', limit: CAP } },
  { kind: '200 MiB row', loops: 8, sql: `SELECT repeat('y', ${200 * MiB}) AS v`, routes: ['/v1/query'], details: { unit: 'bytes', limit: CAP } },
  { kind: '200 MiB COPY TO STDOUT', loops: 1, sql: `COPY (SELECT repeat('k', ${200 * MiB})) TO STDOUT`, routes: ['/v1/query'], details: { unit: 'bytes', limit: CAP } },
  { kind: '2,000 rows of 100 kB', loops: 1, sql: `SELECT repeat('m', 100000) AS v FROM generate_series(1, 2000)`, routes: ['/v1/query'], details: { unit: 'bytes', limit: CAP } },
  { kind: '50 MiB NOTICE', loops: 1, sql: `DO $$ BEGIN RAISE NOTICE '%', repeat('n', ${50 * MiB}); END $$`, routes: ['/v1/query'], details: { message: 'notice', limit: MESSAGE_CAP } },
  { kind: '50 MiB EXCEPTION', loops: 1, sql: `DO $$ BEGIN RAISE EXCEPTION '%', repeat('e', ${50 * MiB}); END $$`, routes: ['/v1/query'], details: { message: 'error', limit: MESSAGE_CAP } },
];
const HOSTILE_LOOPS = ATTACKS.reduce((n, a) => n + a.loops, 0);
const CONCURRENCY = HOSTILE_LOOPS + NEIGHBOUR_LOOPS;

interface HostileResult {
  kind: string;
  route: Route;
  status: number;
  code: string | null;
  details: Record<string, unknown> | null;
  /** Bytes of the response body (only the first 64 kB are kept: a guard that failed would send hundreds of MiB). */
  bytes: number;
  ms: number;
}

const hostileAgent = new Agent({ keepAlive: true, maxSockets: 32 });

/** One hostile request; keeps the response's status, Silo's code and details, never the body itself. */
function hostileCall(url: string, t: LiveTenant, attack: Attack, route: Route): Promise<HostileResult> {
  const body = route === '/sql' ? { query: attack.sql, params: [] } : route === '/v1/transaction' ? { statements: [{ sql: attack.sql }] } : { sql: attack.sql };
  const payload = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) };
  if (route === '/sql') headers['neon-connection-string'] = `postgres://${t.slug}:${encodeURIComponent(t.key)}@runtime.silo.test/${t.slug}`;
  else Object.assign(headers, { host: `${t.slug}.localhost`, authorization: `Bearer ${t.key}` });
  const u = new URL(url);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const done = (status: number, code: string | null, details: Record<string, unknown> | null, bytes: number) =>
      resolve({ kind: attack.kind, route, status, code, details, bytes, ms: Date.now() - t0 });
    const req = request({ host: u.hostname, port: u.port, path: route, method: 'POST', headers, agent: hostileAgent, timeout: 150_000 }, (res) => {
      const kept: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        if (bytes < 65_536) kept.push(c);
        bytes += c.length;
      });
      res.on('end', () => {
        let parsed: any = null;
        try {
          parsed = JSON.parse(Buffer.concat(kept).toString('utf8'));
        } catch {
          // cut or not JSON
        }
        const status = res.statusCode ?? 0;
        const err = parsed?.error ?? parsed;
        done(status, status >= 200 && status < 300 ? null : (err?.code ?? `HTTP_${status}`), err?.details ?? null, bytes);
      });
      res.on('error', () => done(0, 'NETWORK', null, bytes));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => done(0, /timeout/.test(e.message) ? 'CLIENT_TIMEOUT' : 'NETWORK', null, 0));
    req.end(payload);
  });
}

/** What the guard answers for this attack: 400 RESULT_TOO_LARGE, and on /v1 routes the message kind and limit. */
function refusedAsExpected(r: HostileResult, attack: Attack): boolean {
  if (r.status !== 400 || r.code !== 'RESULT_TOO_LARGE') return false;
  if (r.route === '/sql') return true;
  return Object.entries(attack.details).every(([k, v]) => r.details?.[k] === v);
}

const mib = (kb: number) => round(kb / 1024, 1);

describe(SCENARIO, () => {
  let stack: ReliabilityStack;
  let rt: ServiceProcess & { url: string };
  let evil: LiveTenant, calm: LiveTenant;
  let tiersFile = '';
  let pid = 0;
  let baselineKb = 0;
  let rss: RssSummary;
  let exitedDuringAttack: string | null = null;
  const hostile: HostileResult[] = [];
  let neighbour: Sample[] = [];
  const figures: Record<string, unknown> = {};
  const boundKb = () => baselineKb + (CONCURRENCY * 2 * CAP + FIXED_OVERHEAD) / 1024;
  const peakKb = () => Math.max(rss.maxRssKb, rss.hwmKb);

  beforeAll(async () => {
    stack = await ReliabilityStack.create('relhostile');
    // The hostile tier is enterprise with a 120 s statement timeout: under this attack PostgreSQL
    // took up to 27.6 s to answer one 600 MiB value on 2 cores (enterprise's 30 s was too close).
    // pro for the neighbour: its rate limit (1,000/s) is above what one SELECT 1 loop sends here.
    const { name: _n, ...enterprise } = DEFAULT_TIERS.enterprise as TierSettings;
    tiersFile = writeTiersFile('relhostile', { hostile: { ...enterprise, statementTimeoutMs: 120_000 } });
    const cp = await stack.controlPlane({ LOG_LEVEL: 'warn', TIERS_FILE: tiersFile });
    await cp.start();
    [evil, calm] = await provisionTenants(stack, cp.url, [{ slug: 'hostile', tier: 'hostile' }, { slug: 'neighbour', tier: 'pro' }]);
    await cp.stop(); // not needed by the runtime: frees the CPU for the attack
    const runtimeOverrides = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('RUNTIME_') && v !== undefined)) as Record<string, string>;
    // Per-tenant pool cap 40 (default 20): each refused request's backend stays counted until the
    // server shows it gone, and at 20 the 14 loops plus those still exiting reached the cap (20
    // backends seen), so requests queued for a connection. This scenario measures memory, not that.
    rt = await stack.runtime({ TIERS_FILE: tiersFile, RUNTIME_MAX_RESULT_BYTES: String(CAP), RUNTIME_MAX_CONNECTIONS_PER_TENANT: '40', ...runtimeOverrides });
    await rt.start();
    pid = rt.pid;
    figures.runtimeMaxResultBytes = Number(rt.env.RUNTIME_MAX_RESULT_BYTES);

    // Warm-up: both tenants' pools, the JSON and neon paths, a result of a few MiB (under the cap).
    for (let i = 0; i < 20; i++) {
      for (const t of [evil, calm]) expect((await tenantQuery(rt.url, t, 'SELECT 1 AS one')).status).toBe(200);
    }
    expect((await tenantQuery(rt.url, evil, `SELECT repeat('w', ${4 * MiB}) AS v`)).status).toBe(200);
    expect((await httpCall(rt.url, '/sql', { headers: { 'neon-connection-string': `postgres://${evil.slug}:${encodeURIComponent(evil.key)}@runtime.silo.test/${evil.slug}` }, body: { query: 'SELECT 1 AS one', params: [] } })).status).toBe(200);
    await sleep(1_000);
    const base = procMemory(pid);
    if (!base) throw new Error('runtime gone after warm-up');
    baselineKb = base.rssKb;
    Object.assign(figures, { baselineRssMiB: mib(base.rssKb), hwmAtBaselineMiB: mib(base.hwmKb), concurrency: CONCURRENCY, boundMiB: mib(boundKb()) });

    rt.child?.once('exit', (code, signal) => {
      exitedDuringAttack = `code ${code}, signal ${signal}`;
    });
    const sampler = new RssSampler(pid, 100).start();
    const stop = { stopped: false };
    // The hostile tenant's backends on the server (each refused request's backend is terminated, and
    // counted against the tenant's pool cap until it is gone).
    const backends = (async () => {
      let max = 0;
      while (!stop.stopped) {
        const rows = await stack.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [evil.role]).catch(() => []);
        max = Math.max(max, rows[0]?.n ?? 0);
        await sleep(250);
      }
      return max;
    })();
    const started = Date.now();
    const attackers = ATTACKS.flatMap((attack) => Array.from({ length: attack.loops }, async (_, loop) => {
      let n = loop;
      while (Date.now() - started < ATTACK_MS && !stop.stopped) {
        const route = attack.routes[n++ % attack.routes.length] as Route;
        hostile.push(await hostileCall(rt.url, evil, attack, route));
        if (!rt.running) break;
      }
    }));
    // The neighbour runs until the last hostile request has answered (those in flight at ATTACK_MS
    // too), pausing 5 ms between calls: at most 200/s, under its tier's rate limit once the load lifts.
    const calmLoad = runLoad({
      clients: NEIGHBOUR_LOOPS, durationMs: 4 * ATTACK_MS, signal: stop, thinkMs: () => 5,
      step: async () => ({ tenant: 0, op: 'SELECT 1', result: await tenantQuery(rt.url, calm, 'SELECT 1 AS one', [], 30_000) }),
    });
    await Promise.all(attackers);
    stop.stopped = true;
    neighbour = (await calmLoad).samples;
    figures.hostileBackendsMax = await backends;
    figures.attackMs = Date.now() - started;
    rss = sampler.stop();
    publish();
  }, 175_000);

  afterAll(async () => {
    publish();
    await stack?.cleanup();
    if (tiersFile) unlinkSync(tiersFile);
  });

  const publish = () => {
    if (rss) {
      Object.assign(figures, {
        rssSamples: rss.samples, rssSampleMaxGapMs: rss.maxGapMs, rssSamplesMissed: rss.missed,
        maxRssSampleMiB: mib(rss.maxRssKb), vmHwmMiB: mib(rss.hwmKb), peakMiB: mib(peakKb()),
        peakOverBaselineMiB: mib(peakKb() - baselineKb), rssSeriesMiB: rss.series.map(([at, kb]) => `${round(at / 1000, 0)}s:${mib(kb)}`).join(' '),
      });
    }
    const byKind: Record<string, Record<string, number>> = {};
    for (const r of hostile) {
      const k = `${r.status} ${r.code ?? 'OK'}`;
      const slot = (byKind[`${r.kind} ${r.route}`] ??= {});
      slot[k] = (slot[k] ?? 0) + 1;
    }
    const n = summarize(neighbour, Number(figures.attackMs ?? ATTACK_MS));
    Object.assign(figures, {
      hostileRequests: hostile.length,
      hostileRefusedAsExpected: hostile.filter((r) => refusedAsExpected(r, ATTACKS.find((a) => a.kind === r.kind) as Attack)).length,
      hostileByKind: byKind,
      hostileMsByKind: Object.fromEntries(ATTACKS.map((a) => {
        const ms = hostile.filter((r) => r.kind === a.kind).map((r) => r.ms);
        return [a.kind, { n: ms.length, p50: percentile(ms, 50), max: ms.reduce((m, v) => Math.max(m, v), 0) }];
      })),
      neighbourRequests: n.requests, neighbourErrors: n.errors, neighbourByCode: n.byCode,
      neighbourMs: { p50: n.p50, p99: n.p99, max: n.max },
      runtimeExited: exitedDuringAttack,
    });
    recordFigures(SCENARIO, figures);
  };

  it('the runtime process stays up through the attack', async () => {
    expect(exitedDuringAttack).toBeNull();
    expect(rss.missed).toBe(0);
    expect(rt.running).toBe(true);
    expect(rt.pid).toBe(pid);
    expect(rt.starts).toBe(1);
    expect((await httpCall(rt.url, '/health/live')).status).toBe(200);
    expect((await tenantQuery(rt.url, evil, 'SELECT 1 AS one')).body.rows).toEqual([{ one: 1 }]);
  });

  it('answers every hostile request 400 RESULT_TOO_LARGE, naming the message kind and limit', () => {
    // Every loop finished requests (a 600 MiB value takes 10-28 s here: about 4 in a run).
    for (const a of ATTACKS) expect(hostile.filter((r) => r.kind === a.kind).length).toBeGreaterThanOrEqual(a.loops);
    expect(hostile.length).toBeGreaterThanOrEqual(HOSTILE_LOOPS * 3);
    const wrong = hostile.filter((r) => !refusedAsExpected(r, ATTACKS.find((a) => a.kind === r.kind) as Attack))
      .map((r) => `${r.kind} ${r.route}: ${r.status} ${r.code} ${JSON.stringify(r.details)} (${r.bytes} bytes, ${r.ms} ms)`);
    expect(wrong).toEqual([]);
  });

  it('serves the neighbour 200 on every call meanwhile', () => {
    expect(neighbour.length).toBeGreaterThanOrEqual(50);
    expect(neighbour.filter((s) => s.status !== 200).map((s) => `${s.status} ${s.code} at ${round(s.at)} ms`)).toEqual([]);
  });

  it('keeps peak RSS (max VmRSS sample and VmHWM) under baseline + concurrency x 2 x cap + 64 MiB', () => {
    expect(rss.samples).toBeGreaterThanOrEqual((ATTACK_MS / 100) * 0.5); // sampled ~every 100 ms, not just at the ends
    expect(mib(peakKb())).toBeLessThanOrEqual(mib(boundKb()));
  });
});
