import { loadControlPlaneConfig } from '../control-plane/config';
import { consoleCall } from './support/console';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { freePort, OidcTestAccount, startOidcProvider, TestOidcProvider } from './support/oidc-provider';

const CLIENT = { client_id: 'silo-console', client_secret: 'test-oidc-client-secret-do-not-log' };

/** Cookies by name, as a browser would keep them for one site (paths ignored: the test talks to one flow at a time). */
class Jar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = (pair as string).indexOf('=');
      const name = (pair as string).slice(0, i);
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, (pair as string).slice(i + 1));
    }
  }
  get(name: string): string | undefined {
    return this.cookies.get(name);
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

interface SsoResult {
  status: number;
  body: string;
  /** `silo_console=<id>` when a session was set. */
  cookie: string | null;
  authorizeUrl: URL;
  /** The callback URL and pending-sign-in cookie as sent, to replay them. */
  callback: URL;
  pending: string | undefined;
}

/**
 * A browser's SSO sign-in over HTTP: Silo's /console/oidc/login, the provider's redirects (its
 * login and consent complete for `account`), then Silo's callback. `tamper` may rewrite the
 * callback URL or the pending-sign-in cookie before it is sent.
 */
async function ssoSignIn(t: TestControlPlane, p: TestOidcProvider, account: OidcTestAccount, tamper: { callback?: (u: URL) => void; pending?: (v: string) => string | undefined } = {}): Promise<SsoResult> {
  await p.nextLogin(account);
  const silo = new Jar();
  const idp = new Jar();
  const start = await fetch(`${t.url}/console/oidc/login`, { redirect: 'manual' });
  expect(start.status).toBe(303);
  silo.take(start);
  const authorizeUrl = new URL(start.headers.get('location') as string);
  let url = authorizeUrl;
  for (let hops = 0; url.origin === p.issuer; hops++) {
    if (hops > 10) throw new Error('too many redirects at the provider');
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: idp.header() } });
    idp.take(res);
    const loc = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !loc) throw new Error(`provider answered ${res.status} at ${url.pathname}: ${await res.text()}`);
    url = new URL(loc, url);
  }
  expect(url.origin + url.pathname).toBe(`${t.url}/console/oidc/callback`);
  tamper.callback?.(url);
  const pending = silo.get('silo_console_oidc');
  const sent = tamper.pending ? tamper.pending(pending as string) : pending;
  const res = await fetch(url, { redirect: 'manual', headers: sent ? { cookie: `silo_console_oidc=${sent}` } : {} });
  const session = res.headers.getSetCookie().find((c) => c.startsWith('silo_console='));
  return { status: res.status, body: await res.text(), cookie: session ? (session.split(';')[0] as string) : null, authorizeUrl, callback: url, pending: sent };
}

async function csrfOf(t: TestControlPlane, cookie: string): Promise<string> {
  const page = await consoleCall(t, 'GET', '/console/tenants', { cookie });
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.body as string)?.[1];
  if (!csrf) throw new Error('no CSRF token on the page');
  return csrf;
}

/**
 * Console single sign-on (issue #18 item 2) against a real local OpenID provider (`oidc-provider`
 * in a child process), driven over HTTP as a browser would, with the real control plane and database.
 */
