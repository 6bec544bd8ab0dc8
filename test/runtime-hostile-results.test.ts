import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { call, CallResult, createTenants, issueKey, SeededTenant, startTestRuntime } from './support/runtime-fixtures';

/**
 * Results and messages a tenant can make its database send that are larger than the runtime will
 * hold: each is refused at the message's header (tenant-runtime/guarded-connection.ts) with a 4xx,
 * and the runtime keeps serving that tenant and its neighbour. Before the guard, a 600 MiB value
 * crashed the process (pg-protocol's ERR_STRING_TOO_LONG thrown from a socket handler) and a
 * 200 MiB one was buffered whole before the result cap acted.
 */
const MiB = 1024 * 1024;
const CAP = 10 * MiB; // RUNTIME_MAX_RESULT_BYTES default

describe('runtime: hostile result sizes', () => {
  let cp: TestControlPlane;
  let rt: RunningTenantRuntime;
  let evil: SeededTenant, calm: SeededTenant;
  let keyEvil: string, keyCalm: string;
  const q = (slug: string, key: string, sql: string): Promise<CallResult> => call(rt.url, '/v1/query', { host: `${slug}.localhost`, key, body: { sql } });
  const stillServes = async () => {
    const [own, neighbour] = await Promise.all([q('evil', keyEvil, 'SELECT 1 AS n'), q('calm', keyCalm, 'SELECT 2 AS n')]);
    expect([own.status, own.body.rows]).toEqual([200, [{ n: 1 }]]);
    expect([neighbour.status, neighbour.body.rows]).toEqual([200, [{ n: 2 }]]);
  };
  const tooLarge = (r: CallResult, details: Record<string, unknown> = {}) => {
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'RESULT_TOO_LARGE', details: { unit: 'bytes', ...details } });
  };

  beforeAll(async () => {
    cp = await startTestControlPlane();
    // enterprise: a 30 s statement timeout, so building a 600 MiB value on a loaded CI machine ends in the
    // guard's 400 rather than the 5 s starter timeout's 504 (CI went 504 on four cases with starter).
    [evil, calm] = await createTenants(cp, [{ slug: 'evil', tier: 'enterprise' }, { slug: 'calm' }]);
    [keyEvil, keyCalm] = await Promise.all([evil, calm].map(async (t) => (await issueKey(cp, t)).key));
    rt = await startTestRuntime(cp, { RUNTIME_MAX_RESULT_BYTES: String(CAP) });
  });
  afterAll(async () => {
    await rt?.close();
    await cp?.close();
  });

  it('a 600 MiB value answers 400 RESULT_TOO_LARGE and the runtime keeps serving the tenant and its neighbour', async () => {
    tooLarge(await q('evil', keyEvil, `SELECT repeat('x', ${600 * MiB}) AS v`), { limit: CAP });
    await stillServes();
  });

  it('five 200 MiB rows at once: each refused, none buffered whole', async () => {
    const rs = await Promise.all(Array.from({ length: 5 }, () => q('evil', keyEvil, `SELECT repeat('y', ${200 * MiB}) AS v`)));
    for (const r of rs) tooLarge(r, { limit: CAP });
    await stillServes();
  });

  it('many medium rows summing past the cap are refused; a result just under it is served', async () => {
    tooLarge(await q('evil', keyEvil, `SELECT repeat('m', ${100_000}) AS v FROM generate_series(1, 200)`), { limit: CAP });
    // The cap counts across a request's statements too.
    const two = await call(rt.url, '/v1/transaction', { host: 'evil.localhost', key: keyEvil, body: { statements: [
      { sql: `SELECT repeat('m', ${6 * MiB}) AS v` }, { sql: `SELECT repeat('m', ${6 * MiB}) AS v` },
    ] } });
    tooLarge(two, { limit: CAP, statementIndex: 1 });
    const under = await q('evil', keyEvil, `SELECT repeat('m', ${100_000}) AS v FROM generate_series(1, 90)`);
    expect(under.status).toBe(200);
    expect(under.body.rows).toHaveLength(90);
  });

  it('a huge RAISE NOTICE or RAISE EXCEPTION message answers 400 RESULT_TOO_LARGE naming the message', async () => {
    const notice = await q('evil', keyEvil, `DO $$ BEGIN RAISE NOTICE '%', repeat('n', ${50 * MiB}); END $$`);
    tooLarge(notice, { message: 'notice', limit: MiB });
    const exception = await q('evil', keyEvil, `DO $$ BEGIN RAISE EXCEPTION '%', repeat('e', ${50 * MiB}); END $$`);
    tooLarge(exception, { message: 'error', limit: MiB });
    // Ordinary notices and errors still pass.
    expect((await q('evil', keyEvil, `DO $$ BEGIN RAISE NOTICE '%', repeat('n', 1000); END $$`)).status).toBe(200);
    const err = await q('evil', keyEvil, `DO $$ BEGIN RAISE EXCEPTION 'plain %', 1; END $$`);
    expect([err.status, err.body.error.code, err.body.error.message]).toEqual([400, 'QUERY_FAILED', 'plain 1']);
    await stillServes();
  });

  it('a huge value on /sql (neon protocol) answers 400 RESULT_TOO_LARGE', async () => {
    const r = await call(rt.url, '/sql', {
      headers: { 'neon-connection-string': `postgres://evil:${keyEvil}@runtime.silo.test/evil` },
      body: { query: `SELECT repeat('s', ${600 * MiB}) AS v`, params: [] },
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ code: 'RESULT_TOO_LARGE' });
    await stillServes();
  });

  it('a huge value inside /v1/transaction answers 400 and the transaction does not commit', async () => {
    expect((await q('evil', keyEvil, 'CREATE TABLE IF NOT EXISTS hostile_marks (n int)')).status).toBe(200);
    const r = await call(rt.url, '/v1/transaction', { host: 'evil.localhost', key: keyEvil, body: { statements: [
      { sql: 'INSERT INTO hostile_marks VALUES (1)' }, { sql: `SELECT repeat('t', ${600 * MiB}) AS v` },
    ] } });
    tooLarge(r, { limit: CAP, statementIndex: 1 });
    expect((await q('evil', keyEvil, 'SELECT count(*)::int AS n FROM hostile_marks')).body.rows).toEqual([{ n: 0 }]);
    await stillServes();
  });

  it('neighbours: huge column names, GUC values, invalid-setting echoes and COPY TO STDOUT each answer a clear 4xx or a bounded result', async () => {
    // Column names are truncated by the server to 63 bytes: the RowDescription stays small.
    const longName = await q('evil', keyEvil, `SELECT 1 AS "${'c'.repeat(10_000)}"`);
    expect(longName.status).toBe(200);
    expect(Object.keys(longName.body.rows[0])[0]).toHaveLength(63);
    // application_name is reported (ParameterStatus) truncated to 63 bytes, but the server's notice
    // about the truncation quotes the whole value: refused at that notice.
    tooLarge(await q('evil', keyEvil, `SELECT length(set_config('application_name', repeat('a', ${50 * MiB}), false)) AS n`), { message: 'notice', limit: MiB });
    expect((await q('evil', keyEvil, `SELECT length(set_config('application_name', repeat('a', 100), false)) AS n`)).body.rows).toEqual([{ n: 63 }]);
    // A custom GUC is not reported, but reading it back is a result row like any other.
    tooLarge(await q('evil', keyEvil, `SELECT set_config('x.y', repeat('g', ${50 * MiB}), false) AS v`), { limit: CAP });
    // An invalid value is echoed back in the ErrorResponse.
    tooLarge(await q('evil', keyEvil, `SELECT set_config('TimeZone', repeat('z', ${50 * MiB}), false)`), { message: 'error', limit: MiB });
    // COPY TO STDOUT: each CopyData counts against the budget; a small one is a clear error, not a hang.
    tooLarge(await q('evil', keyEvil, `COPY (SELECT repeat('k', ${600 * MiB})) TO STDOUT`), { limit: CAP });
    const smallCopy = await q('evil', keyEvil, 'COPY (SELECT 1) TO STDOUT');
    expect(smallCopy.status).toBeGreaterThanOrEqual(200);
    expect(smallCopy.status).toBeLessThan(500);
    await stillServes();
  });
});
