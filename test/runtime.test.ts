import { randomBytes } from 'node:crypto';
import { neon, neonConfig } from '@neondatabase/serverless';
import { eq, gt } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/neon-http';
import { integer, pgTable, serial, text } from 'drizzle-orm/pg-core';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { LocalSecretStore } from '../provisioning/secrets/local-secret-store';
import { DEFAULT_TIERS } from '../provisioning/tiers';
import { decodeKey } from '../common/config-schema';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { testRedisUrl } from './support/env';
import { adminQuery } from './support/test-db';
import { call, CallResult, connectionsByRole, createTenants, issueKey, SeededTenant, startTestRuntime, waitFor } from './support/runtime-fixtures';

/** Runtime-only tier settings: `pro` is slow to time out, `enterprise` is rate limited hard. */
const TIERS = {
  pro: { ...DEFAULT_TIERS.pro, statementTimeoutMs: 300, connectionLimit: 1 },
  enterprise: { ...DEFAULT_TIERS.enterprise, rateLimitPerSecond: 2, rateLimitBurst: 3 },
};
const ENV = { RUNTIME_ACQUIRE_TIMEOUT_MS: '150', RUNTIME_MAX_RESULT_ROWS: '1000', RUNTIME_MAX_RESULT_BYTES: '1000000', RUNTIME_MAX_BODY_BYTES: '65536' };

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
const withoutRequestId = (r: CallResult) => ({ status: r.status, code: r.body.error?.code, message: r.body.error?.message, auth: r.headers['www-authenticate'], keys: Object.keys(r.body.error ?? {}).sort() });

