import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { Client } from 'pg';
import { testDatabaseUrl, withDatabase } from '../support/env';
import { httpCall, HttpResult, runLoad, summarize } from './support/load';
import { ServiceProcess, sleep } from './support/processes';
import { recordFigures, round } from './support/report';
import { ReliabilityStack } from './support/stack';
import { LiveTenant, provisionTenants, tenantPassword, tenantQuery, until, writeTiersFile } from './support/tenants';

/**
 * Scenario 4, isolation: tenant A attacks tenant B through the runtime (B's name with A's key,
 * by host, path and connection string) and from inside its own SQL (other databases, catalogs,
 * server files and programs, roles, resource exhaustion, session state). Every attempt must be
 * refused or contained with its expected code, and B's data never shows up in anything A gets.
 */
const TIMEOUT_MS = 1_000;
const SCENARIO = 'Scenario 4: isolation';

interface Attempt {
  name: string;
  /** refused: the request fails with the expected code; contained: it runs but stays within A's limits. */
  outcome: 'refused' | 'contained';
  expected: string;
  actual: string;
  ok: boolean;
}

describe(SCENARIO, () => {
  let stack: ReliabilityStack;
  let cp: ServiceProcess & { url: string };
  let rt: ServiceProcess & { url: string };
  let A: LiveTenant, B: LiveTenant, C: LiveTenant;
  const tierFiles: string[] = [];
  const marker = `B-MARKER-${randomBytes(12).toString('hex')}`;
  /** Every response tenant A (or A's key) received: B's marker must appear in none. */
  const toA: string[] = [];
  const attempts: Attempt[] = [];
  const figures: Record<string, unknown> = {};

  const asA = async (sql: string, params: unknown[] = []) => {
    const r = await tenantQuery(rt.url, A, sql, params);
    toA.push(r.text);
    return r;
  };
  const asAvia = async (path: string, o: Parameters<typeof httpCall>[2]) => {
    const r = await httpCall(rt.url, path, o);
    toA.push(r.text);
    return r;
  };
  const sqlstate = (r: HttpResult): string | undefined => r.body?.error?.details?.sqlstate;
  /** `400 QUERY_FAILED 42501`: status, Silo's code and the SQLSTATE when Postgres refused (the same on every route). */
  const describeResult = (r: HttpResult) => `${r.status} ${r.code ?? 'OK'}${sqlstate(r) ? ` ${sqlstate(r)}` : ''}`;
  const record = (name: string, outcome: Attempt['outcome'], expected: string | string[], actual: string) => {
    const allowed = Array.isArray(expected) ? expected : [expected];
    const a = { name, outcome, expected: allowed.join(' or '), actual, ok: allowed.includes(actual) };
    attempts.push(a);
    return a;
  };
  const publish = () => {
    figures.attempts = attempts.length;
    figures.refusedOrContained = attempts.filter((a) => a.ok).length;
    figures.refused = attempts.filter((a) => a.ok && a.outcome === 'refused').length;
    figures.contained = attempts.filter((a) => a.ok && a.outcome === 'contained').length;
    figures.failedAttempts = attempts.filter((a) => !a.ok).map((a) => `${a.name}: expected ${a.expected}, got ${a.actual}`);
    figures.attemptList = attempts.map((a) => `${a.ok ? 'ok' : 'FAILED'} [${a.outcome}] ${a.name}: ${a.actual}`);
    figures.responsesToA = toA.length;
    figures.responsesToAWithBsMarker = toA.filter((t) => t.includes(marker)).length;
    recordFigures(SCENARIO, figures);
  };

  beforeAll(async () => {
    stack = await ReliabilityStack.create('reliso');
    // The control plane gives tenant roles 3 connections; the runtime pools `single` tenants to 1,
    // so consecutive requests of A share one server session (the session-leak checks rely on it).
    const guarded = { connectionLimit: 3, statementTimeoutMs: TIMEOUT_MS, rateLimitPerSecond: 10_000, rateLimitBurst: 10_000 };
    const cpTiers = writeTiersFile('reliso-cp', { guarded, single: guarded });
    const rtTiers = writeTiersFile('reliso-rt', { guarded, single: { ...guarded, connectionLimit: 1 } });
    tierFiles.push(cpTiers, rtTiers);
    cp = await stack.controlPlane({ TIERS_FILE: cpTiers, LOG_LEVEL: 'warn' });
    await cp.start();
    [A, B, C] = await provisionTenants(stack, cp.url, [{ slug: 'iso-a', tier: 'single' }, { slug: 'iso-b', tier: 'guarded' }, { slug: 'iso-c', tier: 'guarded' }]);
    rt = await stack.runtime({ TIERS_FILE: rtTiers, RUNTIME_MAX_CONNECTIONS: '12', RUNTIME_MAX_RESULT_ROWS: '10000', RUNTIME_MAX_RESULT_BYTES: String(10 * 1024 * 1024) });
    await rt.start();
    for (const [t, sql] of [
      [B, `CREATE TABLE vault (secret text); INSERT INTO vault VALUES ('${marker}')`],
      [A, 'CREATE TABLE notes (line text)'],
      [C, 'CREATE TABLE items (id serial PRIMARY KEY, v int)'],
    ] as const) {
      for (const s of sql.split('; ')) expect((await tenantQuery(rt.url, t, s)).status).toBe(200);
    }
    expect((await tenantQuery(rt.url, B, 'SELECT secret FROM vault')).body.rows).toEqual([{ secret: marker }]);
  });

  afterAll(async () => {
    publish();
    await stack?.cleanup();
    for (const f of tierFiles) unlinkSync(f);
  });

  it('refuses A\'s key on B by host, by path and by connection string exactly like an invalid key, naming nothing of B', async () => {
    const from = attempts.length;
    const bogus = `silo_${'0'.repeat(12)}_${'A'.repeat(43)}`;
    const neonCs = (slug: string, key: string) => `postgres://${slug}:${encodeURIComponent(key)}@127.0.0.1/${'neondb'}`;
    const routes: Record<string, (key: string | null) => Promise<HttpResult>> = {
      host: (key) => asAvia('/v1/query', { host: `${B.slug}.localhost`, key, body: { sql: 'SELECT secret FROM vault' } }),
      path: (key) => asAvia(`/tenants/${B.slug}/v1/query`, { key, body: { sql: 'SELECT secret FROM vault' } }),
      'path-transaction': (key) => asAvia(`/tenants/${B.slug}/v1/transaction`, { key, body: { statements: [{ sql: 'SELECT secret FROM vault' }] } }),
      'connection-string': (key) => asAvia('/sql', { headers: { 'neon-connection-string': neonCs(B.slug, key ?? '') }, body: { query: 'SELECT secret FROM vault', params: [] } }),
      'connection-string+bearer': (key) => asAvia('/sql', { headers: { 'neon-connection-string': `postgres://${B.slug}@127.0.0.1/neondb` }, key, body: { query: 'SELECT secret FROM vault', params: [] } }),
    };
    const shape = (r: HttpResult) => ({
      status: r.status, code: r.code, message: r.body?.error?.message, auth: r.headers['www-authenticate'],
      keys: Object.keys(r.body ?? {}).sort(), errorKeys: Object.keys(r.body?.error ?? {}).sort(),
    });
    const cross: Record<string, unknown> = {};
    for (const [name, send] of Object.entries(routes)) {
      const withAsKey = await send(A.key);
      const references = [await send(bogus), await send('not-a-key'), await send(null)];
      for (const ref of references) expect(shape(withAsKey)).toEqual(shape(ref));
      expect(withAsKey.status).toBe(401);
      expect(withAsKey.code).toBe('API_KEY_INVALID');
      for (const secret of [marker, B.id, B.role, B.database]) expect(withAsKey.text).not.toContain(secret);
      cross[name] = shape(withAsKey);
      record(`A's key on B by ${name}`, 'refused', '401 API_KEY_INVALID', describeResult(withAsKey));
    }
    // Two sources naming different tenants are refused before any key is looked at.
    const conflicts = [
      await asAvia(`/tenants/${B.slug}/v1/query`, { host: `${A.slug}.localhost`, key: A.key, body: { sql: 'SELECT 1' } }),
      await asAvia(`/tenants/${B.slug}/sql`, { headers: { 'neon-connection-string': neonCs(A.slug, A.key) }, body: { query: 'SELECT 1' } }),
      await asAvia('/sql', { host: `${B.slug}.localhost`, headers: { 'neon-connection-string': neonCs(A.slug, A.key) }, body: { query: 'SELECT 1' } }),
    ];
    conflicts.forEach((r, i) => record(`A's key, A and B named together (#${i + 1})`, 'refused', '400 VALIDATION_FAILED', describeResult(r)));
    figures.crossTenantKeyShapes = cross;
    // A's own key still works on every route (the refusals above are about B, not a broken key).
    expect((await asAvia(`/tenants/${A.slug}/v1/query`, { key: A.key, body: { sql: 'SELECT 1 AS one' } })).status).toBe(200);
    expect((await asAvia('/sql', { headers: { 'neon-connection-string': neonCs(A.slug, A.key) }, body: { query: 'SELECT 1 AS one' } })).status).toBe(200);
    // The database named in the connection string is ignored: A's credentials only ever reach A's database.
    const otherDb = await asAvia('/sql', { headers: { 'neon-connection-string': `postgres://${A.slug}:${encodeURIComponent(A.key)}@127.0.0.1/${B.database}` }, body: { query: 'SELECT current_database() AS db, current_user AS u', params: [] } });
    record('A\'s connection string naming B\'s database', 'contained', `runs on ${A.database} as ${A.role}`, otherDb.status === 200 ? `runs on ${otherDb.body.rows?.[0]?.db} as ${otherDb.body.rows?.[0]?.u}` : describeResult(otherDb));
    publish();
    expect(attempts.slice(from).filter((a) => !a.ok)).toEqual([]);
  });

  it('refuses every attempt of A\'s SQL to reach other databases, roles, catalogs, server files and programs', async () => {
    const from = attempts.length;
    const denied = '400 QUERY_FAILED 42501';
    const cases: Array<[string, string, string]> = [
      ['read pg_authid', 'SELECT rolname, rolpassword FROM pg_authid', denied],
      ['read pg_shadow', 'SELECT usename, passwd FROM pg_shadow', denied],
      ['CREATE EXTENSION dblink', 'CREATE EXTENSION dblink', denied],
      ['CREATE EXTENSION postgres_fdw', 'CREATE EXTENSION postgres_fdw', denied],
      ['CREATE EXTENSION file_fdw', 'CREATE EXTENSION file_fdw', denied],
      ['dblink_connect to B', `SELECT dblink_connect('dbname=${B.database}')`, '400 QUERY_FAILED 42883'],
      ['dblink query on B', `SELECT * FROM dblink('dbname=${B.database}', 'SELECT secret FROM vault') AS t(s text)`, '400 QUERY_FAILED 42883'],
      ['cross-database reference to B', `SELECT secret FROM ${B.database}.public.vault`, '400 QUERY_FAILED 0A000'],
      ['psql \\c to B (not SQL)', `\\c ${B.database}`, '400 QUERY_FAILED 42601'],
      ['COPY ... TO PROGRAM', `COPY (SELECT 1) TO PROGRAM 'id'`, denied],
      ['COPY ... FROM PROGRAM', `COPY notes FROM PROGRAM 'cat /etc/passwd'`, denied],
      ['COPY ... FROM server file', `COPY notes FROM '/etc/passwd'`, denied],
      ['COPY ... TO server file', `COPY (SELECT 1) TO '/tmp/silo-escape.txt'`, denied],
      ['pg_read_file', `SELECT pg_read_file('/etc/passwd')`, denied],
      ['pg_read_binary_file', `SELECT pg_read_binary_file('/etc/passwd')`, denied],
      ['pg_ls_dir', `SELECT pg_ls_dir('.')`, denied],
      ['lo_import server file', `SELECT lo_import('/etc/passwd')`, denied],
      ['C-language function (libc system)', `CREATE FUNCTION esc(cstring) RETURNS int AS 'libc.so.6', 'system' LANGUAGE c`, denied],
      ['LOAD a library', `LOAD '/usr/lib/x86_64-linux-gnu/libc.so.6'`, denied],
      ['SET ROLE to B', `SET ROLE ${B.role}`, denied],
      ['SET ROLE postgres', 'SET ROLE postgres', denied],
      ['SET SESSION AUTHORIZATION B', `SET SESSION AUTHORIZATION ${B.role}`, denied],
      ['SET SESSION AUTHORIZATION postgres', 'SET SESSION AUTHORIZATION postgres', denied],
      ['ALTER ROLE self SUPERUSER', `ALTER ROLE ${A.role} SUPERUSER`, denied],
      ['ALTER ROLE self CREATEROLE', `ALTER ROLE ${A.role} CREATEROLE CREATEDB`, denied],
      ['ALTER ROLE self CONNECTION LIMIT', `ALTER ROLE ${A.role} CONNECTION LIMIT -1`, denied],
      ['ALTER ROLE B PASSWORD', `ALTER ROLE ${B.role} PASSWORD 'owned'`, denied],
      ['ALTER ROLE postgres PASSWORD', `ALTER ROLE postgres PASSWORD 'owned'`, denied],
      ['GRANT B to A', `GRANT ${B.role} TO ${A.role}`, denied],
      ['CREATE ROLE', 'CREATE ROLE escapee LOGIN SUPERUSER', denied],
      ['CREATE DATABASE', 'CREATE DATABASE escapee', denied],
      ['ALTER DATABASE B', `ALTER DATABASE ${B.database} ALLOW_CONNECTIONS false`, denied],
      ['DROP DATABASE B', `DROP DATABASE ${B.database}`, denied],
      ['ALTER SYSTEM', `ALTER SYSTEM SET max_connections = 5`, denied],
    ];
    for (const [name, sql, expected] of cases) record(name, 'refused', expected, describeResult(await asA(sql)));

    // Same refusals through the other two routes (transaction and the neon /sql endpoint).
    const tx = await asAvia('/v1/transaction', { host: `${A.slug}.localhost`, key: A.key, body: { statements: [{ sql: `SET LOCAL ROLE ${B.role}` }, { sql: 'SELECT secret FROM vault' }] } });
    record('SET LOCAL ROLE to B in a transaction', 'refused', denied, describeResult(tx));
    const neon = await asAvia('/sql', { host: `${A.slug}.localhost`, key: A.key, body: { query: 'SELECT rolpassword FROM pg_authid', params: [] } });
    record('read pg_authid over /sql', 'refused', denied, describeResult(neon));

    // Signalling or spying on B's sessions: B runs a query carrying its marker while A looks.
    const bBusy = tenantQuery(rt.url, B, `SELECT pg_sleep(0.8), '${marker}' AS m`);
    const seen = await until(() => stack.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND state = 'active'`, [B.role]), (r) => (r[0]?.n ?? 0) > 0, 3_000, 10);
    expect(seen.ok).toBe(true);
    const spy = await asA('SELECT usename, datname, query FROM pg_stat_activity');
    expect(spy.status).toBe(200);
    const bRows = (spy.body.rows as Array<{ usename: string; query: string }>).filter((r) => r.usename === B.role);
    record('read B\'s query text from pg_stat_activity', 'contained', 'hidden', bRows.length > 0 && bRows.every((r) => r.query === '<insufficient privilege>') ? 'hidden' : JSON.stringify(bRows));
    record('pg_terminate_backend on B', 'refused', denied, describeResult(await asA('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [B.role])));
    record('pg_cancel_backend on B', 'refused', denied, describeResult(await asA('SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = $1', [B.role])));
    expect((await bBusy).status).toBe(200); // B's query was not touched
    // Not asserted, reported: pg_database and pg_roles are server-wide catalogs every role can read,
    // so on the local driver (one server for all tenants) A sees that B's database and role exist.
    const names = await asA('SELECT (SELECT count(*)::int FROM pg_database WHERE datname = $1) AS dbs, (SELECT count(*)::int FROM pg_roles WHERE rolname = $2) AS roles', [B.database, B.role]);
    figures.catalogVisibility = { bDatabaseNameVisibleToA: names.body.rows?.[0]?.dbs === 1, bRoleNameVisibleToA: names.body.rows?.[0]?.roles === 1 };
    // Nothing A tried changed anything: no new role or database, B's role untouched.
    expect(await stack.sql(`SELECT 1 FROM pg_roles WHERE rolname = 'escapee' UNION ALL SELECT 1 FROM pg_database WHERE datname = 'escapee'`)).toEqual([]);
    expect(await stack.sql(`SELECT rolsuper, rolcreaterole, rolcreatedb, rolconnlimit FROM pg_roles WHERE rolname = $1`, [A.role])).toEqual([{ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolconnlimit: 3 + 2 }]); // guarded's cap × 1 replica + the default reserve
    expect((await tenantQuery(rt.url, B, 'SELECT secret FROM vault')).body.rows).toEqual([{ secret: marker }]);
    publish();
    expect(attempts.slice(from).filter((a) => !a.ok)).toEqual([]);
  });

  it('refuses A\'s own database credentials on every other database (REVOKE CONNECT), B\'s included', async () => {
    const from = attempts.length;
    const password = await tenantPassword(stack, A.secretRef);
    const tryConnect = async (database: string) => {
      // Credentials inside the URL: pg lets a connection string override separate user/password fields.
      const u = new URL(withDatabase(testDatabaseUrl(), database));
      u.username = A.role;
      u.password = password;
      const c = new Client({ connectionString: u.toString(), connectionTimeoutMillis: 3_000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const r = await c.query('SELECT current_database() AS db, current_user AS u');
        return `connected to ${r.rows[0].db} as ${r.rows[0].u}`;
      } catch (err) {
        return `refused ${(err as { code?: string }).code}`;
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    // Sanity: the password is right (A's own database accepts it) and the session really is A's role.
    expect(await tryConnect(A.database)).toBe(`connected to ${A.database} as ${A.role}`);
    for (const [name, db] of [['B', B.database], ['C', C.database], ['control', stack.db.name], ['tenant template', stack.templateDb], ['maintenance (postgres)', 'postgres']] as const) {
      record(`direct connection as A to ${name}'s database`, 'refused', 'refused 42501', await tryConnect(db));
    }
    publish();
    expect(attempts.slice(from).filter((a) => !a.ok)).toEqual([]);
  });

  it('caps huge result sets with RESULT_TOO_LARGE and stays healthy', async () => {
    const from = attempts.length;
    const rssBefore = rt.rssKb();
    const cases: Array<[string, () => Promise<HttpResult>]> = [
      ['10M rows', () => asA('SELECT generate_series(1, 10000000) AS n')],
      ['50 x 1 MB rows', () => asA(`SELECT repeat('x', 1048576) AS blob FROM generate_series(1, 50)`)],
      ['one 64 MB value', () => asA(`SELECT repeat('x', 64 * 1048576) AS blob`)],
      ['10M rows over /sql', () => asAvia('/sql', { host: `${A.slug}.localhost`, key: A.key, body: { query: 'SELECT generate_series(1, 10000000) AS n', params: [] } })],
      ['10M rows in a transaction', () => asAvia('/v1/transaction', { host: `${A.slug}.localhost`, key: A.key, body: { statements: [{ sql: 'SELECT 1' }, { sql: 'SELECT generate_series(1, 10000000) AS n' }] } })],
    ];
    const ms: Record<string, number> = {};
    for (const [name, send] of cases) {
      const t0 = Date.now();
      const r = await send();
      ms[name] = Date.now() - t0;
      const code = r.body?.error?.code ?? r.body?.code;
      // A single value is one protocol message: the client holds all of it before the byte cap can
      // count it, and under load that can outlast the statement timeout. Contained either way.
      record(`huge result: ${name}`, 'contained', name === 'one 64 MB value' ? ['400 RESULT_TOO_LARGE', '504 QUERY_TIMEOUT'] : '400 RESULT_TOO_LARGE', `${r.status} ${code}`);
    }
    figures.hugeResultMs = ms;
    expect((await httpCall(rt.url, '/health/live')).status).toBe(200);
    expect(rt.running).toBe(true);
    expect((await asA('SELECT 1 AS one')).body.rows).toEqual([{ one: 1 }]);
    expect((await tenantQuery(rt.url, B, 'SELECT count(*)::int AS n FROM vault')).body.rows).toEqual([{ n: 1 }]);
    figures.runtimeRssKb = { before: rssBefore, after: rt.rssKb() };
    publish();
    expect(attempts.slice(from).filter((a) => !a.ok)).toEqual([]);
  });

  it('stops pg_sleep past the tier statement timeout with QUERY_TIMEOUT, even when A turns the timeout off', async () => {
    const from = attempts.length;
    const timed = async (name: string, send: () => Promise<HttpResult>, boundMs: number, expected = '504 QUERY_TIMEOUT 57014') => {
      const t0 = Date.now();
      const r = await send();
      const took = Date.now() - t0;
      record(`${name} (${took} ms)`, 'contained', `${expected} within ${boundMs} ms`, `${describeResult(r)}${took <= boundMs ? ` within ${boundMs} ms` : ` after ${took} ms`}`);
      return took;
    };
    const took: Record<string, number> = {};
    took.pgSleep = await timed('pg_sleep(5) with a 1 s tier timeout', () => asA('SELECT pg_sleep(5)'), TIMEOUT_MS + 2_000);
    // The server's own timeout is off: the backstop cancels it, without a SQLSTATE of its own.
    // The server-side timeout is gone for this transaction: the runtime's backstop (timeout + 1 s) cancels it.
    took.timeoutOff = await timed('SET LOCAL statement_timeout = 0, then pg_sleep(10)', () => asAvia('/v1/transaction', {
      host: `${A.slug}.localhost`, key: A.key, body: { statements: [{ sql: 'SET LOCAL statement_timeout = 0' }, { sql: 'SELECT pg_sleep(10)' }] },
    }), TIMEOUT_MS + 5_000, '504 QUERY_TIMEOUT');
    // The neon driver reads Postgres errors from 400 responses only: same code and SQLSTATE, status 400.
    took.neon = await timed('pg_sleep(5) over /sql', () => asAvia('/sql', { host: `${A.slug}.localhost`, key: A.key, body: { query: 'SELECT pg_sleep(5)', params: [] } }), TIMEOUT_MS + 2_000, '400 QUERY_TIMEOUT 57014');
    figures.timeoutMs = took;
    expect((await asA('SELECT 1 AS one')).body.rows).toEqual([{ one: 1 }]);
    // No sleeping session of A is left on the server.
    const left = await until(() => stack.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND query LIKE '%pg_sleep%' AND state = 'active'`, [A.role]), (r) => r[0]?.n === 0, 5_000, 50);
    expect(left.ok).toBe(true);
    publish();
    expect(attempts.slice(from).filter((a) => !a.ok)).toEqual([]);
  });

  it('contains advisory-lock abuse: no lock outlives its request, and other tenants keep working', async () => {
    const from = attempts.length;
    // While A fills the server's shared lock table, even this admin query can fail ("out of shared memory"): -1, ask again.
    const held = () => stack.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.usename = $1`, [A.role])
      .catch(() => [{ n: -1 }]);
    for (const [name, sql] of [
      ['pg_advisory_lock (session level)', 'SELECT pg_advisory_lock(42)'],
      ['pg_try_advisory_lock (session level)', 'SELECT pg_try_advisory_lock(43)'],
      ['pg_try_advisory_lock_shared', 'SELECT pg_try_advisory_lock_shared(44)'],
      ['1,000 session locks in one statement', 'SELECT count(pg_advisory_lock(i)) FROM generate_series(1, 1000) i'],
      ['locks taken in a function', `DO $$ BEGIN PERFORM pg_try_advisory_lock(i) FROM generate_series(100, 200) i; END $$`],
    ] as const) {
      const r = await asA(sql);
      expect(r.status).toBe(200);
      const released = await until(held, (rows) => rows[0]?.n === 0, 2_000, 20);
      record(`${name}: released after the request`, 'contained', '0 advisory locks held', `${released.value[0]?.n} advisory locks held`);
    }

    // Exhaustion: A grabs session locks until the server's shared lock table is full, while B reads
    // and C writes. A's request fails; its connection is dropped, releasing everything. The lock
    // table belongs to the whole Postgres server (the local driver puts every tenant on one), so
    // for that instant other sessions that need a heavyweight lock fail too (an INSERT extending
    // its table does, and so may opening a connection): contained in time, not in space. Asserted:
    // such errors are 53200 (or the 503 of a connection that could not open) and only inside the
    // window; nothing fails after A's locks are gone.
    const stop = { stopped: false };
    const others = [B, C];
    const errors: Array<{ at: number; tenant: string; what: string }> = [];
    const load = runLoad({
      clients: 4, durationMs: 8_000, signal: stop,
      step: async (client) => {
        const t = client % 2;
        const tenant = others[t] as LiveTenant;
        const result = t === 0 ? await tenantQuery(rt.url, tenant, 'SELECT count(*)::int AS n FROM vault') : await tenantQuery(rt.url, tenant, 'INSERT INTO items (v) VALUES ($1) RETURNING id', [client]);
        if (result.code) errors.push({ at: Date.now(), tenant: tenant.slug, what: describeResult(result) });
        return { tenant: t, op: t === 0 ? 'read' : 'write', result };
      },
    });
    await sleep(500);
    const t0 = Date.now();
    const grab = await asA('SELECT count(pg_advisory_lock(i)) FROM generate_series(1, 5000000) i');
    figures.lockExhaustion = { status: grab.status, code: grab.code, sqlstate: sqlstate(grab), ms: Date.now() - t0 };
    const released = await until(held, (rows) => rows[0]?.n === 0, 3_000, 20);
    // Requests already in flight when the locks went away may still report the error: 300 ms of grace.
    const windowEnd = Date.now() + 300;
    await sleep(1_500);
    stop.stopped = true;
    const run = await load;
    const byTenant = others.map((t, i) => ({ slug: t.slug, ...summarize(run.samples.filter((s) => s.tenant === i), run.durationMs) }));
    const inWindow = errors.filter((e) => e.at >= t0 && e.at <= windowEnd);
    figures.lockExhaustionBystanders = byTenant.map((s) => ({ slug: s.slug, requests: s.requests, errors: s.errors, byCode: s.byCode, p99: s.p99 }));
    figures.lockExhaustionWindowMs = windowEnd - 300 - t0;
    figures.lockExhaustionBystanderErrors = errors.map((e) => `${e.tenant} +${e.at - t0} ms: ${e.what}`);
    // A either fills the lock table (53200 out of shared memory) or runs into its statement timeout first.
    const refusedAs = ['400 QUERY_FAILED 53200', '504 QUERY_TIMEOUT 57014'].includes(describeResult(grab));
    record('advisory-lock exhaustion (5M locks in one statement)', 'contained', 'A refused, locks released', refusedAs && released.ok ? 'A refused, locks released' : `${describeResult(grab)}, ${released.value[0]?.n} locks left`);
    record('other tenants during lock exhaustion', 'contained', 'only 53200 while A held the lock table, none after',
      inWindow.length === errors.length && errors.every((e) => ['400 QUERY_FAILED 53200', '503 TENANT_UNAVAILABLE'].includes(e.what)) ? 'only 53200 while A held the lock table, none after' : JSON.stringify(errors));
    expect(byTenant.every((s) => s.requests > 10)).toBe(true);
    expect((await asA('SELECT pg_try_advisory_lock(1) AS ok')).body.rows).toEqual([{ ok: true }]);
    publish();
    expect(attempts.slice(from).filter((a) => !a.ok)).toEqual([]);
  });

  it('does not leak session state into A\'s next request on the same pooled connection', async () => {
    const from = attempts.length;
    const pid = async () => (await asA('SELECT pg_backend_pid() AS pid')).body.rows?.[0]?.pid as number;
    expect((await asA(`CREATE FUNCTION sneaky() RETURNS text LANGUAGE sql AS $f$ SELECT pg_catalog.set_config('app.sneaky', 'leaked', false) $f$`)).status).toBe(200);
    const v = (r: HttpResult): unknown => (r.status === 200 ? r.body.rows?.[0]?.v : `${r.status} ${r.code}`);
    const checks: Array<[string, string, string, (r: HttpResult) => boolean]> = [
      ['SET search_path', 'SET search_path TO pg_temp, evil', `SELECT current_setting('search_path') AS v`, (r) => v(r) === '"$user", public'],
      ['SET statement_timeout = 0', 'SET statement_timeout = 0', `SELECT current_setting('statement_timeout') AS v`, (r) => v(r) === '1s'],
      ['set_config(..., false)', `SELECT set_config('app.tenant', 'leaked', false)`, `SELECT coalesce(current_setting('app.tenant', true), '') AS v`, (r) => v(r) === ''],
      ['SET SESSION CHARACTERISTICS read only', 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', `SELECT current_setting('default_transaction_read_only') AS v`, (r) => v(r) === 'off'],
      ['CREATE TEMP TABLE', 'CREATE TEMP TABLE leak_tmp (x int)', `SELECT to_regclass('leak_tmp')::text AS v`, (r) => v(r) === null],
      ['PREPARE', 'PREPARE leak_p AS SELECT 1', 'SELECT count(*)::int AS v FROM pg_prepared_statements', (r) => v(r) === 0],
      ['LISTEN', 'LISTEN leak_channel', 'SELECT count(*)::int AS v FROM pg_listening_channels()', (r) => v(r) === 0],
      // Outside a transaction block a savepoint is refused (25P01): the next request is not inside A's BEGIN.
      ['BEGIN left open', 'BEGIN', `SAVEPOINT probe`, (r) => sqlstate(r) === '25P01'],
      ['SET inside a DO block (dynamic SQL)', `DO $$ BEGIN EXECUTE 'SET search_path TO evil'; END $$`, `SELECT current_setting('search_path') AS v`, (r) => v(r) === '"$user", public'],
      ['set_config inside a SQL function', 'SELECT sneaky() AS s', `SELECT coalesce(current_setting('app.sneaky', true), '') AS v`, (r) => v(r) === ''],
      ['pg_try_advisory_lock', 'SELECT pg_try_advisory_lock(777)', `SELECT count(*)::int AS v FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`, (r) => v(r) === 0],
    ];
    for (const [name, dirty, probe, clean] of checks) {
      const before = await pid();
      const r1 = await asA(dirty);
      expect(r1.status).toBe(200);
      const r2 = await asA(probe);
      const after = await pid();
      record(`session state: ${name}`, 'contained', 'not visible to the next request', clean(r2) ? 'not visible to the next request' : `visible: ${describeResult(r2)} ${JSON.stringify(v(r2))}`);
      // One connection in A's pool: every request above ran on the same server session.
      expect(after).toBe(before);
    }
    publish();
    expect(attempts.slice(from).filter((a) => !a.ok)).toEqual([]);
  });

  it('never returned anything of B\'s to A', () => {
    expect(toA.length).toBeGreaterThan(80);
    expect(toA.filter((t) => t.includes(marker))).toEqual([]);
    figures.refusalRate = round((attempts.filter((a) => a.ok).length / attempts.length) * 100, 1);
    publish();
  });
});
