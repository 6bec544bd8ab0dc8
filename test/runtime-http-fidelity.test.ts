import { neon, neonConfig, NeonDbError } from '@neondatabase/serverless';
import { Client, DatabaseError } from 'pg';
import { DEFAULT_TIERS } from '../provisioning/tiers';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { PG_FIELDS } from '../tenant-runtime/query-executor';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { testDatabaseUrl, withDatabase } from './support/env';
import { adminQuery } from './support/test-db';
import { httpCall } from './support/http-call';
import { call, CallResult, createTenants, issueKey, SeededTenant, startTestRuntime, waitFor } from './support/runtime-fixtures';

/**
 * The HTTP API says what PostgreSQL said (issue #17 item 2), checked with raw requests and with the
 * real `@neondatabase/serverless` driver: a client's own protocol mistake is its 400 and keeps the
 * backend, a cancel that is not the tier's timeout keeps PostgreSQL's message, an empty Neon batch
 * is an empty result, and error bodies carry every field of the server's ErrorResponse.
 */
// `pro` here: one connection (so "same backend" is checkable by pid) and a 1 s statement timeout.
const TIMEOUT_MS = 1_000;
const TIERS = { pro: { ...DEFAULT_TIERS.pro, statementTimeoutMs: TIMEOUT_MS, connectionLimit: 1 } };

