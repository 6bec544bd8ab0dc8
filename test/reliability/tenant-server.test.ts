import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, ClientConfig, Pool } from 'pg';
import Stripe from 'stripe';
import { newSubscription, scenarioEvents } from '../../control-plane/billing/stripe-fixtures';
import { decodeKey } from '../../common/config-schema';
import { LocalSecretStore } from '../../provisioning/secrets/local-secret-store';
import type { TenantSecret } from '../../provisioning/secrets/secret-store';
import { freePort } from '../../scripts/support/dev-utils';
import { httpCall, HttpResult } from '../support/http-call';
import { baseEnv, REPO_ROOT, sleep } from './support/processes';

/**
 * Issue #13, items 3 and 5, against `npm start`'s own code path (dist/scripts/start.js with
 * DATABASE_URL unset, in a scratch directory): the embedded control server and the embedded tenant
 * server Silo runs, a tenant provisioned through the real local driver by the job worker.
 *  - A tenant that sets its own password through the runtime gets no direct login anywhere: not
 *    with the password, not over TLS without a certificate, not with its certificate to
 *    `postgres`, `template1` or another tenant's database. The runtime path keeps working.
 *  - A tenant that fills the tenant server's shared lock table (53200) leaves the control plane
 *    answering: admin API, webhooks and readiness 2xx on every call while the table is full.
 */

const START = join(REPO_ROOT, 'dist', 'scripts', 'start.js');
const ADMIN_TOKEN = `silo_admin_${randomBytes(18).toString('base64url')}`;
const WEBHOOK_SECRET = `whsec_${randomBytes(18).toString('base64')}`;
const MASTER_KEY = randomBytes(32).toString('base64');
const CONTROL_PW = randomBytes(12).toString('base64url');
const TENANT_PW = randomBytes(12).toString('base64url');

let dir = '';
let silo: ChildProcess | null = null;
const output: string[] = [];
let ports = { control: 0, tenants: 0, api: 0, runtime: 0 };
const cpUrl = () => `http://127.0.0.1:${ports.api}`;
const rtUrl = () => `http://127.0.0.1:${ports.runtime}`;

interface Tenant { id: string; slug: string; role: string; key: string; secret: TenantSecret }
let attacker: Tenant;
let neighbour: Tenant;

function api(method: string, path: string, body?: unknown): Promise<HttpResult> {
  return httpCall(cpUrl(), path, { method, body, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, timeoutMs: 10_000 });
}

function query(t: Tenant, sql: string, timeoutMs = 15_000): Promise<HttpResult> {
  return httpCall(rtUrl(), '/v1/query', { host: `${t.slug}.localhost`, key: t.key, body: { sql }, timeoutMs });
}

function tenantAdmin(database = 'postgres'): ClientConfig {
  return { host: '127.0.0.1', port: ports.tenants, user: 'postgres', password: TENANT_PW, database, connectionTimeoutMillis: 5_000 };
}

