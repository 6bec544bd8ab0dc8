import { consoleCall, consoleSignIn } from './support/console';
import { startTestControlPlane, TEST_ADMIN_TOKEN, TestControlPlane } from './support/control-plane';

/**
 * Console sign-in and sessions (issue #18 item 2, local sign-in; no browser): the cookie, CSRF on
 * every state-changing request, the one permission table through a session, idle and absolute
 * timeouts, sign-out, and sessions ending when their token or operator does.
 */
describe('console sessions', () => {
  let t: TestControlPlane;
  let tenant: string;
  const operator = async (email: string, role: string) => {
    const op = await t.api('POST', '/v1/operators', { email, name: email, role });
    expect(op.status).toBe(201);
    const tok = await t.api('POST', `/v1/operators/${op.body.id}/tokens`, { name: 'console' });
    expect(tok.status).toBe(201);
    return { id: op.body.id as string, token: tok.body.token as string, tokenId: tok.body.id as string };
  };

  beforeAll(async () => {
    t = await startTestControlPlane();
    tenant = (await t.api('POST', '/v1/tenants', { name: 'Sess Co', slug: 'sess-co' })).body.id;
  });
  afterAll(async () => t?.close());

  it('sets an httpOnly, SameSite=Strict, path=/ cookie holding a random id, and stores only its SHA-256', async () => {
    const res = await fetch(`${t.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${encodeURIComponent(TEST_ADMIN_TOKEN)}` });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/console/tenants');
    const set = res.headers.get('set-cookie') as string;
    expect(set).toMatch(/^silo_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/); // plain http here: no Secure
    const id = /^silo_console=([^;]+)/.exec(set)?.[1] as string;
    const rows = await t.sql<{ hash: string; kind: string }>('SELECT hash, kind FROM console_sessions');
    expect(rows.some((r) => r.hash === id)).toBe(false);
    const { createHash } = await import('node:crypto');
    expect(rows.some((r) => r.hash === createHash('sha256').update(id).digest('hex') && r.kind === 'break-glass')).toBe(true);
  });

  it('refuses a bad token with 401 and sets no cookie; pages without a session redirect to sign-in', async () => {
    const res = await fetch(`${t.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=silo_op_000000000000_' + 'x'.repeat(43) });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    const page = await consoleCall(t, 'GET', '/console/tenants');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/console/login');
    expect((await consoleCall(t, 'GET', '/console/live/tenants')).status).toBe(401);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: 'silo_console=' + 'A'.repeat(43) })).body.error.code).toBe('UNAUTHORIZED');
  });

  it('refuses a sign-in form posted from another origin', async () => {
    const res = await fetch(`${t.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, body: `token=${encodeURIComponent(TEST_ADMIN_TOKEN)}` });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('authenticates /v1 with the session: GET needs no CSRF token, a state change without it or with another is 403 CSRF_TOKEN_INVALID', async () => {
    const op = await operator('csrf.op@example.com', 'operator');
    const s = await consoleSignIn(t, op.token);
    const other = await consoleSignIn(t, op.token);
    expect(s && other).toBeTruthy();
    expect((await consoleCall(t, 'GET', `/v1/tenants/${tenant}`, { cookie: s!.cookie })).status).toBe(200);
    const none = await consoleCall(t, 'POST', `/v1/tenants/${tenant}/suspend`, { cookie: s!.cookie, body: {} });
    expect(none.status).toBe(403);
    expect(none.body.error.code).toBe('CSRF_TOKEN_INVALID');
    const wrong = await consoleCall(t, 'POST', `/v1/tenants/${tenant}/suspend`, { cookie: s!.cookie, csrf: other!.csrf, body: {} });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe('CSRF_TOKEN_INVALID');
    expect((await t.api('GET', `/v1/tenants/${tenant}`)).body.status).not.toBe('suspended');
    const ok = await consoleCall(t, 'POST', `/v1/tenants/${tenant}/suspend`, { cookie: s!.cookie, csrf: s!.csrf, body: { reason: 'console test' } });
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe('suspended');
    // Attributed to the operator and the token they signed in with.
    const h = await t.api('GET', `/v1/tenants/${tenant}/history`);
    const row = h.body.items.find((i: { action: string; to: string }) => i.to === 'suspended');
    expect(row.actor).toMatchObject({ kind: 'operator', operatorId: op.id, email: 'csrf.op@example.com', tokenId: op.tokenId });
    expect((await consoleCall(t, 'POST', `/v1/tenants/${tenant}/resume`, { cookie: s!.cookie, csrf: s!.csrf })).status).toBe(200);
  });

  it('applies the role table through a session: a viewer gets 403 FORBIDDEN with a valid CSRF token', async () => {
    const v = await operator('viewer.console@example.com', 'viewer');
    const s = (await consoleSignIn(t, v.token))!;
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: s.cookie })).status).toBe(200);
    const r = await consoleCall(t, 'POST', `/v1/tenants/${tenant}/suspend`, { cookie: s.cookie, csrf: s.csrf, body: {} });
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'FORBIDDEN', details: { permission: 'tenants:lifecycle', role: 'viewer' } });
    expect((await consoleCall(t, 'GET', '/console/operators', { cookie: s.cookie })).status).toBe(403);
  });

  it('ends a session on sign-out (the CSRF token is required to sign out)', async () => {
    const s = (await consoleSignIn(t, TEST_ADMIN_TOKEN))!;
    const forged = await fetch(`${t.url}/console/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(forged.status).toBe(403);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: s.cookie })).status).toBe(200);
    const out = await fetch(`${t.url}/console/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: s.cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: `_csrf=${encodeURIComponent(s.csrf)}` });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/^silo_console=; .*Max-Age=0/);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: s.cookie })).status).toBe(401);
  });

  it('ends a session after the idle timeout and at the absolute timeout; polling does not keep it alive', async () => {
    const idle = (await consoleSignIn(t, TEST_ADMIN_TOKEN))!;
    const busy = (await consoleSignIn(t, TEST_ADMIN_TOKEN))!;
    const id = async (c: string) => (await t.sql<{ id: string }>('SELECT id FROM console_sessions WHERE hash = encode(sha256(convert_to($1, \'UTF8\')), \'hex\')', [c.split('=')[1]]))[0]!.id;
    const idleId = await id(idle.cookie);
    const busyId = await id(busy.cookie);
    await t.sql(`UPDATE console_sessions SET last_seen_at = now() - interval '29 minutes' WHERE id = $1`, [idleId]);
    expect((await consoleCall(t, 'GET', '/console/live/tenants', { cookie: idle.cookie })).status).toBe(200); // a poll: no touch
    await t.sql(`UPDATE console_sessions SET last_seen_at = last_seen_at - interval '2 minutes' WHERE id = $1`, [idleId]);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: idle.cookie })).status).toBe(401);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: busy.cookie })).status).toBe(200);
    await t.sql(`UPDATE console_sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, [busyId]);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: busy.cookie })).status).toBe(401);
  });

  it('ends an operator\'s sessions on the next request when their token is revoked or they are disabled; a role change counts at once', async () => {
    const a = await operator('revoked.console@example.com', 'operator');
    const sa = (await consoleSignIn(t, a.token))!;
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: sa.cookie })).status).toBe(200);
    expect((await t.api('DELETE', `/v1/operators/${a.id}/tokens/${a.tokenId}`)).status).toBe(200);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: sa.cookie })).status).toBe(401);
    expect((await consoleCall(t, 'GET', '/console/tenants', { cookie: sa.cookie })).headers.get('location')).toBe('/console/login');

    const b = await operator('disabled.console@example.com', 'operator');
    const sb = (await consoleSignIn(t, b.token))!;
    expect((await t.api('PATCH', `/v1/operators/${b.id}`, { role: 'viewer' })).status).toBe(200);
    expect((await consoleCall(t, 'POST', `/v1/tenants/${tenant}/suspend`, { cookie: sb.cookie, csrf: sb.csrf, body: {} })).body.error.code).toBe('FORBIDDEN');
    expect((await t.api('PATCH', `/v1/operators/${b.id}`, { disabled: true })).status).toBe(200);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: sb.cookie })).status).toBe(401);
    const ended = await t.sql<{ n: number }>('SELECT count(*)::int AS n FROM console_sessions WHERE operator_id = ANY($1::uuid[]) AND ended_at IS NOT NULL', [[a.id, b.id]]);
    expect(ended[0]!.n).toBe(2);
  });

  it('a bearer token still wins over a cookie, and a bad bearer is 401 even with a good cookie', async () => {
    const s = (await consoleSignIn(t, TEST_ADMIN_TOKEN))!;
    const r = await consoleCall(t, 'POST', `/v1/tenants/${tenant}/suspend`, { cookie: s.cookie, headers: { authorization: 'Bearer nope' }, body: {} });
    expect(r.status).toBe(401);
  });
});