describe('runtime: HTTP fidelity to PostgreSQL', () => {
  let cp: TestControlPlane;
  let rt: RunningTenantRuntime;
  let solo: SeededTenant, wide: SeededTenant;
  let keySolo: string, keyWide: string;
  const q = (slug: string, key: string, body: unknown): Promise<CallResult> => call(rt.url, '/v1/query', { host: `${slug}.localhost`, key, body });
  const tx = (slug: string, key: string, statements: unknown[]): Promise<CallResult> => call(rt.url, '/v1/transaction', { host: `${slug}.localhost`, key, body: { statements } });
  const neonRaw = (slug: string, key: string, body: unknown): Promise<CallResult> =>
    call(rt.url, '/sql', { headers: { 'neon-connection-string': `postgres://${slug}:${encodeURIComponent(key)}@runtime.silo.test/${slug}` }, body });
  const driver = (slug: string, key: string) => neon(`postgres://${slug}:${key}@runtime.silo.test/${slug}`);
  const soloPid = async (): Promise<number> => (await q('solo', keySolo, { sql: 'SELECT pg_backend_pid() AS pid' })).body.rows[0].pid;
  /** What the server itself reports for `sql` on the tenant's database (a direct connection, no runtime in between). */
  const direct = async (tenant: SeededTenant, sql: string, params: unknown[] = []): Promise<Record<string, unknown>> => {
    const c = new Client({ connectionString: withDatabase(testDatabaseUrl(), tenant.role) });
    await c.connect();
    try {
      // The extended protocol, like the runtime's.
      await c.query({ text: sql, values: params, queryMode: 'extended' } as never);
    } catch (err) {
      if (!(err instanceof DatabaseError)) throw err;
      const e = err as DatabaseError & Record<string, unknown>;
      return { message: err.message, ...Object.fromEntries(PG_FIELDS.filter((k) => e[k] !== undefined).map((k) => [k, e[k]])) };
    } finally {
      await c.end();
    }
    throw new Error(`expected ${sql} to fail`);
  };
  const noInternals = (r: CallResult) => {
    const text = JSON.stringify(r.body);
    expect(text).not.toMatch(/"stack"|node_modules|\.ts:\d|\.js:\d|\n\s+at /);
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    [solo, wide] = await createTenants(cp, [{ slug: 'solo', tier: 'pro' }, { slug: 'wide' }]);
    [keySolo, keyWide] = await Promise.all([solo, wide].map(async (t) => (await issueKey(cp, t)).key));
    rt = await startTestRuntime(cp, {}, { tiers: TIERS });
    neonConfig.fetchEndpoint = () => `${rt.url}/sql`;
  });
  afterAll(async () => {
    await rt?.close();
    await cp?.close();
  });

  describe("a client's protocol mistake (08P01 at ERROR)", () => {
    const BIND = 'bind message supplies 1 parameters, but prepared statement "" requires 2';

    it('is a 400 QUERY_FAILED with PostgreSQL\'s message on /v1/query, and the backend is kept', async () => {
      const before = await soloPid();
      const r = await q('solo', keySolo, { sql: 'SELECT $1::int + $2::int AS n', params: [1] });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'QUERY_FAILED', message: BIND, details: { sqlstate: '08P01', severity: 'ERROR' } });
      expect(r.headers['retry-after']).toBeUndefined();
      // Same backend: the one connection of this tier was not discarded, and it is clean.
      expect(await soloPid()).toBe(before);
      expect((await q('solo', keySolo, { sql: 'SELECT $1::int + $2::int AS n', params: [1, 2] })).body.rows).toEqual([{ n: 3 }]);
    });

    it('is a 400 naming the statement in a /v1/transaction, rolled back, on the same backend', async () => {
      await q('solo', keySolo, { sql: 'CREATE TABLE IF NOT EXISTS marks (n int)' });
      const before = await soloPid();
      const r = await tx('solo', keySolo, [{ sql: 'INSERT INTO marks VALUES (1)' }, { sql: 'INSERT INTO marks VALUES ($1), ($2)', params: [2] }]);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'QUERY_FAILED', message: BIND, details: { sqlstate: '08P01', statementIndex: 1 } });
      expect((await q('solo', keySolo, { sql: 'SELECT count(*)::int AS n FROM marks' })).body.rows).toEqual([{ n: 0 }]);
      expect(await soloPid()).toBe(before);
    });

    it('is a NeonDbError with code 08P01 through the neon driver, on the same backend', async () => {
      const sql = driver('solo', keySolo);
      const before = await soloPid();
      const err = await sql.query('SELECT $1::int + $2::int AS n', [1]).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(NeonDbError);
      expect(err).toMatchObject({ message: BIND, code: '08P01', severity: 'ERROR' });
      expect(await soloPid()).toBe(before);
    });

    it('is judged by severity, not SQLSTATE: a tenant RAISEing 57P01 or 08006 at ERROR gets its 400 on the same backend; 53/XX errors retire it', async () => {
      const raise = (code: string) => q('solo', keySolo, { sql: `DO $$ BEGIN RAISE EXCEPTION 'raised %', '${code}' USING ERRCODE = '${code}'; END $$` });
      for (const code of ['57P01', '08006', '57014']) {
        const before = await soloPid();
        const r = await raise(code);
        expect([r.status, r.body.error.code, r.body.error.message, r.body.error.details.sqlstate, r.body.error.details.severity]).toEqual([400, 'QUERY_FAILED', `raised ${code}`, code, 'ERROR']);
        expect(await soloPid()).toBe(before);
      }
      for (const code of ['53200', 'XX000']) {
        const before = await soloPid();
        const r = await raise(code);
        expect([r.status, r.body.error.code, r.body.error.details.sqlstate]).toEqual([400, 'QUERY_FAILED', code]);
        expect(await soloPid()).not.toBe(before);
      }
    });

    it('a genuine session loss still answers a retryable 503 and the backend is replaced', async () => {
      const before = await soloPid();
      const slow = q('solo', keySolo, { sql: 'SELECT pg_sleep(0.9)' });
      await waitFor(() => adminQuery<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [before]), (r) => r[0]?.n === 1, 800, 10);
      await adminQuery('SELECT pg_terminate_backend($1)', [before]);
      const r = await slow;
      expect(r.status).toBe(503);
      expect(r.body.error).toMatchObject({ code: 'TENANT_UNAVAILABLE', details: { sqlstate: '57P01', severity: 'FATAL' } });
      expect(await soloPid()).not.toBe(before);
    });
  });

  describe('57014 that is not the tier\'s timeout', () => {
    it('SET LOCAL statement_timeout below the tier\'s keeps PostgreSQL\'s message (400 QUERY_FAILED, 57014)', async () => {
      const r = await tx('solo', keySolo, [{ sql: 'SET LOCAL statement_timeout = 50' }, { sql: 'SELECT pg_sleep(0.5)' }]);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'QUERY_FAILED', message: 'canceling statement due to statement timeout', details: { sqlstate: '57014', statementIndex: 1 } });
      expect(r.body.error.details.timeoutMs).toBeUndefined();
    });

    it('the same through the neon driver: NeonDbError with PostgreSQL\'s message', async () => {
      const sql = driver('solo', keySolo);
      await expect(sql.transaction([sql`SET LOCAL statement_timeout = 50`, sql`SELECT pg_sleep(0.5)`]))
        .rejects.toMatchObject({ name: 'NeonDbError', code: '57014', message: 'canceling statement due to statement timeout' });
    });

    it('a cancel the tenant sent itself (pg_cancel_backend on its own backend) keeps PostgreSQL\'s message', async () => {
      const slow = q('wide', keyWide, { sql: 'SELECT pg_sleep(3) AS slept' });
      const running = await waitFor(() => adminQuery<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE usename = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep(3)%'`, [wide.role]), (r) => r.length === 1, 2_000, 10);
      expect(running).toHaveLength(1);
      const cancel = await q('wide', keyWide, { sql: 'SELECT pg_cancel_backend($1) AS ok', params: [running[0]?.pid] });
      expect(cancel.body.rows).toEqual([{ ok: true }]);
      const r = await slow;
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'QUERY_FAILED', message: 'canceling statement due to user request', details: { sqlstate: '57014' } });
    });

    it('COPY FROM STDIN (no stream over HTTP) says so, not a timeout', async () => {
      await q('wide', keyWide, { sql: 'CREATE TABLE IF NOT EXISTS copied (n int)' });
      const r = await q('wide', keyWide, { sql: 'COPY copied FROM STDIN' });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('QUERY_FAILED');
      expect(r.body.error.details.sqlstate).toBe('57014');
      expect(r.body.error.message).toMatch(/^COPY from stdin failed/);
    });

    it('the tier\'s own statement timeout is still 504 QUERY_TIMEOUT (and 57014 with Silo\'s message through the driver)', async () => {
      const t = Date.now();
      const r = await q('solo', keySolo, { sql: 'SELECT pg_sleep(3)' });
      expect(r.status).toBe(504);
      expect(r.body.error).toMatchObject({ code: 'QUERY_TIMEOUT', message: `Query exceeded the ${TIMEOUT_MS} ms statement timeout`, details: { sqlstate: '57014', timeoutMs: TIMEOUT_MS } });
      expect(Date.now() - t).toBeLessThan(TIMEOUT_MS + 1_500);
      await expect(driver('solo', keySolo)`SELECT pg_sleep(3)`).rejects.toMatchObject({ name: 'NeonDbError', code: '57014', message: `Query exceeded the ${TIMEOUT_MS} ms statement timeout` });
      // A tenant timeout above the tier's does not escape it either (the server's cancel comes after the tier's time).
      const higher = await tx('solo', keySolo, [{ sql: `SET LOCAL statement_timeout = ${TIMEOUT_MS + 100}` }, { sql: 'SELECT pg_sleep(3)' }]);
      expect([higher.status, higher.body.error.code]).toEqual([504, 'QUERY_TIMEOUT']);
    });
  });

  describe('an empty Neon batch', () => {
    it('answers {results: []} like Neon, raw and through sql.transaction([])', async () => {
      const raw = await neonRaw('wide', keyWide, { queries: [] });
      expect([raw.status, raw.body]).toEqual([200, { results: [] }]);
      expect(await driver('wide', keyWide).transaction([])).toEqual([]);
      expect(await driver('wide', keyWide).transaction([], { isolationLevel: 'Serializable', readOnly: true })).toEqual([]);
    });

    it('is still refused with a wrong key', async () => {
      expect((await neonRaw('wide', keySolo, { queries: [] })).status).toBe(401);
    });
  });

  describe('every PostgreSQL error field', () => {
    beforeAll(async () => {
      for (const sql of [
        'CREATE DOMAIN posint AS int CONSTRAINT posint_check CHECK (VALUE > 0)',
        'CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, age posint)',
        `CREATE FUNCTION explain_failure() RETURNS void LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused' USING DETAIL = 'a detail', HINT = 'a hint', ERRCODE = 'P0001'; END $$`,
      ]) expect((await q('wide', keyWide, { sql })).status).toBe(200);
    });

    const CASES: Array<{ name: string; sql: string; params?: unknown[]; has: string[] }> = [
      { name: 'syntax error (position)', sql: 'SELECT 1 FROM WHERE', has: ['position', 'file', 'line', 'routine'] },
      { name: 'not-null violation (schema, table, column)', sql: 'INSERT INTO people (id, name) VALUES (1, NULL)', has: ['schema', 'table', 'column', 'detail'] },
      { name: 'domain check (dataType, constraint)', sql: 'SELECT $1::posint', params: [-1], has: ['schema', 'dataType', 'constraint'] },
      { name: 'PL/pgSQL (internalQuery, internalPosition, where)', sql: `DO $$ BEGIN EXECUTE 'SELEC 1'; END $$`, has: ['internalQuery', 'internalPosition', 'where'] },
      { name: 'RAISE (detail, hint, where)', sql: 'SELECT explain_failure()', has: ['detail', 'hint', 'where'] },
    ];

    it.each(CASES)('$name: all of them in error.details, nothing else', async ({ sql, params, has }) => {
      const server = await direct(wide, sql, params);
      for (const f of [...has, 'severity', 'code', 'file', 'line', 'routine']) expect(server[f]).toBeDefined();
      const r = await q('wide', keyWide, { sql, params });
      expect(r.status).toBe(400);
      const { message, code, position, internalPosition, ...rest } = server as Record<string, string>;
      expect(r.body.error.code).toBe('QUERY_FAILED');
      expect(r.body.error.message).toBe(message);
      expect(r.body.error.details).toEqual({
        sqlstate: code, ...rest,
        ...(position ? { position: Number(position) } : {}),
        ...(internalPosition ? { internalPosition: Number(internalPosition) } : {}),
      });
      noInternals(r);
    });

    it.each(CASES)('$name: all of them on the Neon error shape and the NeonDbError', async ({ sql, params }) => {
      const server = await direct(wide, sql, params);
      const raw = await neonRaw('wide', keyWide, { query: sql, params: params ?? [] });
      expect(raw.status).toBe(400);
      const { error, ...neonShape } = raw.body;
      expect(neonShape).toEqual(server);
      expect(error.details.sqlstate).toBe(server.code);
      noInternals(raw);
      const viaDriver = await driver('wide', keyWide).query(sql, params ?? []).then(() => null, (e: unknown) => e);
      expect(viaDriver).toBeInstanceOf(NeonDbError);
      for (const [k, v] of Object.entries(server)) expect({ [k]: (viaDriver as unknown as Record<string, unknown>)[k] }).toEqual({ [k]: v });
    });
  });

  describe("the driver's default endpoint: https://api.<connection host minus its first label>/sql", () => {
    const BASE = 'tenants.silo.test';
    let based: RunningTenantRuntime;
    /** fetch to the runtime with the Host the driver asked for (fetch cannot set Host): what DNS and the ALB do in production, without TLS. */
    const seen: string[] = [];
    const viaHost = async (url: string | URL, init?: { method?: string; body?: string; headers?: Record<string, string> }): Promise<Response> => {
      const u = new URL(String(url));
      seen.push(u.href);
      const r = await httpCall(based.url, u.pathname, { method: init?.method, host: u.host, headers: init?.headers, rawBody: init?.body });
      return new Response(r.text, { status: r.status, headers: { 'content-type': 'application/json' } });
    };

    beforeAll(async () => {
      based = await startTestRuntime(cp, { RUNTIME_BASE_DOMAIN: BASE }, { tiers: TIERS });
    });
    afterAll(async () => {
      await based?.close();
    });

    it('reaches the runtime unchanged: api.<RUNTIME_BASE_DOMAIN> names no tenant, the connection string does', async () => {
      const saved = { endpoint: neonConfig.fetchEndpoint, fetch: neonConfig.fetchFunction };
      neonConfig.fetchEndpoint = undefined as never; // back to the driver's own default
      neonConfig.fetchFunction = viaHost;
      try {
        const sql = neon(`postgres://wide:${keyWide}@wide.${BASE}/app`);
        expect(await sql`SELECT current_user AS u`).toEqual([{ u: wide.role }]);
        expect(await sql.transaction([sql`SELECT 1 AS n`, sql`SELECT 2 AS n`])).toEqual([[{ n: 1 }], [{ n: 2 }]]);
        expect(await neon(`postgres://solo:${keySolo}@solo.${BASE}/app`)`SELECT current_user AS u`).toEqual([{ u: solo.role }]);
        await expect(neon(`postgres://wide:${keySolo}@wide.${BASE}/app`)`SELECT 1`).rejects.toThrow(/HTTP status 401/);
        expect(new Set(seen)).toEqual(new Set([`https://api.${BASE}/sql`]));
      } finally {
        neonConfig.fetchEndpoint = saved.endpoint;
        neonConfig.fetchFunction = saved.fetch;
      }
      // Without a connection string that host names no tenant (404), and a tenant's own host still routes /v1.
      const bare = await call(based.url, '/sql', { host: `api.${BASE}`, key: keyWide, body: { query: 'SELECT 1', params: [] } });
      expect([bare.status, bare.body.code]).toEqual([404, 'TENANT_NOT_FOUND']);
      const own = await call(based.url, '/v1/query', { host: `wide.${BASE}`, key: keyWide, body: { sql: 'SELECT current_user AS u' } });
      expect(own.body.rows).toEqual([{ u: wide.role }]);
    });
  });

  describe("Silo's own codes through the neon driver", () => {
    it('a 400 of Silo\'s own carries its code in NeonDbError.code; other statuses only in the message text', async () => {
      // 400 of Silo's: a batch over the statement limit (RUNTIME_MAX_STATEMENTS, 100 by default).
      const sql = driver('wide', keyWide);
      const many = Array.from({ length: 101 }, () => sql`SELECT 1`);
      await expect(sql.transaction(many)).rejects.toMatchObject({ name: 'NeonDbError', code: 'VALIDATION_FAILED' });
      // 401: the driver keeps no field of the body, only its text in the message.
      const refused = await driver('wide', keySolo)`SELECT 1`.then(() => null, (e: unknown) => e as NeonDbError);
      expect(refused?.code).toBeUndefined();
      const text = /^Server error \(HTTP status 401\): (.*)$/s.exec(refused?.message ?? '')?.[1] as string;
      expect(JSON.parse(text)).toMatchObject({ code: 'API_KEY_INVALID', error: { code: 'API_KEY_INVALID' } });
    });
  });
});
