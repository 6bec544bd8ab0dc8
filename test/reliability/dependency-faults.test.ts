import { rmSync } from 'node:fs';
import { adminQuery } from '../support/test-db';
import { httpCall, HttpResult, runLoad, Sample, summarize } from './support/load';
import { ServiceProcess, sleep } from './support/processes';
import { recordFigures, round } from './support/report';
import { ReliabilityStack } from './support/stack';
import { issueApiKey, LiveTenant, provisionTenants, tenantQuery, until, writeTiersFile } from './support/tenants';

/**
 * Scenario 3, dependency faults: a runtime process serving several tenants under closed-loop load
 * while its dependencies fail: (a) its Redis is SIGKILLed and restarted, (b) one tenant's Postgres
 * backends are terminated again and again, (c) one tenant's database stops accepting connections.
 * Each request checks it got its own tenant's data. Durations are env-overridable for longer runs.
 */
const SCENARIO = 'Scenario 3: dependency faults';
const CLIENTS = Number(process.env.RELIABILITY_FAULT_CLIENTS || 6);
const PHASE_MS = Number(process.env.RELIABILITY_FAULT_PHASE_MS || 8_000);
/** A request for a healthy tenant, or for the victim once its fault is gone, must succeed within this. */
const RECOVERY_BOUND_MS = 3_000;
/** An invalidation published over a working bus reaches the runtime within this. */
const INVALIDATION_BOUND_MS = 2_000;

type Op = 'read' | 'write';