/** Connects and says who it is, or how it was refused (SQLSTATE / message). */
async function tryLogin(cfg: ClientConfig): Promise<{ ok: true; user: string; db: string } | { ok: false; code: string | undefined; message: string }> {
  const c = new Client({ host: '127.0.0.1', port: ports.tenants, connectionTimeoutMillis: 5_000, ...cfg });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const { rows } = await c.query<{ u: string; d: string }>('SELECT current_user AS u, current_database() AS d');
    return { ok: true, user: rows[0]?.u ?? '', db: rows[0]?.d ?? '' };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { ok: false, code: e.code, message: e.message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function startSilo(): Promise<void> {
  const child = spawn(process.execPath, [START], {
    cwd: dir, stdio: ['ignore', 'pipe', 'pipe'],
    // baseEnv: PATH/HOME only, so no DATABASE_URL / TENANT_DATABASE_URL / REDIS_URL: the embedded mode.
    env: baseEnv({ CONTROL_PLANE_PORT: String(ports.api), RUNTIME_PORT: String(ports.runtime), LOG_LEVEL: 'warn', RUNTIME_IDLE_TIMEOUT_MS: '400', RECONCILE_INTERVAL_SECONDS: '0' }),
  });
  silo = child;
  const keep = (b: Buffer) => output.push(...b.toString('utf8').split('\n').filter(Boolean).map((l) => l.slice(0, 500)));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const deadline = Date.now() + 60_000;
  while (!output.some((l) => l.includes('Silo is running'))) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${output.slice(-30).join('\n')}`);
    if (Date.now() > deadline) throw new Error(`npm start not ready in 60 s:\n${output.slice(-30).join('\n')}`);
    await sleep(100);
  }
}

async function stopSilo(): Promise<void> {
  const child = silo;
  silo = null;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** The postmasters this file's Silo started, if a SIGKILL left them behind (by their own pid file). */
function killLeftoverServers(): void {
  for (const sub of ['pg', 'pg-tenants']) {
    const pidFile = join(dir, '.silo', sub, 'postmaster.pid');
    if (!existsSync(pidFile)) continue;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    try {
      if (pid > 0) process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
}

async function provision(slug: string): Promise<Tenant> {
  const created = await api('POST', '/v1/tenants', { name: slug, slug });
  if (created.status !== 201 && created.status !== 202) throw new Error(`create ${slug}: ${created.status} ${created.text}`);
  const id = created.body.id as string;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const t = await api('GET', `/v1/tenants/${id}`);
    if (t.body?.status === 'active') break;
    if (t.body?.status === 'failed' || Date.now() > deadline) throw new Error(`${slug} not active: ${t.text}\n${output.slice(-20).join('\n')}`);
    await sleep(200);
  }
  const key = await api('POST', `/v1/tenants/${id}/api-keys`, { name: 'test' });
  const control = new Pool({ host: '127.0.0.1', port: ports.control, user: 'postgres', password: CONTROL_PW, database: 'silo', max: 1 });
  try {
    const { rows } = await control.query<{ username: string; secret_ref: string }>('SELECT username, secret_ref FROM tenant_connections WHERE tenant_id = $1', [id]);
    const row = rows[0] as { username: string; secret_ref: string };
    const secret = await new LocalSecretStore(control, decodeKey(MASTER_KEY) as Buffer).get(row.secret_ref);
    return { id, slug, role: row.username, key: key.body.key as string, secret };
  } finally {
    await control.end();
  }
}

/** SQLSTATE the tenant server's admin gets taking one more lock (connecting may already fail), null if it can. */
async function tenantServerLockError(): Promise<string | null> {
  const c = new Client(tenantAdmin());
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT pg_advisory_xact_lock(7)');
    return null;
  } catch (err) {
    return (err as { code?: string }).code ?? 'unknown';
  } finally {
    await c.end().catch(() => undefined);
  }
}

const certOf = (t: Tenant) => ({ cert: t.secret.sslCert, key: t.secret.sslKey, ca: t.secret.sslCa });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'silo-tenant-server-'));
  chmodSync(dir, 0o711); // the embedded servers run as the postgres OS user when we are root
  ports = { control: await freePort(), tenants: await freePort(), api: await freePort(), runtime: await freePort() };
  mkdirSync(join(dir, '.silo'), { mode: 0o711 });
  // What ensureLocalState would generate, with free ports; no tenantServer field: a fresh .silo/ decides it.
  writeFileSync(join(dir, '.silo', 'state.json'), JSON.stringify({
    adminToken: ADMIN_TOKEN, masterKey: MASTER_KEY, webhookSecret: WEBHOOK_SECRET,
    postgresPassword: CONTROL_PW, postgresPort: ports.control, tenantPostgresPassword: TENANT_PW, tenantPostgresPort: ports.tenants,
  }), { mode: 0o600 });
  await startSilo();
  attacker = await provision('mallory');
  neighbour = await provision('alice');
}, 150_000);

afterAll(async () => {
  await stopSilo();
  killLeftoverServers();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('embedded mode: tenant databases on a server of their own', () => {
  it('puts tenant databases on the tenant server, not the control server, and the runtime reaches them by client certificate', async () => {
    const state = JSON.parse(readFileSync(join(dir, '.silo', 'state.json'), 'utf8')) as { tenantServer?: string };
    expect(state.tenantServer).toBe('separate');
    const admin = new Client(tenantAdmin());
    await admin.connect();
    try {
      const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[attacker.role, neighbour.role]]);
      expect(rows.map((r) => r.datname).sort()).toEqual([attacker.role, neighbour.role].sort());
    } finally {
      await admin.end();
    }
    const control = new Client({ host: '127.0.0.1', port: ports.control, user: 'postgres', password: CONTROL_PW, database: 'postgres' });
    await control.connect();
    try {
      const { rows } = await control.query(`SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9a-f]{32}$'`);
      expect(rows).toEqual([]);
    } finally {
      await control.end();
    }
    const r = await query(attacker, 'SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(r.status).toBe(200);
    expect(r.body.rows[0]).toEqual({ ssl: true, client_dn: `/CN=${attacker.role}` });
  });

  it('gives a tenant that set its own password no direct login, and keeps its runtime access', async () => {
    const stolen = 'tenant-chosen-password-1';
    const set = await query(attacker, `ALTER ROLE current_user PASSWORD '${stolen}'`);
    expect(set.status).toBe(200); // PostgreSQL lets a role change its own password: what matters is that it opens nothing

    const attempts: Record<string, ClientConfig> = {
      'password, own database': { user: attacker.role, password: stolen, database: attacker.role },
      'password over TLS, own database': { user: attacker.role, password: stolen, database: attacker.role, ssl: { rejectUnauthorized: false } },
      'password, postgres': { user: attacker.role, password: stolen, database: 'postgres' },
      'password, template1': { user: attacker.role, password: stolen, database: 'template1' },
      'own certificate, postgres': { user: attacker.role, password: stolen, database: 'postgres', ssl: { ...certOf(attacker), rejectUnauthorized: false } },
      'own certificate, template1': { user: attacker.role, password: stolen, database: 'template1', ssl: { ...certOf(attacker), rejectUnauthorized: false } },
      'own certificate, neighbour database': { user: attacker.role, password: stolen, database: neighbour.role, ssl: { ...certOf(attacker), rejectUnauthorized: false } },
      'own certificate, as the neighbour role': { user: neighbour.role, password: stolen, database: neighbour.role, ssl: { ...certOf(attacker), rejectUnauthorized: false } },
      'own certificate, template database': { user: attacker.role, password: stolen, database: 'silo_tenant_template', ssl: { ...certOf(attacker), rejectUnauthorized: false } },
    };
    const results: Record<string, string> = {};
    for (const [name, cfg] of Object.entries(attempts)) {
      const r = await tryLogin(cfg);
      results[name] = r.ok ? `CONNECTED as ${r.user} to ${r.db}` : `refused ${r.code}`;
    }
    // 28000: pg_hba.conf rejects, or the certificate does not match; no other outcome is acceptable.
    expect(results).toEqual(Object.fromEntries(Object.keys(attempts).map((k) => [k, 'refused 28000'])));

    // Positive control: the same certificate to its own database is what the runtime does, and works.
    const own = await tryLogin({ user: attacker.role, database: attacker.role, ssl: { ...certOf(attacker), rejectUnauthorized: true, checkServerIdentity: () => undefined } });
    expect(own).toMatchObject({ ok: true, user: attacker.role, db: attacker.role });

    // The runtime's own connections (new ones: the idle ones closed after 400 ms) still work.
    await sleep(1_000);
    const after = await query(attacker, 'SELECT current_user AS u, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl');
    expect(after.status).toBe(200);
    expect(after.body.rows[0]).toEqual({ u: attacker.role, ssl: true });
  });

  it('a tenant filling the tenant server lock table (53200) leaves the admin API, webhooks and readiness answering 2xx', async () => {
    // The attacker's own session (its certificate, its database: what the runtime opens for it).
    const hog = new Client({ host: '127.0.0.1', port: ports.tenants, user: attacker.role, database: attacker.role, ssl: { ...certOf(attacker), checkServerIdentity: () => undefined } });
    hog.on('error', () => undefined);
    await hog.connect();
    try {
      // Session-level advisory locks outlive the failed statement: the table stays full until the session ends.
      const filled = await hog.query(`DO $$ BEGIN FOR i IN 1..5000000 LOOP PERFORM pg_advisory_lock(i); END LOOP; END $$`).then(() => null, (e: { code?: string }) => e.code);
      expect(filled).toBe('53200');

      // The neighbour on the same tenant server feels it (that is what a shared server costs)...
      // (its new connections fail, so the runtime answers TENANT_UNAVAILABLE; a warm one would get 53200).
      const hurt = await query(neighbour, 'SELECT pg_advisory_xact_lock(42)');
      expect(hurt.status).not.toBe(200);
      expect(hurt.code === 'TENANT_UNAVAILABLE' || /shared memory/.test(hurt.text)).toBe(true);
      expect(await tenantServerLockError()).toBe('53200');

      // ...the control plane does not: every call 2xx while the table stays full.
      const sub = newSubscription({ slug: 'webhook-during-hog', plan: 'starter' });
      const events = scenarioEvents('purchase', sub).events;
      const stripe = new Stripe('sk_test_tenant_server');
      const statuses: Array<{ what: string; status: number }> = [];
      const until = Date.now() + 3_000;
      let round = 0;
      while (Date.now() < until || round < 2) {
        statuses.push({ what: 'GET /v1/tenants', status: (await api('GET', '/v1/tenants')).status });
        statuses.push({ what: 'GET /health/ready', status: (await httpCall(cpUrl(), '/health/ready')).status });
        statuses.push({ what: 'POST /v1/tenants', status: (await api('POST', '/v1/tenants', { name: `during ${round}`, slug: `during-hog-${round}` })).status });
        const event = events[round % events.length];
        const payload = JSON.stringify(event);
        const signature = stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET });
        const wh = await httpCall(cpUrl(), '/webhooks/stripe', { rawBody: payload, headers: { 'stripe-signature': signature, 'content-type': 'application/json' } });
        statuses.push({ what: 'POST /webhooks/stripe', status: wh.status });
        round++;
      }
      const bad = statuses.filter((s) => s.status < 200 || s.status >= 300);
      expect(bad).toEqual([]);
      expect(statuses.length).toBeGreaterThanOrEqual(8);
      // Still full at the end: the calls above ran against a full lock table throughout.
      expect(await tenantServerLockError()).toBe('53200');
    } finally {
      await hog.end().catch(() => undefined);
    }
    // The locks go with the session; the neighbour recovers.
    const deadline = Date.now() + 5_000;
    let ok: HttpResult;
    do {
      ok = await query(neighbour, 'SELECT pg_advisory_xact_lock(44) IS NULL AS locked');
      if (ok.status === 200) break;
      await sleep(100);
    } while (Date.now() < deadline);
    expect(ok.status).toBe(200);
  }, 60_000);
});
