import { stripeEvent } from './support/stripe-fixtures';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { deliver } from './support/stripe';

/**
 * The OpenAPI document at /docs/openapi.json, read from a running control plane: every admin route
 * declares its success schema and its errors, and real responses conform to the declared schemas
 * (so a handler that grows a field, or a schema that loses one, fails here).
 */

type Schema = {
  $ref?: string; allOf?: Schema[]; type?: string; nullable?: boolean; enum?: unknown[]; format?: string;
  properties?: Record<string, Schema>; required?: string[]; items?: Schema; additionalProperties?: boolean | Schema;
};
type Response = { description?: string; content?: { 'application/json'?: { schema?: Schema } } };
type Operation = { parameters?: Array<{ in: string; name: string }>; requestBody?: unknown; responses: Record<string, Response>; security?: Array<Record<string, string[]>> };
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, Schema>; securitySchemes: Record<string, Record<string, unknown>> } };

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('OpenAPI document', () => {
  let t: TestControlPlane;
  let doc: Doc;
  const ops: Array<{ method: string; path: string; op: Operation }> = [];

  beforeAll(async () => {
    t = await startTestControlPlane();
    const res = await t.api('GET', '/docs/openapi.json', undefined, { token: null });
    expect(res.status).toBe(200);
    doc = res.body as Doc;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) if (item[method]) ops.push({ method, path, op: item[method] });
    }
  });
  afterAll(async () => t.close());

  /** Follows $ref and a single-element allOf (how @nestjs/swagger writes a nullable nested class). */
  const deref = (s: Schema): Schema => {
    if (s.$ref) return deref(doc.components.schemas[s.$ref.replace('#/components/schemas/', '')]);
    if (s.allOf?.length === 1) {
      const { allOf, ...rest } = s;
      return { ...deref(allOf[0]), ...rest, type: deref(allOf[0]).type };
    }
    return s;
  };

  /** Problems of `value` against `schema`: unknown keys, missing required keys, wrong types, values outside an enum. */
  const conform = (value: unknown, schema: Schema, at = '$', problems: string[] = []): string[] => {
    const s = deref(schema);
    if (value === null) {
      if (!s.nullable && !schema.nullable) problems.push(`${at}: null, schema not nullable`);
      return problems;
    }
    if (s.enum && !s.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in enum`);
    const actual = Array.isArray(value) ? 'array' : typeof value;
    const expected = s.type === 'integer' ? 'number' : s.type;
    if (expected && expected !== actual) {
      problems.push(`${at}: ${actual}, schema says ${s.type}`);
      return problems;
    }
    if (s.format === 'date-time' && typeof value === 'string' && Number.isNaN(Date.parse(value))) problems.push(`${at}: not a date-time`);
    if (Array.isArray(value) && s.items) value.forEach((v, i) => conform(v, s.items as Schema, `${at}[${i}]`, problems));
    if (actual === 'object' && !Array.isArray(value) && s.properties) {
      const obj = value as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        if (s.properties[k]) conform(obj[k], s.properties[k], `${at}.${k}`, problems);
        else if (!s.additionalProperties) problems.push(`${at}.${k}: not in the schema`);
      }
      for (const k of s.required ?? []) if (!(k in obj)) problems.push(`${at}.${k}: required, missing`);
    }
    return problems;
  };

  const operation = (method: string, path: string): Operation => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${path} is not in the document`);
    return op;
  };

  /** Calls the route and checks the real response against the schema documented for its status. */
  const call = async (method: string, docPath: string, realPath: string, body?: unknown, opts?: { token?: string | null }, cp: TestControlPlane = t) => {
    const res = await cp.api(method, realPath, body, opts);
    const documented = operation(method, docPath).responses[String(res.status)];
    expect({ route: `${method} ${docPath}`, status: res.status, documented: Boolean(documented) }).toEqual({ route: `${method} ${docPath}`, status: res.status, documented: true });
    const schema = documented.content?.['application/json']?.schema as Schema;
    expect({ route: `${method} ${docPath} ${res.status}`, problems: conform(res.body, schema) }).toEqual({ route: `${method} ${docPath} ${res.status}`, problems: [] });
    if (res.status >= 400) expect(documented.description).toContain(res.body.error.code);
    return res;
  };

  it('describes the admin token as a plain bearer token, not a JWT', () => {
    const scheme = doc.components.securitySchemes.bearer;
    expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(scheme).not.toHaveProperty('bearerFormat');
    expect(scheme.description).toMatch(/ADMIN_TOKEN/);
    for (const s of Object.values(doc.components.securitySchemes)) expect(s).not.toHaveProperty('bearerFormat');
  });

  it('gives every /v1 operation the bearer scheme, a 2xx schema and a 401', () => {
    const v1 = ops.filter((o) => o.path.startsWith('/v1/'));
    expect(v1.length).toBeGreaterThanOrEqual(20);
    for (const { method, path, op } of v1) {
      const where = `${method.toUpperCase()} ${path}`;
      expect({ where, security: op.security }).toEqual({ where, security: [{ bearer: [] }] });
      const ok = Object.entries(op.responses).filter(([status]) => /^2\d\d$/.test(status));
      expect({ where, ok: ok.length }).toEqual({ where, ok: 1 });
      expect({ where, schema: Boolean(ok[0][1].content?.['application/json']?.schema) }).toEqual({ where, schema: true });
      expect({ where, has401: Boolean(op.responses['401']) }).toEqual({ where, has401: true });
    }
  });

  it('declares 404 on routes with a path parameter and 400 on routes with a body or a query', () => {
    for (const { method, path, op } of ops.filter((o) => o.path.startsWith('/v1/'))) {
      const where = `${method.toUpperCase()} ${path}`;
      const params = op.parameters ?? [];
      if (params.some((p) => p.in === 'path')) expect({ where, has404: Boolean(op.responses['404']) }).toEqual({ where, has404: true });
      if (op.requestBody || params.some((p) => p.in === 'query')) expect({ where, has400: Boolean(op.responses['400']) }).toEqual({ where, has400: true });
      if (op.requestBody) expect({ where, has413: Boolean(op.responses['413']) }).toEqual({ where, has413: true });
    }
  });

  it('uses one error schema, { error: { code, message, requestId?, details? } }, for every error response', () => {
    const error = deref(doc.components.schemas.ErrorResponse);
    expect(error.required).toEqual(['error']);
    const detail = deref(error.properties!.error);
    expect(detail.required).toEqual(expect.arrayContaining(['code', 'message']));
    expect(Object.keys(detail.properties!)).toEqual(expect.arrayContaining(['code', 'message', 'requestId', 'details']));
    expect(detail.properties!.code.enum).toEqual(expect.arrayContaining(['VALIDATION_FAILED', 'UNAUTHORIZED', 'TENANT_NOT_FOUND', 'INVALID_TRANSITION']));
    for (const { method, path, op } of ops) {
      for (const [status, r] of Object.entries(op.responses)) {
        if (Number(status) >= 400) expect({ at: `${method} ${path} ${status}`, schema: r.content?.['application/json']?.schema }).toEqual({ at: `${method} ${path} ${status}`, schema: { $ref: '#/components/schemas/ErrorResponse' } });
      }
    }
  });

  it('matches what the tenant routes really return, successes and errors', async () => {
    await call('GET', '/v1/tenants', '/v1/tenants', undefined, { token: null }); // 401
    await call('GET', '/v1/tenants', '/v1/tenants?status=bogus'); // 400
    const created = await call('POST', '/v1/tenants', '/v1/tenants', { name: 'Docs Co', slug: 'docs-co' });
    expect(created.status).toBe(202);
    await call('POST', '/v1/tenants', '/v1/tenants', { name: 'Docs Co', slug: 'docs-co' }); // 409 TENANT_SLUG_TAKEN
    await call('POST', '/v1/tenants', '/v1/tenants', { name: '', nope: 1 }); // 400 with details.problems
    const id = created.body.id as string;
    await t.drainJobs(); // provisioned: connection, schema and jobs are filled in
    const detail = await call('GET', '/v1/tenants/{id}', `/v1/tenants/${id}`);
    expect(detail.body.status).toBe('active');
    expect(detail.body.connection).toBeTruthy();
    await call('GET', '/v1/tenants/{id}', '/v1/tenants/no-such-tenant'); // 404
    expect((await call('GET', '/v1/tenants', '/v1/tenants?limit=5')).body.items).toHaveLength(1);
    await call('PATCH', '/v1/tenants/{id}', `/v1/tenants/${id}`, { customDomain: 'db.docs-co.example.com' });
    await call('POST', '/v1/tenants/{id}/retry', `/v1/tenants/${id}/retry`); // 409 INVALID_TRANSITION (not failed)
    expect((await call('POST', '/v1/tenants/{id}/rotate-credentials', `/v1/tenants/${id}/rotate-credentials`)).status).toBe(202);
    const suspended = await call('POST', '/v1/tenants/{id}/suspend', `/v1/tenants/${id}/suspend`, { reason: 'docs test' });
    expect(suspended.body.suspension).toMatchObject({ by: 'admin' });
    await call('POST', '/v1/tenants/{id}/resume', `/v1/tenants/${id}/resume`);
    await call('POST', '/v1/tenants/{id}/offboard', `/v1/tenants/${id}/offboard`, {}); // 409 TENANT_NOT_ACTIVE
    expect((await call('POST', '/v1/tenants/{id}/offboard', `/v1/tenants/${id}/offboard`, { at: new Date(Date.now() + 86_400_000).toISOString() })).status).toBe(202);
    await call('DELETE', '/v1/tenants/{id}/offboarding', `/v1/tenants/${id}/offboarding`);
    await t.drainJobs();
    expect((await call('GET', '/v1/tenants/{id}/history', `/v1/tenants/${id}/history`)).body.items.length).toBeGreaterThan(3);
    await call('GET', '/v1/tenants/{id}/history', `/v1/tenants/${id}/history?before=x`); // 400
    expect((await call('GET', '/v1/tenants/{id}/jobs', `/v1/tenants/${id}/jobs`)).body.items[0].runs.length).toBeGreaterThan(0);
  });

  it('matches what the API key, periodic task and webhook event routes really return', async () => {
    const tenant = (await call('POST', '/v1/tenants', '/v1/tenants', { name: 'Keys Co', slug: 'keys-co' })).body.id as string;
    const base = '/v1/tenants/{id}/api-keys';
    const issued = await call('POST', base, `/v1/tenants/${tenant}/api-keys`, { name: 'app' });
    expect(issued.status).toBe(201);
    await call('GET', base, `/v1/tenants/${tenant}/api-keys`);
    await call('GET', base, '/v1/tenants/nope-nope/api-keys'); // 404 TENANT_NOT_FOUND
    const rotated = await call('POST', `${base}/{keyId}/rotate`, `/v1/tenants/${tenant}/api-keys/${issued.body.id}/rotate`, { graceSeconds: 0 });
    expect(rotated.body.replaces).toBe(issued.body.id);
    await call('POST', `${base}/{keyId}/rotate`, `/v1/tenants/${tenant}/api-keys/${issued.body.id}/rotate`, {}); // 409 CONFLICT (revoked)
    await call('DELETE', `${base}/{keyId}`, `/v1/tenants/${tenant}/api-keys/${rotated.body.id}`);
    await call('DELETE', `${base}/{keyId}`, `/v1/tenants/${tenant}/api-keys/not-a-uuid`); // 400
    await call('DELETE', `${base}/{keyId}`, `/v1/tenants/${tenant}/api-keys/00000000-0000-4000-8000-000000000000`); // 404 NOT_FOUND

    const event = stripeEvent('customer.updated', { id: 'cus_Docs', object: 'customer' });
    expect((await deliver(t, event)).status).toBe(200);
    expect((await call('GET', '/v1/webhook-events', '/v1/webhook-events')).body.items).toHaveLength(1);
    await call('GET', '/v1/webhook-events', '/v1/webhook-events?tenant=not-a-uuid'); // 400
    await call('GET', '/v1/webhook-events/{id}', `/v1/webhook-events/${event.id}`);
    await call('GET', '/v1/webhook-events/{id}', '/v1/webhook-events/evt_nope'); // 404
    expect((await call('GET', '/v1/webhook-events/{id}/verification', `/v1/webhook-events/${event.id}/verification`)).body.verified).toBe(true);
  });

  it('matches what the operator, token and audit routes really return, a 403 included', async () => {
    const op = await call('POST', '/v1/operators', '/v1/operators', { email: 'docs@example.com', name: 'Docs', role: 'viewer' });
    expect(op.status).toBe(201);
    await call('POST', '/v1/operators', '/v1/operators', { email: 'DOCS@example.com', name: 'Docs', role: 'viewer' }); // 409
    await call('POST', '/v1/operators', '/v1/operators', { email: 'docs', name: 'Docs', role: 'root' }); // 400
    await call('GET', '/v1/operators', '/v1/operators');
    await call('GET', '/v1/operators/{id}', `/v1/operators/${op.body.id}`);
    await call('GET', '/v1/operators/{id}', '/v1/operators/00000000-0000-4000-8000-000000000000'); // 404
    await call('PATCH', '/v1/operators/{id}', `/v1/operators/${op.body.id}`, { name: 'Docs Two' });
    const tok = await call('POST', '/v1/operators/{id}/tokens', `/v1/operators/${op.body.id}/tokens`, { name: 'docs', expiresInDays: 1 });
    expect(tok.status).toBe(201);
    await call('GET', '/v1/operators/{id}/tokens', `/v1/operators/${op.body.id}/tokens`);
    expect((await call('POST', '/v1/tenants', '/v1/tenants', { name: 'Refused Co' }, { token: tok.body.token })).status).toBe(403);
    await call('DELETE', '/v1/operators/{id}/tokens/{tokenId}', `/v1/operators/${op.body.id}/tokens/${tok.body.id}`);
    await call('PATCH', '/v1/operators/{id}', `/v1/operators/${op.body.id}`, { disabled: true });
    await call('POST', '/v1/operators/{id}/tokens', `/v1/operators/${op.body.id}/tokens`, { name: 'docs' }); // 409 (disabled)
    expect((await call('GET', '/v1/audit', '/v1/audit')).body.items.length).toBeGreaterThan(0);
    await call('GET', '/v1/audit', '/v1/audit?operator=x'); // 400
  });

  it('matches what GET /v1/periodic-tasks really returns once the tasks have run', async () => {
    const cp = await startTestControlPlane({ JOB_WORKER_ENABLED: 'true', RECONCILE_INTERVAL_SECONDS: '1', STORAGE_SWEEP_INTERVAL_SECONDS: '1' });
    try {
      let items: Array<{ lastRun: { outcome: string | null } | null }> = [];
      for (let i = 0; i < 60 && !(items.length > 0 && items.every((x) => x.lastRun?.outcome)); i++) {
        items = (await cp.api('GET', '/v1/periodic-tasks')).body.items;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(items.length).toBeGreaterThan(0);
      expect(items.every((x) => x.lastRun?.outcome)).toBe(true);
      await call('GET', '/v1/periodic-tasks', '/v1/periodic-tasks', undefined, undefined, cp);
    } finally {
      await cp.close();
    }
  });
});