describe(SCENARIO, () => {
  let stack: ReliabilityStack;
  let cp: ServiceProcess & { url: string };
  let rt: ServiceProcess & { url: string };
  let tenants: LiveTenant[];
  let tiers: string | null = null;
  const figures: Record<string, unknown> = {};
  const publish = () => recordFigures(SCENARIO, figures);

  /**
   * One request of the mix for tenant `i`: a read of the tenant's own marker row or an insert. A
   * 200 that carries another tenant's slug is counted as WRONG_TENANT (must never happen).
   */
  const step = async (i: number, n: number): Promise<{ tenant: number; op: Op; result: HttpResult }> => {
    const t = tenants[i] as LiveTenant;
    const op: Op = n % 3 === 2 ? 'write' : 'read';
    const result = op === 'read'
      ? await tenantQuery(rt.url, t, 'SELECT tenant AS owner FROM items ORDER BY id LIMIT 1', [], 10_000)
      : await tenantQuery(rt.url, t, 'INSERT INTO items (tenant) VALUES ($1) RETURNING tenant AS owner', [t.slug], 10_000);
    if (result.status === 200 && result.body?.rows?.[0]?.owner !== t.slug) result.code = 'WRONG_TENANT';
    return { tenant: i, op, result };
  };

  /** Closed-loop load over `active()` tenants (re-read each step, so a tenant can join mid-run). */
  const load = (durationMs: number, active: () => number[], signal?: { stopped: boolean }) => {
    let n = 0;
    const t0 = performance.now();
    const run = runLoad({
      clients: CLIENTS, durationMs, signal,
      step: (client) => {
        const list = active();
        const i = list[(client + n++) % list.length] as number;
        return step(i, n);
      },
    });
    return { t0, run };
  };

  const perTenant = (samples: Sample[], durationMs: number) => tenants.map((t, i) => {
    const s = summarize(samples.filter((x) => x.tenant === i), durationMs);
    return { slug: t.slug, requests: s.requests, errors: s.errors, byCode: s.byCode, p99: s.p99, max: s.max };
  });

  beforeAll(async () => {
    stack = await ReliabilityStack.create('reldep');
    cp = await stack.controlPlane({ LOG_LEVEL: 'warn' });
    await cp.start();
    const provisionStart = Date.now();
    tenants = await provisionTenants(stack, cp.url, ['dep-a', 'dep-b', 'dep-c', 'dep-d'].map((slug) => ({ slug })));
    figures.provisionMs = Date.now() - provisionStart;
    // The closed loop runs as fast as the runtime answers (280+ req/s per tenant here): the starter
    // tier's 200 req/s limit is lifted so every error counted is a fault's, not a 429.
    tiers = writeTiersFile('reldep-rt', { starter: { rateLimitPerSecond: 1_000_000, rateLimitBurst: 1_000_000 } });
    rt = await stack.runtime({ RUNTIME_MAX_CONNECTIONS: '16', RUNTIME_CONNECT_TIMEOUT_MS: '2000', TIERS_FILE: tiers });
    await rt.start();
    for (const t of tenants) {
      expect((await tenantQuery(rt.url, t, 'CREATE TABLE items (id bigserial PRIMARY KEY, tenant text NOT NULL)')).status).toBe(200);
      expect((await tenantQuery(rt.url, t, 'INSERT INTO items (tenant) VALUES ($1)', [t.slug])).status).toBe(200);
    }
    figures.tenants = tenants.length;
    figures.clients = CLIENTS;
    figures.phaseMs = PHASE_MS;
  });

  afterAll(async () => {
    publish();
    await stack?.cleanup();
    if (tiers) rmSync(tiers, { force: true });
  });

  it('(a) keeps serving known and new tenants with zero errors while Redis is killed and restarted, and invalidations work again afterwards', async () => {
    const ready = () => httpCall(rt.url, '/health/ready');
    const cpReady = () => httpCall(cp.url, '/health/ready');
    // Keys only the probes below use: one revoked during the outage, one after Redis is back.
    const [during, after] = [await issueApiKey(stack, cp.url, (tenants[1] as LiveTenant).id), await issueApiKey(stack, cp.url, (tenants[2] as LiveTenant).id)];
    const probe = (i: number, key: string) => tenantQuery(rt.url, { slug: (tenants[i] as LiveTenant).slug, key }, 'SELECT 1 AS one');
    expect((await probe(1, during.key)).status).toBe(200);
    expect((await probe(2, after.key)).status).toBe(200);

    // dep-d is never requested before the outage: it must be found without Redis.
    let late = false;
    const { run } = load(PHASE_MS, () => (late ? [0, 1, 2, 3] : [0, 1, 2]));
    await sleep(PHASE_MS * 0.2);
    const killedAt = Date.now();
    await stack.redis.kill();
    late = true;
    const degraded = await until(ready, (r) => r.body?.checks?.cache === 'down', 5_000, 50);
    expect(degraded.value.status).toBe(200); // degraded, still in rotation
    // With the bus down, entries live only RUNTIME_DEGRADED_TTL_MS (500 ms): a revocation still lands.
    const revokedAt = Date.now();
    expect((await stack.api(cp.url, 'DELETE', `/v1/tenants/${(tenants[1] as LiveTenant).id}/api-keys/${during.id}`)).status).toBe(200);
    const refusedDuring = await until(() => probe(1, during.key), (r) => r.status === 401, INVALIDATION_BOUND_MS);
    const revokeDuringMs = Date.now() - revokedAt;
    await sleep(Math.max(0, killedAt + PHASE_MS * 0.4 - Date.now()));
    const restartedAt = Date.now();
    await stack.redis.start();
    const back = await until(ready, (r) => r.body?.status === 'ready' && r.body?.checks?.invalidations === 'up', 10_000, 50);
    const cpBack = await until(cpReady, (r) => r.status === 200 && r.body?.checks?.cache === 'up', 10_000, 50);
    const busBackMs = Date.now() - restartedAt;
    const { samples, durationMs } = await run;

    // After Redis is back, an invalidation reaches the runtime over pub/sub (the key was cached for
    // RUNTIME_DIRECTORY_TTL_MS = 30 s, so only the bus can make the revocation land this fast).
    expect((await probe(2, after.key)).status).toBe(200);
    const revokedAfterAt = Date.now();
    expect((await stack.api(cp.url, 'DELETE', `/v1/tenants/${(tenants[2] as LiveTenant).id}/api-keys/${after.id}`)).status).toBe(200);
    const refusedAfter = await until(() => probe(2, after.key), (r) => r.status === 401, INVALIDATION_BOUND_MS, 10);
    const revokeAfterMs = Date.now() - revokedAfterAt;
    // Same for a tenant status change: suspend dep-d, then resume it.
    const d = tenants[3] as LiveTenant;
    const suspendAt = Date.now();
    expect((await stack.api(cp.url, 'POST', `/v1/tenants/${d.id}/suspend`, { reason: 'reliability' })).status).toBe(200);
    const suspended = await until(() => tenantQuery(rt.url, d, 'SELECT 1'), (r) => r.status === 403 && r.code === 'TENANT_SUSPENDED', INVALIDATION_BOUND_MS, 10);
    const suspendMs = Date.now() - suspendAt;
    const resumeAt = Date.now();
    expect((await stack.api(cp.url, 'POST', `/v1/tenants/${d.id}/resume`)).status).toBe(200);
    const resumed = await until(() => tenantQuery(rt.url, d, 'SELECT 1'), (r) => r.status === 200, INVALIDATION_BOUND_MS, 10);
    const resumeMs = Date.now() - resumeAt;

    const total = summarize(samples, durationMs);
    figures.redis = {
      faultsInjected: 1, outageMs: restartedAt - killedAt, requests: total.requests, errors: total.errors, errorRate: total.errorRate,
      rps: total.rps, p50: total.p50, p99: total.p99, max: total.max, perTenant: perTenant(samples, durationMs),
      busBackAfterRestartMs: busBackMs, revokeDuringOutageMs: revokeDuringMs, revokeAfterRestartMs: revokeAfterMs, suspendMs, resumeMs,
    };
    publish();

    expect(degraded.ok).toBe(true);
    expect(back.ok).toBe(true);
    expect(cpBack.ok).toBe(true);
    expect(total.byCode).toEqual({});
    expect(total.errors).toBe(0);
    expect(samples.filter((s) => s.tenant === 3).length).toBeGreaterThan(0); // the late tenant was served during the outage
    expect(refusedDuring.ok).toBe(true);
    expect(refusedAfter.ok).toBe(true);
    expect(suspended.ok).toBe(true);
    expect(resumed.ok).toBe(true);
  });

  it('(b) recovers a tenant\'s pool after its Postgres backends are terminated, repeatedly, without touching other tenants', async () => {
    const victim = 0;
    const v = tenants[victim] as LiveTenant;
    const kills: Array<{ at: number; terminated: number }> = [];
    const { t0, run } = load(PHASE_MS, () => [0, 1, 2, 3]);
    await sleep(PHASE_MS * 0.15);
    const faultEnd = t0 + PHASE_MS * 0.75;
    while (performance.now() < faultEnd) {
      const at = performance.now() - t0;
      const [row] = await adminQuery<{ n: number }>(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE usename = $1`, [v.role]);
      kills.push({ at, terminated: row?.n ?? 0 });
      await sleep(PHASE_MS * 0.1);
    }
    const { samples, durationMs } = await run;

    // Recovery: from each kill to the first later request of the victim that succeeded.
    const victimSamples = samples.filter((s) => s.tenant === victim).sort((x, y) => x.at - y.at);
    const recoveries = kills.map((k) => {
      const ok = victimSamples.find((s) => s.at >= k.at && s.code === null);
      return ok ? round(ok.at + ok.ms - k.at) : null;
    });
    const tenantsFig = perTenant(samples, durationMs);
    const victimErrors = victimSamples.filter((s) => s.code !== null);
    // And afterwards: the victim's next 20 requests all succeed.
    const after: number[] = [];
    for (let i = 0; i < 20; i++) after.push((await tenantQuery(rt.url, v, 'SELECT tenant AS owner FROM items ORDER BY id LIMIT 1')).status);
    figures.terminate = {
      faultsInjected: kills.length, backendsTerminated: kills.reduce((n, k) => n + k.terminated, 0), requests: samples.length,
      victimErrors: victimErrors.length, victimErrorCodes: tenantsFig[victim]?.byCode, perTenant: tenantsFig,
      recoveryMs: recoveries, maxRecoveryMs: Math.max(...recoveries.map((r) => r ?? Infinity)),
    };
    publish();

    expect(kills.length).toBeGreaterThanOrEqual(4);
    expect(kills.reduce((n, k) => n + k.terminated, 0)).toBeGreaterThanOrEqual(kills.length); // each kill hit live backends
    tenantsFig.forEach((t, i) => {
      if (i !== victim) expect({ slug: t.slug, errors: t.errors, byCode: t.byCode }).toEqual({ slug: t.slug, errors: 0, byCode: {} });
    });
    // The victim's failures are retryable 503s naming the cause, never a wrong tenant or a hang.
    expect(new Set(victimErrors.map((s) => `${s.status} ${s.code}`))).toEqual(new Set(victimErrors.length ? ['503 TENANT_UNAVAILABLE'] : []));
    expect(Math.max(...victimSamples.map((s) => s.ms))).toBeLessThan(RECOVERY_BOUND_MS);
    for (const r of recoveries) {
      expect(r).not.toBeNull();
      expect(r as number).toBeLessThan(RECOVERY_BOUND_MS);
    }
    expect(after.every((s) => s === 200)).toBe(true);
  });

  it('(c) confines an unavailable tenant database to that tenant: fast 503s for it, zero errors for the others, recovery when restored', async () => {
    const victim = 1;
    const v = tenants[victim] as LiveTenant;
    const { t0, run } = load(PHASE_MS, () => [0, 1, 2, 3]);
    await sleep(PHASE_MS * 0.2);
    await adminQuery(`ALTER DATABASE "${v.database}" ALLOW_CONNECTIONS false`);
    // Sessions opened before the ALTER keep working until terminated: end them all (a few rounds at most).
    const closed = await until(() => adminQuery<{ n: number }>(`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1`, [v.database]), (r) => r[0]?.n === 0, 5_000, 20);
    expect(closed.ok).toBe(true);
    const downAt = performance.now() - t0;
    await sleep(PHASE_MS * 0.4);
    const upAt = performance.now() - t0;
    await adminQuery(`ALTER DATABASE "${v.database}" ALLOW_CONNECTIONS true`);
    const { samples, durationMs } = await run;

    const tenantsFig = perTenant(samples, durationMs);
    const victimSamples = samples.filter((s) => s.tenant === victim).sort((x, y) => x.at - y.at);
    // Requests that started once the database was closed and its sessions gone, and ended before it reopened.
    const duringOutage = victimSamples.filter((s) => s.at >= downAt && s.at + s.ms <= upAt);
    const firstOk = victimSamples.find((s) => s.at >= upAt && s.code === null);
    const recoveryMs = firstOk ? round(firstOk.at + firstOk.ms - upAt) : null;
    const victimErrors = victimSamples.filter((s) => s.code !== null);
    figures.unavailableDatabase = {
      faultsInjected: 1, outageMs: round(upAt - downAt), requests: samples.length, perTenant: tenantsFig,
      victimRequestsDuringOutage: duringOutage.length, victimErrors: victimErrors.length, victimErrorCodes: tenantsFig[victim]?.byCode,
      victimMaxLatencyMs: round(Math.max(...victimSamples.map((s) => s.ms))), recoveryMs,
    };
    publish();

    tenantsFig.forEach((t, i) => {
      if (i !== victim) expect({ slug: t.slug, errors: t.errors, byCode: t.byCode }).toEqual({ slug: t.slug, errors: 0, byCode: {} });
    });
    expect(duringOutage.length).toBeGreaterThan(5);
    expect(duringOutage.every((s) => s.status === 503 && s.code === 'TENANT_UNAVAILABLE')).toBe(true);
    expect(new Set(victimErrors.map((s) => `${s.status} ${s.code}`))).toEqual(new Set(['503 TENANT_UNAVAILABLE']));
    expect(Math.max(...victimSamples.map((s) => s.ms))).toBeLessThan(RECOVERY_BOUND_MS); // no hang
    expect(recoveryMs).not.toBeNull();
    expect(recoveryMs as number).toBeLessThan(RECOVERY_BOUND_MS);
  });
});