describe('console OIDC sign-in', () => {
  let p: TestOidcProvider;
  let t: TestControlPlane; // CONSOLE_OIDC_DEFAULT_ROLE=viewer
  let strict: TestControlPlane; // no default role: unknown emails are refused
  let down: TestControlPlane; // an issuer nobody listens on

  beforeAll(async () => {
    const [port, strictPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    const cb = (n: number) => `http://127.0.0.1:${n}/console/oidc/callback`;
    p = await startOidcProvider({ ...CLIENT, redirect_uris: [cb(port), cb(strictPort)] });
    const env = (n: number) => ({ CONTROL_PLANE_PORT: String(n), CONSOLE_OIDC_ISSUER: p.issuer, CONSOLE_OIDC_CLIENT_ID: CLIENT.client_id, CONSOLE_OIDC_CLIENT_SECRET: CLIENT.client_secret, CONSOLE_OIDC_REDIRECT_URL: cb(n) });
    t = await startTestControlPlane({ ...env(port), CONSOLE_OIDC_DEFAULT_ROLE: 'viewer' });
    strict = await startTestControlPlane(env(strictPort));
    down = await startTestControlPlane({ ...env(0), CONSOLE_OIDC_ISSUER: `http://127.0.0.1:${deadPort}`, CONSOLE_OIDC_REDIRECT_URL: cb(deadPort) });
  });
  afterAll(async () => {
    await Promise.all([t?.close(), strict?.close(), down?.close()]);
    await p?.close();
  });

  const operator = async (cp: TestControlPlane, email: string, role: string) => {
    const op = await cp.api('POST', '/v1/operators', { email, name: email, role });
    expect(op.status).toBe(201);
    return op.body.id as string;
  };

  it('offers "Sign in with SSO" on the sign-in page only when configured', async () => {
    const page = await fetch(`${t.url}/console/login`);
    expect(await page.text()).toContain('href="/console/oidc/login">Sign in with SSO</a>');
    const plain = await startTestControlPlane();
    try {
      expect(await (await fetch(`${plain.url}/console/login`)).text()).not.toContain('/console/oidc/login');
      const off = await fetch(`${plain.url}/console/oidc/login`, { redirect: 'manual' });
      expect(off.status).toBe(404);
      expect(await off.text()).toContain('SSO_NOT_CONFIGURED');
    } finally {
      await plain.close();
    }
  });

  it('signs in a matched operator (email compared case-insensitively) with code + PKCE, state and nonce; the session is kind sso and carries their role', async () => {
    const id = await operator(t, 'Ana.Lima@Example.com', 'operator');
    const r = await ssoSignIn(t, p, { sub: 'ana-1', email: 'ana.lima@example.com', email_verified: true, name: 'Ana' });
    expect(r.status).toBe(200);
    expect(r.body).toContain('url=/console/tenants');
    expect(r.cookie).toMatch(/^silo_console=[A-Za-z0-9_-]{43}$/);
    const q = r.authorizeUrl.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toBeTruthy();
    expect(q.get('nonce')).toBeTruthy();
    expect(q.get('scope')).toBe('openid email profile');

    const cookie = r.cookie as string;
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie })).status).toBe(200);
    const ops = await consoleCall(t, 'GET', '/v1/operators', { cookie });
    expect(ops.status).toBe(403);
    expect(ops.body.error.details).toEqual({ permission: 'operators:read', role: 'operator' });
    const page = await consoleCall(t, 'GET', '/console/tenants', { cookie });
    expect(page.body).toContain('Ana.Lima@Example.com');
    const [row] = await t.sql<{ kind: string; operator_id: string; token_id: string | null }>('SELECT kind, operator_id, token_id FROM console_sessions WHERE operator_id = $1', [id]);
    expect(row).toEqual({ kind: 'sso', operator_id: id, token_id: null });

    // An action through the SSO session is the operator's, with no token.
    const created = await consoleCall(t, 'POST', '/v1/tenants', { cookie, csrf: await csrfOf(t, cookie), body: { name: 'Sso Co', slug: 'sso-co' } });
    expect(created.status).toBe(202);
    const [audit] = await t.sql<Record<string, unknown>>(`SELECT actor_kind, actor_operator_id, actor_email, actor_token_id FROM audit_log WHERE tenant_id = $1 ORDER BY id LIMIT 1`, [created.body.id]);
    expect(audit).toEqual({ actor_kind: 'operator', actor_operator_id: id, actor_email: 'Ana.Lima@Example.com', actor_token_id: null });
  });

  it('ends an SSO session on the next request once the operator is disabled, and refuses their next SSO sign-in', async () => {
    const id = await operator(t, 'bo@example.com', 'viewer');
    const r = await ssoSignIn(t, p, { sub: 'bo-1', email: 'bo@example.com', email_verified: true });
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: r.cookie as string })).status).toBe(200);
    expect((await t.api('PATCH', `/v1/operators/${id}`, { disabled: true })).status).toBe(200);
    expect((await consoleCall(t, 'GET', '/v1/tenants', { cookie: r.cookie as string })).status).toBe(401);
    const again = await ssoSignIn(t, p, { sub: 'bo-1', email: 'bo@example.com', email_verified: true });
    expect(again.status).toBe(403);
    expect(again.cookie).toBeNull();
    expect(again.body).toContain('SSO_OPERATOR_DISABLED');
    expect(again.body).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });

  it('refuses an email the provider does not mark verified', async () => {
    await operator(t, 'cy@example.com', 'admin');
    const r = await ssoSignIn(t, p, { sub: 'cy-1', email: 'cy@example.com', email_verified: false });
    expect(r.status).toBe(403);
    expect(r.cookie).toBeNull();
    expect(r.body).toContain('SSO_EMAIL_UNVERIFIED');
  });

  it('provisions an unknown email with CONSOLE_OIDC_DEFAULT_ROLE, audited as system / console-sso', async () => {
    const r = await ssoSignIn(t, p, { sub: 'dee-42', email: 'dee@example.com', email_verified: true, name: 'Dee Newcomer' });
    expect(r.status).toBe(200);
    const list = await t.api('GET', '/v1/operators');
    const dee = list.body.items.find((o: { email: string }) => o.email === 'dee@example.com');
    expect(dee).toMatchObject({ name: 'Dee Newcomer', role: 'viewer', disabled: false });
    const ops = await consoleCall(t, 'GET', '/v1/operators', { cookie: r.cookie as string });
    expect(ops.body.error.details.role).toBe('viewer');
    const audit = await t.sql<Record<string, unknown>>(`SELECT actor_kind, actor_operator_id, cause_type, cause_id, detail FROM audit_log WHERE action = 'operator_created' AND detail->>'operatorId' = $1`, [dee.id]);
    expect(audit).toEqual([{ actor_kind: 'system', actor_operator_id: null, cause_type: 'system', cause_id: 'console-sso', detail: { operatorId: dee.id, email: 'dee@example.com', role: 'viewer', via: 'sso', issuer: p.issuer, subject: 'dee-42' } }]);
    // The second sign-in matches the operator it made.
    expect((await ssoSignIn(t, p, { sub: 'dee-42', email: 'DEE@example.com', email_verified: true })).status).toBe(200);
    expect((await t.api('GET', '/v1/operators')).body.items.filter((o: { email: string }) => o.email.toLowerCase() === 'dee@example.com')).toHaveLength(1);
  });

  it('refuses an unknown email when no default role is set, creating nobody', async () => {
    const r = await ssoSignIn(strict, p, { sub: 'eve-1', email: 'eve@example.com', email_verified: true });
    expect(r.status).toBe(403);
    expect(r.cookie).toBeNull();
    expect(r.body).toContain('SSO_UNKNOWN_OPERATOR');
    expect((await strict.api('GET', '/v1/operators')).body.items).toEqual([]);
  });

  it('refuses a tampered state, a forged or missing pending-sign-in cookie, and a provider error', async () => {
    await operator(t, 'fay@example.com', 'viewer');
    const acct = { sub: 'fay-1', email: 'fay@example.com', email_verified: true };
    const cases: Array<Parameters<typeof ssoSignIn>[3]> = [
      { callback: (u) => u.searchParams.set('state', 'x' + u.searchParams.get('state')) },
      { pending: (v) => v.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) },
      { pending: () => undefined },
    ];
    for (const tamper of cases) {
      const r = await ssoSignIn(t, p, acct, tamper);
      expect(r.status).toBe(400);
      expect(r.cookie).toBeNull();
      expect(r.body).toContain('SSO_STATE_INVALID');
    }
    const denied = await ssoSignIn(t, p, acct, { callback: (u) => { u.searchParams.delete('code'); u.searchParams.set('error', 'access_denied'); } });
    expect(denied.status).toBe(401);
    expect(denied.body).toContain('SSO_DENIED');
    // A code replayed (with its own valid cookie) is refused by the provider: the exchange fails, no session.
    const first = await ssoSignIn(t, p, acct);
    expect(first.status).toBe(200);
    const replay = await fetch(first.callback, { redirect: 'manual', headers: { cookie: `silo_console_oidc=${first.pending}` } });
    expect(replay.status).toBe(401);
    expect(replay.headers.getSetCookie().some((c) => c.startsWith('silo_console='))).toBe(false);
    expect(await replay.text()).toContain('SSO_FAILED');
  });

  it('answers 503 SSO_UNAVAILABLE when the issuer cannot be reached (the page names no secret)', async () => {
    const res = await fetch(`${down.url}/console/oidc/login`, { redirect: 'manual' });
    expect(res.status).toBe(503);
    const body = await res.text();
    expect(body).toContain('SSO_UNAVAILABLE');
    expect(body).toContain('Sign in with SSO');
    expect(body).not.toContain(CLIENT.client_secret);
  });

  it('validates CONSOLE_OIDC_* at boot: all four or none, a known default role, the callback path', () => {
    const base = { DATABASE_URL: 'postgres://u@127.0.0.1/db', ADMIN_TOKEN: 'x'.repeat(24), SILO_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') };
    expect(() => loadControlPlaneConfig(base)).not.toThrow();
    let msg = '';
    try {
      loadControlPlaneConfig({ ...base, CONSOLE_OIDC_ISSUER: 'https://idp.example.com', CONSOLE_OIDC_CLIENT_SECRET: 'very-secret-value' });
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toMatch(/CONSOLE_OIDC_CLIENT_ID: required/);
    expect(msg).toMatch(/CONSOLE_OIDC_REDIRECT_URL: required/);
    expect(msg).not.toContain('very-secret-value');
    const all = { ...base, CONSOLE_OIDC_ISSUER: 'https://idp.example.com', CONSOLE_OIDC_CLIENT_ID: 'c', CONSOLE_OIDC_CLIENT_SECRET: 's', CONSOLE_OIDC_REDIRECT_URL: 'https://silo.example.com/console/oidc/callback' };
    expect(() => loadControlPlaneConfig(all)).not.toThrow();
    expect(() => loadControlPlaneConfig({ ...all, CONSOLE_OIDC_DEFAULT_ROLE: 'root' })).toThrow(/CONSOLE_OIDC_DEFAULT_ROLE/);
    expect(() => loadControlPlaneConfig({ ...all, CONSOLE_OIDC_REDIRECT_URL: 'https://silo.example.com/callback' })).toThrow(/must end in \/console\/oidc\/callback/);
    expect(() => loadControlPlaneConfig({ ...base, CONSOLE_OIDC_DEFAULT_ROLE: 'viewer' })).toThrow(/CONSOLE_OIDC_DEFAULT_ROLE: needs/);
  });
});