describe('tenant runtime', () => {
  let cp: TestControlPlane;
  let rt: RunningTenantRuntime;
  let rt2: RunningTenantRuntime;
  let acme: SeededTenant, globex: SeededTenant, slowco: SeededTenant, busyco: SeededTenant;
  let keyAcme: string, keyGlobex: string, keySlow: string, keyBusy: string;
  const q = (tenantHost: string, key: string | null, body: unknown, url = rt.url) => call(url, '/v1/query', { host: `${tenantHost}.localhost:4000`, key, body });

  beforeAll(async () => {
    cp = await startTestControlPlane();
    [acme, globex, slowco, busyco] = await createTenants(cp, [{ slug: 'acme' }, { slug: 'globex' }, { slug: 'slowco', tier: 'pro' }, { slug: 'busyco', tier: 'enterprise' }]);
    [keyAcme, keyGlobex, keySlow, keyBusy] = await Promise.all([acme, globex, slowco, busyco].map(async (t) => (await issueKey(cp, t)).key));
    rt = await startTestRuntime(cp, ENV, { tiers: TIERS });
    rt2 = await startTestRuntime(cp, ENV, { tiers: TIERS });
  });
  afterAll(async () => {
    await rt?.close();
    await rt2?.close();
    await cp?.close();
  });

  describe('resolution', () => {
    it('routes by subdomain of the base domain, running as the tenant role on its own database', async () => {
      const r = await q('acme', keyAcme, { sql: 'SELECT current_user AS u, current_database() AS d, 1 + $1::int AS n', params: [41] });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ fields: [{ name: 'u', dataTypeID: 19 }, { name: 'd', dataTypeID: 19 }, { name: 'n', dataTypeID: 23 }], rows: [{ u: acme.role, d: acme.role, n: 42 }], rowCount: 1, command: 'SELECT' });
      expect(r.headers['x-request-id']).toBeTruthy();
    });

    it('routes by /tenants/<slug>/ path for clients that cannot set a host', async () => {
      const r = await call(rt.url, '/tenants/globex/v1/query', { key: keyGlobex, body: { sql: 'SELECT current_user AS u' } });
      expect(r.status).toBe(200);
      expect(r.body.rows).toEqual([{ u: globex.role }]);
    });

    it('routes a custom domain mapped in the directory', async () => {
      expect((await cp.api('PATCH', `/v1/tenants/${acme.id}`, { customDomain: 'db.acme-corp.test' })).status).toBe(200);
      const r = await call(rt.url, '/v1/query', { host: 'db.acme-corp.test', key: keyAcme, body: { sql: 'SELECT current_user AS u' } });
      expect(r.status).toBe(200);
      expect(r.body.rows).toEqual([{ u: acme.role }]);
      // Another tenant's key on that domain is refused like any bad key.
      expect((await call(rt.url, '/v1/query', { host: 'db.acme-corp.test', key: keyGlobex, body: { sql: 'SELECT 1' } })).status).toBe(401);
    });

    it('answers an unknown slug or domain exactly like a wrong key (401), on every route, so tenant names cannot be enumerated', async () => {
      const wrongKey = withoutRequestId(await q('acme', keyGlobex, { sql: 'SELECT 1' }));
      expect(wrongKey).toEqual({ status: 401, code: 'API_KEY_INVALID', message: 'Missing or invalid API key', auth: 'Bearer', keys: ['code', 'message', 'requestId'] });
      const bogus = `silo_${'0'.repeat(12)}_${'A'.repeat(43)}`;
      for (const r of [
        await q('nosuchco', keyAcme, { sql: 'SELECT 1' }),
        await q('nosuchco', bogus, { sql: 'SELECT 1' }),
        await q('nosuchco', null, { sql: 'SELECT 1' }),
        await call(rt.url, '/tenants/nosuchco/v1/query', { key: keyAcme, body: { sql: 'SELECT 1' } }),
        await call(rt.url, '/tenants/nosuchco/v1/transaction', { key: keyAcme, body: { statements: [{ sql: 'SELECT 1' }] } }),
        await call(rt.url, '/v1/query', { host: 'unknown.example.test', key: keyAcme, body: { sql: 'SELECT 1' } }),
        await q('NOT_a_slug!', keyAcme, { sql: 'SELECT 1' }),
      ]) expect(withoutRequestId(r)).toEqual(wrongKey);
      // /sql (Neon's protocol) answers its own shape, the same for both.
      const neon = (host: string, key: string) => call(rt.url, '/sql', { host: `${host}.localhost`, key, body: { query: 'SELECT 1', params: [] } });
      const [unknownSql, wrongSql] = [await neon('nosuchco', keyAcme), await neon('acme', keyGlobex)];
      const withoutId = (r: CallResult) => JSON.stringify(r.body).replace(/"requestId":"[^"]*"/g, '');
      expect([unknownSql.status, withoutId(unknownSql)]).toEqual([wrongSql.status, withoutId(wrongSql)]);
      expect(unknownSql.status).toBe(401);
    });

    it('answers 404 only to a request that names no tenant at all', async () => {
      const r = await call(rt.url, '/v1/query', { key: keyAcme, body: { sql: 'SELECT 1' } });
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('TENANT_NOT_FOUND');
    });

    it('refuses a host and a path that name different tenants', async () => {
      const r = await call(rt.url, '/tenants/globex/v1/query', { host: 'acme.localhost', key: keyGlobex, body: { sql: 'SELECT 1' } });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_FAILED');
    });
  });

  describe('API keys', () => {
    it('refuses another tenant\'s key exactly like an invalid one, at similar cost', async () => {
      const bogusButWellFormed = `silo_${'0'.repeat(12)}_${'A'.repeat(43)}`;
      const cross = await q('globex', keyAcme, { sql: 'SELECT 1' });
      const refusals = [cross, await q('globex', 'not-a-key', { sql: 'SELECT 1' }), await q('globex', bogusButWellFormed, { sql: 'SELECT 1' }), await q('globex', null, { sql: 'SELECT 1' })];
      for (const r of refusals) expect(withoutRequestId(r)).toEqual(withoutRequestId(cross));
      expect(withoutRequestId(cross)).toEqual({ status: 401, code: 'API_KEY_INVALID', message: 'Missing or invalid API key', auth: 'Bearer', keys: ['code', 'message', 'requestId'] });

      const time = async (key: string) => {
        const t = process.hrtime.bigint();
        await q('globex', key, { sql: 'SELECT 1' });
        return Number(process.hrtime.bigint() - t) / 1e6;
      };
      // Paired and alternated, so a noisy machine slows both sides of a pair alike; the allowance
      // is 1 ms or a fifth of a request, whichever is larger (a lookup on one path only, the oracle
      // this guards against, costs a database round trip: more than that on an idle machine).
      const gaps: number[] = [];
      const all: number[] = [];
      for (let i = 0; i < 40; i++) {
        const [first, second] = i % 2 ? [bogusButWellFormed, keyAcme] : [keyAcme, bogusButWellFormed];
        const a = await time(first);
        const b = await time(second);
        gaps.push(first === keyAcme ? a - b : b - a);
        all.push(a, b);
      }
      expect(Math.abs(median(gaps))).toBeLessThan(Math.max(1, median(all) / 5));
    });

    it('refuses an unknown tenant at the same cost as a known tenant with a wrong key', async () => {
      // Fresh random key prefixes each time: neither side gets a cached key lookup the other lacks.
      const randomKey = () => `silo_${randomBytes(6).toString('hex')}_${'A'.repeat(43)}`;
      const time = async (slug: string) => {
        const t = process.hrtime.bigint();
        const r = await q(slug, randomKey(), { sql: 'SELECT 1' });
        expect(r.status).toBe(401);
        return Number(process.hrtime.bigint() - t) / 1e6;
      };
      const gaps: number[] = [];
      const all: number[] = [];
      for (let i = 0; i < 40; i++) {
        // Alternated order; a new unknown slug each pair, so it never hits the negative cache.
        const ms: Record<string, number> = {};
        for (const which of i % 2 ? ['unknown', 'known'] : ['known', 'unknown']) ms[which] = await time(which === 'known' ? 'globex' : `nosuch${i}`);
        gaps.push(ms.unknown - ms.known);
        all.push(ms.unknown, ms.known);
      }
      expect(Math.abs(median(gaps))).toBeLessThan(Math.max(1, median(all) / 5));
    });

    it('lists keys by prefix and metadata only; the secret exists only in the issue response', async () => {
      const issued = await issueKey(cp, globex, 'ci');
      const list = await cp.api('GET', `/v1/tenants/${globex.id}/api-keys`);
      expect(list.status).toBe(200);
      const item = list.body.items.find((k: { id: string }) => k.id === issued.id);
      expect(item).toMatchObject({ name: 'ci', prefix: issued.prefix, status: 'active' });
      expect(JSON.stringify(list.body)).not.toContain(issued.key.slice('silo_0123456789ab_'.length));
      expect(Object.keys(item)).not.toEqual(expect.arrayContaining(['hash']));
      const [row] = await cp.sql<{ hash: string }>('SELECT hash FROM api_keys WHERE id = $1', [issued.id]);
      expect(row?.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row?.hash).not.toContain(issued.key);
      expect((await cp.api('GET', `/v1/tenants/${globex.id}/api-keys`, undefined, { token: null })).status).toBe(401);
    });

    it('stops a revoked key on a second runtime replica within one second', async () => {
      const { id, key } = await issueKey(cp, acme, 'to-revoke');
      expect((await q('acme', key, { sql: 'SELECT 1' })).status).toBe(200);
      expect((await q('acme', key, { sql: 'SELECT 1' }, rt2.url)).status).toBe(200); // cached on both replicas
      const revokedAt = Date.now();
      expect((await cp.api('DELETE', `/v1/tenants/${acme.id}/api-keys/${id}`)).body.status).toBe('revoked');
      const last = await waitFor(() => q('acme', key, { sql: 'SELECT 1' }, rt2.url), (r) => r.status === 401, 2_000, 10);
      expect(last.status).toBe(401);
      expect(Date.now() - revokedAt).toBeLessThan(1_000);
      expect((await q('acme', key, { sql: 'SELECT 1' })).status).toBe(401);
    });

    it('rotates a key: the new one works, the old one keeps working only for the grace period', async () => {
      const old = await issueKey(cp, globex, 'rotating');
      const rotated = await cp.api('POST', `/v1/tenants/${globex.id}/api-keys/${old.id}/rotate`, { graceSeconds: 1 });
      expect(rotated.status).toBe(201);
      expect(rotated.body).toMatchObject({ name: 'rotating', replaces: old.id });
      expect((await q('globex', rotated.body.key, { sql: 'SELECT 1' })).status).toBe(200);
      expect((await q('globex', old.key, { sql: 'SELECT 1' })).status).toBe(200);
      const expired = await waitFor(() => q('globex', old.key, { sql: 'SELECT 1' }), (r) => r.status === 401, 3_000, 50);
      expect(expired.status).toBe(401);
    });
  });

  describe('tenant state', () => {
    it('refuses a suspended tenant with 403 TENANT_SUSPENDED, and serves it again once resumed', async () => {
      expect((await q('busyco', keyBusy, { sql: 'SELECT 1' })).status).toBe(200);
      expect((await cp.api('POST', `/v1/tenants/${busyco.id}/suspend`, { reason: 'test' })).status).toBe(200);
      for (const url of [rt.url, rt2.url]) {
        const r = await waitFor(() => q('busyco', keyBusy, { sql: 'SELECT 1' }, url), (x) => x.status === 403, 1_000, 10);
        expect(r.body.error).toMatchObject({ code: 'TENANT_SUSPENDED', message: 'Tenant is suspended' });
      }
      // A bad key learns nothing about the suspension.
      expect((await q('busyco', 'wrong', { sql: 'SELECT 1' })).status).toBe(401);
      expect((await cp.api('POST', `/v1/tenants/${busyco.id}/resume`)).status).toBe(200);
      expect((await waitFor(() => q('busyco', keyBusy, { sql: 'SELECT 1' }), (x) => x.status === 200, 1_000, 10)).status).toBe(200);
    });

    it('answers a tenant being offboarded with a final 410 TENANT_OFFBOARDING (not a 503 "retry"), only to a caller with its key', async () => {
      const [leaving] = await createTenants(cp, [{ slug: 'leavingco' }]);
      const { key } = await issueKey(cp, leaving);
      expect((await q('leavingco', key, { sql: 'SELECT 1' })).status).toBe(200);
      // The job worker is off in tests: the tenant stays deprovisioning.
      expect((await cp.api('POST', `/v1/tenants/${leaving.id}/offboard`, { force: true })).body.status).toBe('deprovisioning');
      for (const url of [rt.url, rt2.url]) {
        const r = await waitFor(() => q('leavingco', key, { sql: 'SELECT 1' }, url), (x) => x.status === 410, 1_000, 10);
        expect({ status: r.status, code: r.body.error?.code }).toEqual({ status: 410, code: 'TENANT_OFFBOARDING' });
        expect(r.body.error.message).toMatch(/being offboarded/);
        expect(r.headers['retry-after']).toBeUndefined();
      }
      // A bad key still learns nothing: the same 401 as for an unknown tenant.
      const bad = await q('leavingco', 'wrong', { sql: 'SELECT 1' });
      const unknown = await q('no-such-tenant-here', 'wrong', { sql: 'SELECT 1' });
      expect(withoutRequestId(bad)).toEqual(withoutRequestId(unknown));
      expect(bad.status).toBe(401);
    });

    it('answers 503 TENANT_UNAVAILABLE while a tenant has no database yet', async () => {
      const created = await cp.api('POST', '/v1/tenants', { name: 'Pending', slug: 'pendingco' });
      const key = await issueKey(cp, { id: created.body.id });
      const r = await q('pendingco', key.key, { sql: 'SELECT 1' });
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('TENANT_UNAVAILABLE');
    });

    it('keeps a tenant\'s pool across a change that does not touch its connections (a custom domain), on every replica', async () => {
      const pidOf = async (url: string) => {
        const r = await q('acme', keyAcme, { sql: 'SELECT pg_backend_pid() AS pid' }, url);
        if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
        return r.body.rows[0].pid as number;
      };
      const before = [await pidOf(rt.url), await pidOf(rt2.url)];
      const version = (await cp.api('GET', `/v1/tenants/${acme.id}`)).body.version as number;
      expect((await cp.api('PATCH', `/v1/tenants/${acme.id}`, { customDomain: 'db2.acme-corp.test' })).status).toBe(200);
      // The change was announced (the entry's revision moved on) and each replica read it...
      for (const url of [rt.url, rt2.url]) {
        const viaDomain = await waitFor(() => call(url, '/v1/query', { host: 'db2.acme-corp.test', key: keyAcme, body: { sql: 'SELECT 1' } }), (r) => r.status === 200, 2_000, 20);
        expect(viaDomain.status).toBe(200);
      }
      expect((await cp.api('GET', `/v1/tenants/${acme.id}`)).body.version).toBeGreaterThan(version);
      // ...and both still serve the tenant on the same backends: no retired pool, no second set of connections.
      expect([await pidOf(rt.url), await pidOf(rt2.url)]).toEqual(before);
      expect((await cp.api('PATCH', `/v1/tenants/${acme.id}`, { customDomain: null })).status).toBe(200);
    });

    it('reconnects with the new password after credentials are rotated', async () => {
      const before = await q('globex', keyGlobex, { sql: 'SELECT pg_backend_pid() AS pid' });
      expect((await cp.api('POST', `/v1/tenants/${globex.id}/rotate-credentials`)).status).toBe(202);
      await cp.drainJobs();
      const after = await waitFor(() => q('globex', keyGlobex, { sql: 'SELECT pg_backend_pid() AS pid' }), (r) => r.status === 200 && r.body.rows[0].pid !== before.body.rows[0].pid, 2_000, 20);
      expect(after.status).toBe(200);
      expect(after.body.rows[0].pid).not.toBe(before.body.rows[0].pid);
    });
  });

  describe('queries', () => {
    it('returns JSON-native types parsed and everything else as Postgres text', async () => {
      const r = await q('acme', keyAcme, {
        sql: `SELECT 1::int4 AS i, 2::int8 AS big, 1.5::float8 AS f, 1.50::numeric AS num, true AS b, '{"a":[1]}'::jsonb AS j, ARRAY[1,2]::int[] AS arr,
                     '2024-01-02 03:04:05+00'::timestamptz AS ts, '\\x0102'::bytea AS bin, NULL::text AS nothing, $1::text AS p`,
        params: ['it\'s'],
      });
      expect(r.status).toBe(200);
      expect(r.body.rows[0]).toEqual({ i: 1, big: '2', f: 1.5, num: '1.50', b: true, j: { a: [1] }, arr: [1, 2], ts: expect.stringMatching(/^2024-01-02 0\d:04:05/), bin: '\\x0102', nothing: null, p: "it's" });
    });

    it('keeps each tenant\'s data in its own database', async () => {
      expect((await q('acme', keyAcme, { sql: 'CREATE TABLE secrets (v text); INSERT INTO secrets VALUES (\'acme-only\')' })).body.error?.code).toBe('QUERY_FAILED'); // one statement per call
      expect((await q('acme', keyAcme, { sql: 'CREATE TABLE secrets (v text)' })).status).toBe(200);
      expect((await q('acme', keyAcme, { sql: 'INSERT INTO secrets VALUES ($1)', params: ['acme-only'] })).body).toMatchObject({ rowCount: 1, command: 'INSERT' });
      const fromGlobex = await q('globex', keyGlobex, { sql: 'SELECT * FROM secrets' });
      expect(fromGlobex.status).toBe(400);
      expect(fromGlobex.body.error).toMatchObject({ code: 'QUERY_FAILED', details: { sqlstate: '42P01' } });
      const escalate = await q('globex', keyGlobex, { sql: 'SET ROLE postgres' });
      expect(escalate.body.error?.code).toBe('QUERY_FAILED');
    });

    it('runs a transaction atomically and rolls back on error', async () => {
      await q('acme', keyAcme, { sql: 'CREATE TABLE ledger (id int PRIMARY KEY, amount int)' });
      const ok = await call(rt.url, '/v1/transaction', { host: 'acme.localhost', key: keyAcme, body: { statements: [
        { sql: 'INSERT INTO ledger VALUES ($1, $2)', params: [1, 10] },
        { sql: 'UPDATE ledger SET amount = amount + $1 WHERE id = 1 RETURNING amount', params: [5] },
      ] } });
      expect(ok.status).toBe(200);
      expect(ok.body.results.map((r: { command: string; rowCount: number }) => [r.command, r.rowCount])).toEqual([['INSERT', 1], ['UPDATE', 1]]);
      expect(ok.body.results[1].rows).toEqual([{ amount: 15 }]);

      const failed = await call(rt.url, '/tenants/acme/v1/transaction', { key: keyAcme, body: { statements: [
        { sql: 'INSERT INTO ledger VALUES (2, 20)' },
        { sql: 'INSERT INTO ledger VALUES (1, 99)' },
      ] } });
      expect(failed.status).toBe(400);
      expect(failed.body.error).toMatchObject({ code: 'QUERY_FAILED', details: { sqlstate: '23505', statementIndex: 1 } });
      expect((await q('acme', keyAcme, { sql: 'SELECT id, amount FROM ledger ORDER BY id' })).body.rows).toEqual([{ id: 1, amount: 15 }]);
      // The connection went back clean: a later plain query is not inside an aborted transaction.
      expect((await q('acme', keyAcme, { sql: 'SELECT count(*)::int AS n FROM ledger' })).body.rows).toEqual([{ n: 1 }]);
    });

    it('does not leak a BEGIN or a SET into the next request on the same connection', async () => {
      expect((await q('acme', keyAcme, { sql: 'BEGIN' })).status).toBe(200);
      expect((await q('acme', keyAcme, { sql: "SET application_name = 'hijacked'" })).status).toBe(200);
      const r = await q('acme', keyAcme, { sql: "SELECT current_setting('application_name') AS app" });
      expect(r.body.rows).toEqual([{ app: 'silo-runtime' }]);
      // Outside a transaction block, a savepoint is refused: the leaked BEGIN was rolled back.
      expect((await q('acme', keyAcme, { sql: 'SAVEPOINT s' })).body.error.details.sqlstate).toBe('25P01');
    });

    it('does not leak session state set without a telltale keyword (dynamic SQL, pg_try_advisory_lock) into the next request', async () => {
      const pid = async () => (await q('slowco', keySlow, { sql: 'SELECT pg_backend_pid() AS pid' })).body.rows[0].pid as number;
      // slowco's pool holds one connection: every request below runs on the same server session.
      const before = await pid();
      expect((await q('slowco', keySlow, { sql: `DO $$ BEGIN EXECUTE 'SET search_path TO evil'; END $$` })).status).toBe(200);
      expect((await q('slowco', keySlow, { sql: 'SELECT pg_try_advisory_lock(4242) AS ok' })).body.rows).toEqual([{ ok: true }]);
      const r = await q('slowco', keySlow, { sql: `SELECT current_setting('search_path') AS path, (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks` });
      expect(r.body.rows).toEqual([{ path: '"$user", public', locks: 0 }]);
      expect(await pid()).toBe(before); // the reset cleaned it, not a new connection
    });

    it('answers a retryable 503 TENANT_UNAVAILABLE, not a 400, when the server terminates the session mid-query, then serves again', async () => {
      const slow = q('globex', keyGlobex, { sql: 'SELECT pg_sleep(4)' });
      const running = await waitFor(() => adminQuery<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND query LIKE '%pg_sleep%' AND state = 'active'`, [globex.role]), (r) => r[0]?.n === 1, 3_500, 10);
      expect(running[0]?.n).toBe(1);
      await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [globex.role]);
      const r = await slow;
      expect(r.status).toBe(503);
      expect(r.body.error).toMatchObject({ code: 'TENANT_UNAVAILABLE', details: { sqlstate: '57P01' } });
      expect((await q('globex', keyGlobex, { sql: 'SELECT 1 AS one' })).body.rows).toEqual([{ one: 1 }]);
    });

    it('reports Postgres errors as 400 QUERY_FAILED with the SQLSTATE', async () => {
      const r = await q('acme', keyAcme, { sql: 'SELEC 1' });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'QUERY_FAILED', message: 'syntax error at or near "SELEC"', details: { sqlstate: '42601', position: 1 } });
    });

    it('applies the tier statement timeout: 504 QUERY_TIMEOUT', async () => {
      const t = Date.now();
      const r = await q('slowco', keySlow, { sql: 'SELECT pg_sleep(5)' });
      expect(r.status).toBe(504);
      expect(r.body.error).toMatchObject({ code: 'QUERY_TIMEOUT', details: { timeoutMs: 300 } });
      expect(Date.now() - t).toBeLessThan(2_000);
      // With the setting turned off by the tenant, the client-side backstop (timeout + 1 s) cancels it.
      const t2 = Date.now();
      const off = await call(rt.url, '/v1/transaction', { host: 'slowco.localhost', key: keySlow, body: { statements: [{ sql: 'SET LOCAL statement_timeout = 0' }, { sql: 'SELECT pg_sleep(5)' }] } });
      expect(off.status).toBe(504);
      expect(off.body.error).toMatchObject({ code: 'QUERY_TIMEOUT', details: { statementIndex: 1 } });
      expect(Date.now() - t2).toBeLessThan(3_000);
      expect((await q('slowco', keySlow, { sql: 'SELECT 1 AS ok' })).body.rows).toEqual([{ ok: 1 }]);
    });

    it('answers 503 POOL_EXHAUSTED when no connection frees up within the acquire timeout', async () => {
      // slowco's pool holds one connection (runtime tier override); the acquire timeout is 150 ms.
      const holder = q('slowco', keySlow, { sql: 'SELECT pg_sleep(0.25)' });
      await new Promise((r) => setTimeout(r, 30));
      const starved = await q('slowco', keySlow, { sql: 'SELECT 1' });
      expect(starved.status).toBe(503);
      expect(starved.body.error.code).toBe('POOL_EXHAUSTED');
      expect((await holder).status).toBe(200);
      expect((await q('slowco', keySlow, { sql: 'SELECT 1' })).status).toBe(200);
    });

    it('caps result rows and bytes: 400 RESULT_TOO_LARGE', async () => {
      const rows = await q('acme', keyAcme, { sql: 'SELECT generate_series(1, 100000) AS n' });
      expect(rows.status).toBe(400);
      expect(rows.body.error).toMatchObject({ code: 'RESULT_TOO_LARGE', details: { unit: 'rows', limit: 1000 } });
      const bytes = await q('acme', keyAcme, { sql: "SELECT repeat('x', 600000) FROM generate_series(1, 3)" });
      expect(bytes.body.error).toMatchObject({ code: 'RESULT_TOO_LARGE', details: { unit: 'bytes' } });
      expect((await q('acme', keyAcme, { sql: 'SELECT generate_series(1, 1000) AS n' })).body.rowCount).toBe(1000);
      // The overflow cancels the statement with a CancelRequest on a side socket, which can land
      // after the statement ended, on the connection's next one (a flaky failure here, now and then):
      // the connection that overflowed is retired (its backend ends), and the next request still works.
      // Checked on the server's list of acme's backends, whatever number of idle connections the pool holds.
      const backends = async () => (await adminQuery<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE usename = $1`, [acme.role])).map((r) => r.pid);
      const before = await backends();
      expect(before.length).toBeGreaterThan(0);
      expect((await q('acme', keyAcme, { sql: "SELECT repeat('x', 600000) FROM generate_series(1, 3)" })).body.error.code).toBe('RESULT_TOO_LARGE');
      const after = await waitFor(backends, (pids) => before.some((p) => !pids.includes(p)), 2_000, 20);
      expect(before.filter((p) => !after.includes(p))).toHaveLength(1);
      expect((await q('acme', keyAcme, { sql: 'SELECT 1 AS ok' })).body.rows).toEqual([{ ok: 1 }]);
    });

    it('caps the request body: 413 PAYLOAD_TOO_LARGE', async () => {
      const r = await q('acme', keyAcme, { sql: 'SELECT $1::text', params: ['x'.repeat(70_000)] });
      expect(r.status).toBe(413);
      expect(r.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    });

    it('rejects malformed requests with 400 VALIDATION_FAILED', async () => {
      const host = 'acme.localhost';
      for (const body of [{}, { sql: '' }, { sql: 'SELECT 1', params: 'nope' }, [1]]) {
        expect((await call(rt.url, '/v1/query', { host, key: keyAcme, body })).body.error.code).toBe('VALIDATION_FAILED');
      }
      expect((await call(rt.url, '/v1/query', { host, key: keyAcme, rawBody: '{not json' })).body.error.code).toBe('VALIDATION_FAILED');
      expect((await call(rt.url, '/v1/transaction', { host, key: keyAcme, body: { statements: [] } })).body.error.code).toBe('VALIDATION_FAILED');
      expect((await call(rt.url, '/v1/nope', { host, key: keyAcme, body: {} })).status).toBe(404);
    });

    it('rate limits per tenant from its tier: 429 RATE_LIMITED with Retry-After', async () => {
      const results = [];
      for (let i = 0; i < 6; i++) results.push(await q('busyco', keyBusy, { sql: 'SELECT 1' }));
      const limited = results.find((r) => r.status === 429) as CallResult;
      expect(limited.body.error.code).toBe('RATE_LIMITED');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Other tenants are not affected.
      expect((await q('acme', keyAcme, { sql: 'SELECT 1' })).status).toBe(200);
    });
  });

  describe('@neondatabase/serverless over HTTP (POST /sql)', () => {
    const users = pgTable('users', { id: serial('id').primaryKey(), name: text('name').notNull(), age: integer('age') });
    const connect = (slug: string, key: string) => neon(`postgres://${slug}:${key}@runtime.silo.test/${slug}`);

    beforeAll(() => {
      neonConfig.fetchEndpoint = () => `${rt.url}/sql`;
    });

    it('runs neon() tagged templates and sql.query with typed results', async () => {
      const sql = connect('acme', keyAcme);
      const rows = await sql`SELECT ${41}::int + 1 AS n, ${'it\'s'}::text AS s, '2024-01-02T03:04:05Z'::timestamptz AS ts, '{"a":1}'::jsonb AS j, NULL::int AS z, current_user AS u`;
      expect(rows).toEqual([{ n: 42, s: "it's", ts: new Date('2024-01-02T03:04:05Z'), j: { a: 1 }, z: null, u: acme.role }]);
      const full = await sql.query('SELECT $1::int AS n', [7], { fullResults: true, arrayMode: true });
      expect(full).toMatchObject({ rows: [[7]], rowCount: 1, command: 'SELECT', fields: [expect.objectContaining({ name: 'n', dataTypeID: 23 })] });
    });

    it('runs sql.transaction() atomically as a batch', async () => {
      const sql = connect('acme', keyAcme);
      const [, inserted, counted] = await sql.transaction([
        sql`CREATE TABLE neon_items (id int PRIMARY KEY)`,
        sql`INSERT INTO neon_items VALUES (1), (2) RETURNING id`,
        sql`SELECT count(*)::int AS n FROM neon_items`,
      ], { isolationLevel: 'Serializable' });
      expect(inserted).toEqual([{ id: 1 }, { id: 2 }]);
      expect(counted).toEqual([{ n: 2 }]);
      await expect(sql.transaction([sql`INSERT INTO neon_items VALUES (3)`, sql`INSERT INTO neon_items VALUES (1)`])).rejects.toMatchObject({ name: 'NeonDbError', code: '23505' });
      expect(await sql`SELECT count(*)::int AS n FROM neon_items`).toEqual([{ n: 2 }]);
    });

    it('surfaces Postgres errors as NeonDbError with the SQLSTATE, and refuses a bad key', async () => {
      const sql = connect('acme', keyAcme);
      await expect(sql`SELEC 1`).rejects.toMatchObject({ name: 'NeonDbError', code: '42601', position: '1' });
      await expect(connect('acme', keyGlobex)`SELECT 1`).rejects.toThrow(/HTTP status 401.*API_KEY_INVALID/);
      await expect(connect('nosuchco', keyAcme)`SELECT 1`).rejects.toThrow(/HTTP status 401.*API_KEY_INVALID/);
    });

    it('works unchanged with drizzle-orm/neon-http (select, insert, returning, batch)', async () => {
      const sql = connect('globex', keyGlobex);
      await sql`CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, age int)`;
      const db = drizzle({ client: sql });
      await db.insert(users).values([{ name: 'ada', age: 36 }, { name: 'alan', age: 41 }]);
      expect(await db.select().from(users).where(eq(users.name, 'ada'))).toEqual([{ id: 1, name: 'ada', age: 36 }]);
      expect(await db.insert(users).values({ name: 'grace' }).returning({ id: users.id, age: users.age })).toEqual([{ id: 3, age: null }]);
      const [, older] = await db.batch([db.update(users).set({ age: 37 }).where(eq(users.id, 1)), db.select({ name: users.name }).from(users).where(gt(users.age, 36)).orderBy(users.id)]);
      expect(older).toEqual([{ name: 'ada' }, { name: 'alan' }]);
      // Tenants stay apart through the driver too.
      await expect(connect('acme', keyAcme)`SELECT * FROM users`).rejects.toMatchObject({ code: '42P01' });
    });
  });

  describe('operations', () => {
    it('serves liveness, readiness (control DB and Redis) and per-tenant metrics, the metrics only on the internal listener', async () => {
      for (const url of [rt.url, rt.metricsUrl]) {
        expect((await call(url, '/health/live')).body).toEqual({ status: 'ok' });
        const ready = await call(url, '/health/ready');
        expect(ready.status).toBe(200);
        expect(ready.body).toEqual({ status: 'ready', checks: { database: 'up', cache: 'up', invalidations: 'up' } });
      }
      expect(new URL(rt.metricsUrl).port).not.toBe(new URL(rt.url).port);
      const onPublic = await call(rt.url, '/metrics');
      expect([onPublic.status, onPublic.body.error?.code]).toEqual([404, 'NOT_FOUND']);
      expect((await call(rt.metricsUrl, '/v1/query', { host: 'acme.localhost', key: keyAcme, body: { sql: 'SELECT 1' } })).status).toBe(404);
      // Refusals before the key is checked are not the tenant's: anonymous traffic cannot move its counters.
      for (let i = 0; i < 3; i++) expect((await q('globex', 'wrong', { sql: 'SELECT 1' })).status).toBe(401);
      const metrics = await call(rt.metricsUrl, '/metrics');
      expect(metrics.body).toMatch(/silo_runtime_requests_total\{tenant="acme",route="query",status="200"/);
      expect(metrics.body).toMatch(/silo_runtime_errors_total\{tenant="_none",code="API_KEY_INVALID"[^}]*\} [1-9]/);
      expect(metrics.body).not.toMatch(/silo_runtime_errors_total\{tenant="globex",code="API_KEY_INVALID"/);
      expect(metrics.body).toMatch(/silo_runtime_request_duration_seconds_bucket\{le="0.005",service="tenant-runtime",tenant="acme",route="query"\} \d+/);
      expect(metrics.body).toMatch(/silo_runtime_pool_connections\{tenant="acme",state="idle"/);
      expect(metrics.body).toMatch(/silo_runtime_connections\{service="tenant-runtime"\} \d+/);
      // Where requests got their connection: new ones for first requests, the idle stack after that.
      expect(metrics.body).toMatch(/silo_runtime_pool_wait_seconds_count\{service="tenant-runtime",via="connect"\} [1-9]/);
      expect(metrics.body).toMatch(/silo_runtime_pool_wait_seconds_count\{service="tenant-runtime",via="idle"\} [1-9]/);
    });

    it('never writes a tenant password to Redis', async () => {
      const pool = new Pool({ connectionString: cp.db.url, max: 1 });
      const store = new LocalSecretStore(pool, decodeKey(cp.config.SILO_MASTER_KEY as string) as Buffer);
      const [conn] = await cp.sql<{ secret_ref: string }>('SELECT secret_ref FROM tenant_connections WHERE tenant_id = $1', [acme.id]);
      const { password } = await store.get(conn?.secret_ref as string);
      await pool.end();
      const redis = new Redis(testRedisUrl());
      try {
        const keys = await redis.keys(`${cp.kvPrefix}*`);
        expect(keys.length).toBeGreaterThan(0);
        for (const k of keys) {
          const v = (await redis.type(k)) === 'string' ? await redis.get(k) : '';
          expect(v).not.toContain(password);
          expect(v).not.toMatch(/password/i);
        }
      } finally {
        redis.disconnect();
      }
    });

    it('drains in-flight requests on shutdown, then closes its connections', async () => {
      const before = (await connectionsByRole([acme.role]))[acme.role] as number;
      const rt3 = await startTestRuntime(cp, ENV, { tiers: TIERS });
      expect((await q('acme', keyAcme, { sql: 'SELECT 1' }, rt3.url)).status).toBe(200);
      expect((await connectionsByRole([acme.role]))[acme.role]).toBe(before + 1);
      const slow = q('acme', keyAcme, { sql: 'SELECT pg_sleep(0.3), 1 AS done' }, rt3.url);
      await new Promise((r) => setTimeout(r, 50));
      const closing = rt3.close();
      const r = await slow;
      expect(r.status).toBe(200);
      expect(r.body.rows[0].done).toBe(1);
      await closing;
      expect(rt3.stats().connections).toBe(0);
      await expect(call(rt3.url, '/health/live')).rejects.toThrow();
      const left = await waitFor(() => connectionsByRole([acme.role]), (c) => c[acme.role] === before, 2_000);
      expect(left[acme.role]).toBe(before);
    });
  });
});
