import { RequestMethod } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { ModulesContainer } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { AdminAuthGuard } from '../control-plane/common/admin-auth.guard';
import { PERMISSION_KEY, RoutePermission } from '../control-plane/common/permissions';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { deliver } from './support/stripe';
import { stripeEvent } from './support/stripe-fixtures';

/**
 * Issue #18 items 1 and 3 through the real admin API: every role against every /v1 route (the
 * expected roles are written out here from the issue's role descriptions, not read from the
 * permission map), 401 for no/unknown/expired/revoked tokens and disabled operators, the token
 * lifecycle, and who each audit row names.
 */

type Role = 'admin' | 'operator' | 'billing' | 'viewer';
const ROLES: Role[] = ['admin', 'operator', 'billing', 'viewer'];
const ALL: Role[] = ROLES;
const WRITERS: Role[] = ['admin', 'operator'];
const READERS: Role[] = ['admin', 'operator', 'viewer'];
const ADMIN: Role[] = ['admin'];

type Res = { status: number; body: any };
interface Row {
  route: string;
  allowed: Role[];
  /** Statuses an allowed caller gets (the route's own outcome, not an auth one). */
  ok: number[];
  call(token: string, n: number): Promise<Res>;
}

describe('operators, roles and tokens (admin API)', () => {
  let t: TestControlPlane;
  const ops = {} as Record<Role, { id: string; email: string; token: string; tokenId: string; prefix: string }>;
  let tenant: string; // the matrix's tenant
  let attr: string; // the attribution tests' tenant
  let scratch: string; // an operator the admin-only rows act on
  let eventId: string;
  const as = (token: string | null) => ({ token });
  const bg = (method: string, path: string, body?: unknown) => t.api(method, path, body); // break-glass

  const newOperator = async (email: string, role: Role, name = email.split('@')[0]) => {
    const r = await bg('POST', '/v1/operators', { email, name, role });
    expect(r.status).toBe(201);
    return r.body as { id: string; email: string; role: string };
  };
  const newToken = async (operatorId: string, name = 'test', expiresInDays?: number, token?: string) => {
    const r = await t.api('POST', `/v1/operators/${operatorId}/tokens`, { name, ...(expiresInDays ? { expiresInDays } : {}) }, token ? as(token) : {});
    expect(r.status).toBe(201);
    return r.body as { id: string; token: string; prefix: string; expiresAt: string; status: string };
  };

  beforeAll(async () => {
    t = await startTestControlPlane();
    for (const role of ROLES) {
      const op = await newOperator(`${role}.person@Example.com`, role);
      const tok = await newToken(op.id, `${role} laptop`);
      ops[role] = { id: op.id, email: op.email, token: tok.token, tokenId: tok.id, prefix: tok.prefix };
    }
    scratch = (await newOperator('scratch@example.com', 'viewer')).id;
    tenant = (await bg('POST', '/v1/tenants', { name: 'Matrix Co', slug: 'matrix-co' })).body.id;
    attr = (await bg('POST', '/v1/tenants', { name: 'Attr Co', slug: 'attr-co' })).body.id;
    await t.drainJobs();
    const event = stripeEvent('customer.updated', { id: 'cus_Ops', object: 'customer' });
    expect((await deliver(t, event)).status).toBe(200);
    eventId = event.id;
  });
  afterAll(async () => t?.close());

  const key = async () => (await bg('POST', `/v1/tenants/${tenant}/api-keys`, { name: 'setup' })).body.id as string;
  const opToken = async () => (await newToken(scratch)).id;

  const rows: Row[] = [
    { route: 'GET /v1/tenants', allowed: ALL, ok: [200], call: (k) => t.api('GET', '/v1/tenants', undefined, as(k)) },
    { route: 'POST /v1/tenants', allowed: WRITERS, ok: [202], call: (k, n) => t.api('POST', '/v1/tenants', { name: `Made ${n}`, slug: `made-${n}` }, as(k)) },
    { route: 'GET /v1/tenants/{id}', allowed: ALL, ok: [200], call: (k) => t.api('GET', `/v1/tenants/${tenant}`, undefined, as(k)) },
    { route: 'PATCH /v1/tenants/{id}', allowed: WRITERS, ok: [200], call: (k, n) => t.api('PATCH', `/v1/tenants/${tenant}`, { customDomain: `db${n}.matrix.example.com` }, as(k)) },
    {
      route: 'POST /v1/tenants/{id}/suspend', allowed: WRITERS, ok: [200],
      call: async (k) => {
        await bg('POST', `/v1/tenants/${tenant}/resume`);
        const r = await t.api('POST', `/v1/tenants/${tenant}/suspend`, { reason: 'matrix' }, as(k));
        if (r.status === 403) expect((await bg('GET', `/v1/tenants/${tenant}`)).body.status).toBe('active'); // refused: nothing happened
        return r;
      },
    },
    {
      route: 'POST /v1/tenants/{id}/resume', allowed: WRITERS, ok: [200],
      call: async (k) => {
        await bg('POST', `/v1/tenants/${tenant}/suspend`, {});
        const r = await t.api('POST', `/v1/tenants/${tenant}/resume`, undefined, as(k));
        if (r.status === 403) expect((await bg('GET', `/v1/tenants/${tenant}`)).body.status).toBe('suspended');
        await bg('POST', `/v1/tenants/${tenant}/resume`);
        return r;
      },
    },
    {
      route: 'POST /v1/tenants/{id}/offboard', allowed: WRITERS, ok: [202],
      call: async (k) => {
        const r = await t.api('POST', `/v1/tenants/${tenant}/offboard`, { at: new Date(Date.now() + 86_400_000).toISOString() }, as(k));
        await bg('DELETE', `/v1/tenants/${tenant}/offboarding`);
        return r;
      },
    },
    {
      route: 'DELETE /v1/tenants/{id}/offboarding', allowed: WRITERS, ok: [200],
      call: async (k) => {
        expect((await bg('POST', `/v1/tenants/${tenant}/offboard`, { at: new Date(Date.now() + 86_400_000).toISOString() })).status).toBe(202);
        const r = await t.api('DELETE', `/v1/tenants/${tenant}/offboarding`, undefined, as(k));
        await bg('DELETE', `/v1/tenants/${tenant}/offboarding`);
        return r;
      },
    },
    // Not failed, so a permitted retry is refused by the state machine, not by auth.
    { route: 'POST /v1/tenants/{id}/retry', allowed: WRITERS, ok: [409], call: (k) => t.api('POST', `/v1/tenants/${tenant}/retry`, undefined, as(k)) },
    { route: 'POST /v1/tenants/{id}/rotate-credentials', allowed: WRITERS, ok: [202], call: (k) => t.api('POST', `/v1/tenants/${tenant}/rotate-credentials`, undefined, as(k)) },
    { route: 'GET /v1/tenants/{id}/history', allowed: ALL, ok: [200], call: (k) => t.api('GET', `/v1/tenants/${tenant}/history`, undefined, as(k)) },
    { route: 'GET /v1/tenants/{id}/jobs', allowed: ALL, ok: [200], call: (k) => t.api('GET', `/v1/tenants/${tenant}/jobs`, undefined, as(k)) },
    { route: 'POST /v1/tenants/{id}/api-keys', allowed: WRITERS, ok: [201], call: (k) => t.api('POST', `/v1/tenants/${tenant}/api-keys`, { name: 'matrix' }, as(k)) },
    { route: 'GET /v1/tenants/{id}/api-keys', allowed: READERS, ok: [200], call: (k) => t.api('GET', `/v1/tenants/${tenant}/api-keys`, undefined, as(k)) },
    { route: 'POST /v1/tenants/{id}/api-keys/{keyId}/rotate', allowed: WRITERS, ok: [201], call: async (k) => t.api('POST', `/v1/tenants/${tenant}/api-keys/${await key()}/rotate`, {}, as(k)) },
    { route: 'DELETE /v1/tenants/{id}/api-keys/{keyId}', allowed: WRITERS, ok: [200], call: async (k) => t.api('DELETE', `/v1/tenants/${tenant}/api-keys/${await key()}`, undefined, as(k)) },
    { route: 'GET /v1/webhook-events', allowed: ALL, ok: [200], call: (k) => t.api('GET', '/v1/webhook-events', undefined, as(k)) },
    { route: 'GET /v1/webhook-events/{id}', allowed: ALL, ok: [200], call: (k) => t.api('GET', `/v1/webhook-events/${eventId}`, undefined, as(k)) },
    { route: 'GET /v1/webhook-events/{id}/verification', allowed: ALL, ok: [200], call: (k) => t.api('GET', `/v1/webhook-events/${eventId}/verification`, undefined, as(k)) },
    { route: 'GET /v1/periodic-tasks', allowed: READERS, ok: [200], call: (k) => t.api('GET', '/v1/periodic-tasks', undefined, as(k)) },
    { route: 'GET /v1/audit', allowed: READERS, ok: [200], call: (k) => t.api('GET', '/v1/audit?limit=5', undefined, as(k)) },
    { route: 'POST /v1/operators', allowed: ADMIN, ok: [201], call: (k, n) => t.api('POST', '/v1/operators', { email: `made${n}@example.com`, name: `Made ${n}`, role: 'viewer' }, as(k)) },
    { route: 'GET /v1/operators', allowed: ADMIN, ok: [200], call: (k) => t.api('GET', '/v1/operators', undefined, as(k)) },
    { route: 'GET /v1/operators/{id}', allowed: ADMIN, ok: [200], call: (k) => t.api('GET', `/v1/operators/${scratch}`, undefined, as(k)) },
    { route: 'PATCH /v1/operators/{id}', allowed: ADMIN, ok: [200], call: (k, n) => t.api('PATCH', `/v1/operators/${scratch}`, { name: `Scratch ${n}` }, as(k)) },
    { route: 'POST /v1/operators/{id}/tokens', allowed: ADMIN, ok: [201], call: (k) => t.api('POST', `/v1/operators/${scratch}/tokens`, { name: 'matrix', expiresInDays: 1 }, as(k)) },
    { route: 'GET /v1/operators/{id}/tokens', allowed: ADMIN, ok: [200], call: (k) => t.api('GET', `/v1/operators/${scratch}/tokens`, undefined, as(k)) },
    { route: 'DELETE /v1/operators/{id}/tokens/{tokenId}', allowed: ADMIN, ok: [200], call: async (k) => t.api('DELETE', `/v1/operators/${scratch}/tokens/${await opToken()}`, undefined, as(k)) },
  ];

  /** Every /v1 route the Nest app serves: `METHOD /v1/path/{param}`, with its guards and declared permission. */
  const servedRoutes = () => {
    const out: Array<{ route: string; guarded: boolean; permission: RoutePermission | undefined }> = [];
    for (const mod of t.cp.app.get(ModulesContainer).values()) {
      for (const wrapper of mod.controllers.values()) {
        const ctl = wrapper.metatype as (new (...a: never[]) => unknown) | undefined;
        if (!ctl) continue;
        const base = String(Reflect.getMetadata(PATH_METADATA, ctl) ?? '');
        for (const name of Object.getOwnPropertyNames(ctl.prototype)) {
          const handler = (ctl.prototype as Record<string, unknown>)[name];
          if (name === 'constructor' || typeof handler !== 'function' || Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
          const sub = String(Reflect.getMetadata(PATH_METADATA, handler));
          const path = `/${[base, sub].map((p) => p.replace(/^\/|\/$/g, '')).filter(Boolean).join('/')}`.replace(/:(\w+)/g, '{$1}');
          if (!path.startsWith('/v1/')) continue;
          const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number];
          const guards = [...(Reflect.getMetadata(GUARDS_METADATA, ctl) ?? []), ...(Reflect.getMetadata(GUARDS_METADATA, handler) ?? [])];
          out.push({ route: `${method} ${path}`, guarded: guards.includes(AdminAuthGuard), permission: Reflect.getMetadata(PERMISSION_KEY, handler) ?? Reflect.getMetadata(PERMISSION_KEY, ctl) });
        }
      }
    }
    return out;
  };

  it('declares a permission and AdminAuthGuard on every /v1 route, and this matrix covers each one (so does the OpenAPI document)', async () => {
    const served = servedRoutes();
    expect(served.length).toBeGreaterThanOrEqual(28);
    expect(served.filter((r) => !r.guarded || !r.permission).map((r) => r.route)).toEqual([]);
    expect(served.map((r) => r.route).sort()).toEqual(rows.map((r) => r.route).sort());
    const doc = (await t.api('GET', '/docs/openapi.json', undefined, as(null))).body as { paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>> };
    const documented = Object.entries(doc.paths).filter(([p]) => p.startsWith('/v1/')).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(served.map((r) => r.route).sort());
    for (const [p, item] of Object.entries(doc.paths).filter(([x]) => x.startsWith('/v1/'))) {
      for (const [m, op] of Object.entries(item)) expect({ route: `${m} ${p}`, forbidden: op.responses['403']?.description }).toEqual({ route: `${m} ${p}`, forbidden: expect.stringContaining('FORBIDDEN') });
    }
  });

  it('lets each role call exactly its routes: allowed gets the route\'s own status, refused gets 403 FORBIDDEN', async () => {
    const got: string[] = [];
    const want: string[] = [];
    let n = 0;
    for (const row of rows) {
      for (const role of ROLES) {
        const res = await row.call(ops[role].token, n++);
        const allowed = row.allowed.includes(role);
        want.push(`${row.route} ${role}: ${allowed ? `ok ${row.ok.join('|')}` : '403 FORBIDDEN'}`);
        got.push(`${row.route} ${role}: ${allowed ? (row.ok.includes(res.status) ? `ok ${row.ok.join('|')}` : `${res.status} ${JSON.stringify(res.body?.error ?? '')}`) : `${res.status} ${res.body?.error?.code}`}`);
        if (!allowed && res.status === 403) {
          expect(Object.keys(res.body)).toEqual(['error']);
          expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', message: expect.stringContaining(role), requestId: expect.any(String), details: { role } });
        }
      }
    }
    expect(got).toEqual(want);
  });

  it('lets break-glass ADMIN_TOKEN call every route', async () => {
    let n = 1000;
    const got = [];
    for (const row of rows) {
      const res = await row.call(t.config.ADMIN_TOKEN, n++);
      got.push(`${row.route}: ${row.ok.includes(res.status) ? 'ok' : res.status}`);
    }
    expect(got).toEqual(rows.map((r) => `${r.route}: ok`));
  });

  it('lets every role read itself and manage its own tokens, but not change its own role or touch another operator\'s tokens', async () => {
    for (const role of ROLES) {
      const me = ops[role];
      const k = as(me.token);
      expect((await t.api('GET', `/v1/operators/${me.id}`, undefined, k)).body).toMatchObject({ id: me.id, role });
      const mine = await newToken(me.id, 'second', 7, me.token);
      expect((await t.api('GET', `/v1/operators/${me.id}/tokens`, undefined, k)).body.items.map((x: { id: string }) => x.id)).toContain(mine.id);
      expect((await t.api('DELETE', `/v1/operators/${me.id}/tokens/${mine.id}`, undefined, k)).body.status).toBe('revoked');
      if (role === 'admin') continue;
      expect((await t.api('PATCH', `/v1/operators/${me.id}`, { role: 'admin' }, k)).status).toBe(403);
      expect((await t.api('GET', `/v1/operators/${ops.admin.id}/tokens`, undefined, k)).status).toBe(403);
      expect((await t.api('POST', `/v1/operators/${ops.admin.id}/tokens`, { name: 'steal' }, k)).status).toBe(403);
      expect((await t.api('DELETE', `/v1/operators/${ops.admin.id}/tokens/${ops.admin.tokenId}`, undefined, k)).status).toBe(403);
    }
    expect((await t.api('GET', '/v1/tenants', undefined, as(ops.admin.token))).status).toBe(200); // the admin's token survived
  });

  it('answers 401 UNAUTHORIZED for no token, a malformed, unknown or wrong-secret token, on every route', async () => {
    const known = ops.viewer.token;
    const wrongSecret = known.slice(0, -4) + (known.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const unknown = `silo_op_${'0'.repeat(12)}_${'A'.repeat(43)}`;
    for (const token of [null, 'nope', unknown, wrongSecret, `${t.config.ADMIN_TOKEN}x`]) {
      for (const row of rows) {
        const res = await row.call(token as string, 2000);
        expect({ route: row.route, token, status: res.status, code: res.body?.error?.code }).toEqual({ route: row.route, token, status: 401, code: 'UNAUTHORIZED' });
      }
    }
  });

  it('issues a token once, lists it by prefix only, stores only its SHA-256, and enforces expiry and revocation', async () => {
    const op = await newOperator('lifecycle@example.com', 'viewer');
    const issued = await newToken(op.id, 'ci', 30);
    expect(issued.token).toMatch(/^silo_op_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(issued.token.startsWith(`${issued.prefix}_`)).toBe(true);
    expect(new Date(issued.expiresAt).getTime() - Date.now()).toBeGreaterThan(29.9 * 86_400_000);
    expect((await bg('POST', `/v1/operators/${op.id}/tokens`, { name: 'bad', expiresInDays: 0 })).status).toBe(400);
    expect((await bg('POST', `/v1/operators/${op.id}/tokens`, { name: 'bad', expiresInDays: 366 })).status).toBe(400);

    const listed = await bg('GET', `/v1/operators/${op.id}/tokens`);
    expect(listed.body.items).toEqual([expect.objectContaining({ id: issued.id, prefix: issued.prefix, name: 'ci', status: 'active' })]);
    const secret = issued.token.split('_').pop() as string;
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect(Object.keys(listed.body.items[0])).not.toContain('token');
    expect(Object.keys(listed.body.items[0])).not.toContain('hash');
    const [row] = await t.sql<{ hash: string }>('SELECT hash FROM operator_tokens WHERE id = $1', [issued.id]);
    expect(row.hash).toBe(createHash('sha256').update(issued.token).digest('hex'));
    expect(JSON.stringify(await t.sql('SELECT * FROM operator_tokens'))).not.toContain(secret);

    const k = as(issued.token);
    expect((await t.api('GET', '/v1/tenants', undefined, k)).status).toBe(200);
    await t.sql(`UPDATE operator_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [issued.id]);
    expect((await t.api('GET', '/v1/tenants', undefined, k)).status).toBe(401);
    expect((await bg('GET', `/v1/operators/${op.id}/tokens`)).body.items[0].status).toBe('expired');

    const second = await newToken(op.id, 'second');
    expect((await t.api('GET', '/v1/tenants', undefined, as(second.token))).status).toBe(200);
    const revoked = await bg('DELETE', `/v1/operators/${op.id}/tokens/${second.id}`);
    expect(revoked.body).toMatchObject({ id: second.id, status: 'revoked', revokedAt: expect.any(String) });
    expect((await t.api('GET', '/v1/tenants', undefined, as(second.token))).status).toBe(401);
    expect((await bg('DELETE', `/v1/operators/${op.id}/tokens/${second.id}`)).body.revokedAt).toBe(revoked.body.revokedAt); // idempotent
    expect((await bg('DELETE', `/v1/operators/${op.id}/tokens/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await bg('DELETE', `/v1/operators/${scratch}/tokens/${issued.id}`)).status).toBe(404); // another operator's token
    expect((await bg('GET', '/v1/operators/not-a-uuid/tokens')).status).toBe(404);
  });

  it('stops a disabled operator\'s tokens at once, and re-enabling does not bring them back', async () => {
    const op = await newOperator('leaver@example.com', 'operator');
    const [a, b] = [await newToken(op.id, 'a'), await newToken(op.id, 'b')];
    expect((await t.api('GET', '/v1/tenants', undefined, as(a.token))).status).toBe(200);
    const disabled = await t.api('PATCH', `/v1/operators/${op.id}`, { disabled: true }, as(ops.admin.token));
    expect(disabled.body).toMatchObject({ disabled: true, disabledAt: expect.any(String) });
    for (const tok of [a, b]) expect((await t.api('GET', '/v1/tenants', undefined, as(tok.token))).status).toBe(401);
    expect((await bg('GET', `/v1/operators/${op.id}/tokens`)).body.items.map((x: { status: string }) => x.status)).toEqual(['revoked', 'revoked']);
    expect((await bg('POST', `/v1/operators/${op.id}/tokens`, { name: 'c' })).status).toBe(409);

    expect((await bg('PATCH', `/v1/operators/${op.id}`, { disabled: false })).body.disabled).toBe(false);
    expect((await t.api('GET', '/v1/tenants', undefined, as(a.token))).status).toBe(401);
    expect((await t.api('GET', '/v1/tenants', undefined, as((await newToken(op.id, 'fresh')).token))).status).toBe(200);

    // The disabled flag itself is checked on every request, not only through the revocation.
    const d = await newToken(op.id, 'd');
    await t.sql('UPDATE operators SET disabled_at = now() WHERE id = $1', [op.id]);
    expect((await t.api('GET', '/v1/tenants', undefined, as(d.token))).status).toBe(401);
    await t.sql('UPDATE operators SET disabled_at = NULL WHERE id = $1', [op.id]);

    // A role change counts from the next request.
    const c = await newToken(op.id, 'c');
    expect((await t.api('POST', `/v1/tenants/${tenant}/rotate-credentials`, undefined, as(c.token))).status).toBe(202);
    await bg('PATCH', `/v1/operators/${op.id}`, { role: 'viewer' });
    expect((await t.api('POST', `/v1/tenants/${tenant}/rotate-credentials`, undefined, as(c.token))).status).toBe(403);
  });

  it('validates operators: email unique whatever its case, a known role, no unknown fields', async () => {
    expect((await bg('POST', '/v1/operators', { email: 'ADMIN.person@example.com', name: 'Dup', role: 'viewer' })).status).toBe(409);
    expect((await bg('POST', '/v1/operators', { email: 'x@example.com', name: 'X', role: 'root' })).status).toBe(400);
    expect((await bg('POST', '/v1/operators', { email: 'not-an-email', name: 'X', role: 'viewer' })).status).toBe(400);
    expect((await bg('PATCH', `/v1/operators/${scratch}`, { role: 'superuser' })).status).toBe(400);
    expect((await bg('PATCH', `/v1/operators/${scratch}`, { email: 'new@example.com' })).status).toBe(400);
    expect((await bg('GET', '/v1/operators/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it("attributes every admin action in the audit log: an operator's id, email and token, break-glass as such, the worker as system", async () => {
    const otto = ops.operator;
    const k = as(otto.token);
    expect((await t.api('POST', `/v1/tenants/${attr}/suspend`, { reason: 'attribution' }, k)).status).toBe(200);
    expect((await bg('POST', `/v1/tenants/${attr}/resume`)).status).toBe(200);
    expect((await t.api('POST', `/v1/tenants/${attr}/api-keys`, { name: 'attr' }, k)).status).toBe(201);
    expect((await t.api('POST', `/v1/tenants/${attr}/rotate-credentials`, undefined, k)).status).toBe(202);
    await t.drainJobs();

    const history = (await t.api('GET', `/v1/tenants/${attr}/history`, undefined, as(ops.viewer.token))).body.items as Array<{ action: string; to: string | null; actor: Record<string, unknown> }>;
    const ottoActor = { kind: 'operator', operatorId: otto.id, email: otto.email, tokenId: otto.tokenId, tokenPrefix: otto.prefix };
    const none = { operatorId: null, email: null, tokenId: null, tokenPrefix: null };
    const find = (action: string, to?: string) => history.find((h) => h.action === action && (to === undefined || h.to === to));
    expect(otto.email).toBe('operator.person@Example.com');
    expect(find('status_changed', 'suspended')?.actor).toEqual(ottoActor);
    expect(find('status_changed', 'active')?.actor).toEqual({ kind: 'break-glass', ...none }); // the resume
    expect(find('api_key_created')?.actor).toEqual(ottoActor);
    expect(find('credential_rotation_requested')?.actor).toEqual(ottoActor);
    expect(find('credentials_rotated')?.actor).toEqual({ kind: 'system', ...none }); // the job, run by the worker
    expect(find('created')?.actor).toEqual({ kind: 'break-glass', ...none });
    expect(history.every((h) => h.actor && typeof h.actor.kind === 'string')).toBe(true);

    // Operator management is audited too, with no tenant, and the fleet audit log filters by operator.
    const admin = ops.admin;
    const made = (await t.api('POST', '/v1/operators', { email: 'audited@example.com', name: 'Audited', role: 'billing' }, as(admin.token))).body;
    await t.api('PATCH', `/v1/operators/${made.id}`, { role: 'viewer' }, as(admin.token));
    const byAdmin = (await t.api('GET', `/v1/audit?operator=${admin.id}&limit=10`, undefined, as(admin.token))).body.items as Array<{ action: string; tenantId: string | null; actor: Record<string, unknown>; detail: Record<string, unknown> }>;
    expect(byAdmin.slice(0, 2).map((e) => [e.action, e.tenantId, e.detail.operatorId, e.actor.email])).toEqual([
      ['operator_role_changed', null, made.id, admin.email],
      ['operator_created', null, made.id, admin.email],
    ]);
    const [created] = await t.sql<Record<string, unknown>>(`SELECT actor_kind, actor_operator_id, actor_email, actor_token_id, actor_token_prefix FROM audit_log WHERE action = 'operator_created' AND detail->>'operatorId' = $1`, [made.id]);
    expect(created).toEqual({ actor_kind: 'operator', actor_operator_id: admin.id, actor_email: admin.email, actor_token_id: admin.tokenId, actor_token_prefix: admin.prefix });
    const breakGlass = (await bg('GET', `/v1/audit?tenant=${attr}&limit=100`)).body.items as Array<{ actor: { kind: string } }>;
    expect(new Set(breakGlass.map((e) => e.actor.kind))).toEqual(new Set(['operator', 'break-glass', 'system']));
    expect((await bg('GET', '/v1/audit?operator=nope')).status).toBe(400);
  });
});
