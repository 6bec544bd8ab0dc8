import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client, ClientConfig } from 'pg';
import Stripe from 'stripe';
import { newSubscription, scenarioEvents } from '../support/stripe-fixtures';
import { readCustomArchive } from '../support/custom-archive';
import { httpCall, HttpResult } from '../support/http-call';
import { CA_CERT_FILE, TenantCertIssuer } from '../../provisioning/local/tenant-certs';
import { certSerial, CRL_FILE, readCrl } from '../../provisioning/local/tenant-crl';
import { SERVER_CRL_FILE } from '../../provisioning/local/tenant-server';
import { EmbeddedSilo, EmbeddedTenant } from './support/embedded-silo';
import { sleep } from './support/processes';

/**
 * Issue #13, items 3 and 5, against `npm start`'s own code path (dist/scripts/start.js with
 * DATABASE_URL unset, in a scratch directory): the embedded control server and the embedded tenant
 * server Silo runs, a tenant provisioned through the real local driver by the job worker.
 *  - A tenant that sets its own password through the runtime gets no direct login anywhere: not
 *    with the password, not over TLS without a certificate, not with its certificate to
 *    `postgres`, `template1` or another tenant's database. The runtime path keeps working.
 *  - A tenant that fills the tenant server's shared lock table (53200) leaves the control plane
 *    answering: admin API, webhooks and readiness 2xx on every call while the table is full.
 *  - Certificates rotated away or of an offboarded tenant are revoked (the CA's CRL, the server's
 *    ssl_crl_file): a direct login with one fails the TLS handshake, also after a restart.
 */

let silo: EmbeddedSilo;
let attacker: EmbeddedTenant;
let neighbour: EmbeddedTenant;
const cpUrl = () => silo.cpUrl;
const api = (method: string, path: string, body?: unknown) => silo.api(method, path, body);
const query = (t: EmbeddedTenant, sql: string) => silo.query(t, sql);

function tenantAdmin(database = 'postgres'): ClientConfig {
  return { host: '127.0.0.1', port: silo.ports.tenants, user: 'postgres', password: silo.tenantPassword, database, connectionTimeoutMillis: 5_000 };
}

/** Connects and says who it is, or how it was refused (SQLSTATE / message). */
async function tryLogin(cfg: ClientConfig): Promise<{ ok: true; user: string; db: string } | { ok: false; code: string | undefined; message: string }> {
  const c = new Client({ host: '127.0.0.1', port: silo.ports.tenants, connectionTimeoutMillis: 5_000, ...cfg });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const { rows } = await c.query<{ u: string; d: string }>('SELECT current_user AS u, current_database() AS d');
    return { ok: true, user: rows[0]?.u ?? '', db: rows[0]?.d ?? '' };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { ok: false, code: e.code, message: e.message };
  } finally {
    // Bounded: after a TLS alert during connect (a revoked certificate), pg's end() never resolves.
    await Promise.race([c.end().catch(() => undefined), sleep(1_000)]);
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

/** Polls `fn` until `ok` or the deadline; returns the last value. */
async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await fn();
  while (!ok(v) && Date.now() < deadline) {
    await sleep(200);
    v = await fn();
  }
  return v;
}

const certOf = (t: EmbeddedTenant) => ({ cert: t.secret.sslCert, key: t.secret.sslKey, ca: t.secret.sslCa });
const caDir = () => join(silo.dir, '.silo', 'tenant-ca');
/** The CA's CRL and the tenant server's copy (the file its ssl_crl_file names), as serials. */
async function revokedSerials(): Promise<{ ca: string[]; server: string[] }> {
  const caPem = readFileSync(join(caDir(), CA_CERT_FILE), 'utf8');
  const serials = async (file: string) => (await readCrl(caPem, readFileSync(file, 'utf8'))).map((r) => r.serial).sort();
  return { ca: await serials(join(caDir(), CRL_FILE)), server: await serials(join(silo.dir, '.silo', 'pg-tenants', SERVER_CRL_FILE)) };
}
/** A direct login as the tenant to its own database, presenting `secret`'s certificate (what the runtime does). */
async function certLogin(t: EmbeddedTenant, secret: EmbeddedTenant['secret'] = t.secret): Promise<string> {
  const r = await tryLogin({ user: t.role, database: t.role, ssl: { cert: secret.sslCert, key: secret.sslKey, ca: secret.sslCa, rejectUnauthorized: true, checkServerIdentity: () => undefined } });
  return r.ok ? `CONNECTED as ${r.user}` : `refused ${r.code}: ${r.message}`;
}
/** The TLS handshake failing on the server's CRL check (before any role or database is looked at). */
const REVOKED = /refused .*certificate revoked/i;
let rotatedAway: EmbeddedTenant['secret'] | null = null;
let leaverSecret: EmbeddedTenant['secret'] | null = null;

beforeAll(async () => {
  silo = await EmbeddedSilo.create(); // no tenantServer in state.json and no .silo/pg yet: a fresh clone
  await silo.start();
  attacker = await silo.provision('mallory');
  neighbour = await silo.provision('alice');
}, 150_000);

afterAll(() => silo?.cleanup(), 30_000);

describe('embedded mode: tenant databases on a server of their own', () => {
  it('puts tenant databases on the tenant server, not the control server, and the runtime reaches them by client certificate', async () => {
    expect(silo.state().tenantServer).toBe('separate');
    const admin = new Client(tenantAdmin());
    await admin.connect();
    try {
      const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [[attacker.role, neighbour.role]]);
      expect(rows.map((r) => r.datname).sort()).toEqual([attacker.role, neighbour.role].sort());
    } finally {
      await admin.end();
    }
    const control = new Client({ host: '127.0.0.1', port: silo.ports.control, user: 'postgres', password: silo.controlPassword, database: 'postgres' });
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

  it('rotating credentials re-issues the certificate, and the runtime connects with the new one', async () => {
    const before = new X509Certificate(attacker.secret.sslCert as string);
    const r = await api('POST', `/v1/tenants/${attacker.id}/rotate-credentials`);
    expect(r.status).toBeLessThan(300);
    let rotated = attacker.secret;
    const deadline = Date.now() + 30_000;
    while (rotated.sslCert === attacker.secret.sslCert && Date.now() < deadline) {
      await sleep(200);
      rotated = (await silo.secretOf(attacker.id)).secret;
    }
    const after = new X509Certificate(rotated.sslCert as string);
    expect(after.serialNumber).not.toBe(before.serialNumber);
    expect(after.subject).toBe(`CN=${attacker.role}`);
    expect(rotated.sslKey).not.toBe(attacker.secret.sslKey);
    expect(after.verify(new X509Certificate(rotated.sslCa as string).publicKey)).toBe(true);
    // The runtime re-reads the secret (new directory revision) and presents the new certificate.
    const serial = BigInt(`0x${after.serialNumber}`).toString();
    const seen = await until(async () => (await query(attacker, 'SELECT client_serial::text AS s FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).body?.rows?.[0]?.s, (s) => s === serial, 10_000);
    expect(seen).toBe(serial);

    // The old certificate is revoked: a direct login with it (and its key) fails the handshake; the new one works.
    const old = await until(() => certLogin(attacker), (s) => REVOKED.test(s), 15_000);
    expect(old).toMatch(REVOKED);
    expect(await certLogin(attacker, rotated)).toBe(`CONNECTED as ${attacker.role}`);
    const revoked = await revokedSerials();
    expect(revoked.ca).toContain(certSerial(attacker.secret.sslCert as string));
    expect(revoked.ca).not.toContain(certSerial(rotated.sslCert as string));
    expect(revoked.server).toEqual(revoked.ca);
    rotatedAway = attacker.secret;
    attacker = { ...attacker, secret: rotated };
  });

  it('replicas revoking at once lose no revocation (merged under an advisory lock on the tenant server)', async () => {
    const adminUrl = `postgres://postgres:${encodeURIComponent(silo.tenantPassword)}@127.0.0.1:${silo.ports.tenants}/postgres`;
    const before = (await revokedSerials()).ca;
    const serials = Array.from({ length: 6 }, () => `7${randomBytes(15).toString('hex')}`);
    // One issuer per "replica", each with its own connection and its own read of the CA directory.
    await Promise.all(serials.map((s) => new TenantCertIssuer(caDir()).revoke(adminUrl, [s], 'superseded')));
    const after = await revokedSerials();
    expect(after.ca).toEqual([...before, ...serials].sort());
    expect(after.server).toEqual(after.ca);
    // The tenants' current certificates still work.
    expect(await certLogin(attacker)).toBe(`CONNECTED as ${attacker.role}`);
    expect(await certLogin(neighbour)).toBe(`CONNECTED as ${neighbour.role}`);
  });

  it('a tenant filling the tenant server lock table (53200) leaves the admin API, webhooks and readiness answering 2xx', async () => {
    // The attacker's own session (its certificate, its database: what the runtime opens for it).
    const hog = new Client({ host: '127.0.0.1', port: silo.ports.tenants, user: attacker.role, database: attacker.role, ssl: { ...certOf(attacker), checkServerIdentity: () => undefined } });
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
        const signature = stripe.webhooks.generateTestHeaderString({ payload, secret: silo.webhookSecret });
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

  // Issue #14 item 6: the embedded server (PostgreSQL 18) ships no pg_dump and this machine's is older
  // (15): with PG_DUMP_BIN's default (auto) the export falls back to the bundled pg_dump.
  it('offboards a tenant on the embedded server to deleted, with one non-empty 0600 custom-format export of its data in a 0700 folder', async () => {
    const leaver = await silo.provision('leaver');
    leaverSecret = leaver.secret;
    expect(await certLogin(leaver)).toBe(`CONNECTED as ${leaver.role}`);
    expect((await query(leaver, 'CREATE TABLE keepsake (n int)')).status).toBe(200);
    expect((await query(leaver, 'INSERT INTO keepsake SELECT generate_series(1, 1000)')).status).toBe(200);
    expect((await api('POST', `/v1/tenants/${leaver.id}/offboard`, { force: true })).status).toBe(202);
    const done = await until(() => api('GET', `/v1/tenants/${leaver.id}`), (r) => ['deleted', 'failed'].includes(r.body?.status), 90_000);
    expect({ status: done.body?.status, failure: done.body?.failureReason ?? null }).toEqual({ status: 'deleted', failure: null });
    const dir = join(silo.dir, '.silo', 'exports');
    const files = readdirSync(dir).filter((f) => f.startsWith(`${leaver.id}-`));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.dump$/); // no .partial left
    const file = join(dir, files[0] as string);
    expect(statSync(file).size).toBeGreaterThan(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    // The machine's pg_restore (15) cannot read a pg_dump 18 archive (1.16): read with the format reader.
    const archive = readCustomArchive(file);
    expect(archive.version).toBe('1.16.0');
    expect(archive.serverVersion).toMatch(/^18\./);
    const data = archive.toc.find((e) => e.desc === 'TABLE DATA' && e.tag === 'keepsake');
    expect(data).toBeDefined();
    const rows = (archive.data.get(data?.dumpId as number)?.content.toString() ?? '').split('\n').filter((l) => /^\d+$/.test(l));
    expect(rows.map(Number)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));

    // Its certificate is revoked: refused at the TLS handshake, before the (dropped) role is looked at.
    expect((await revokedSerials()).ca).toContain(certSerial(leaver.secret.sslCert as string));
    expect(await certLogin(leaver)).toMatch(REVOKED);
  }, 150_000);

  it('keeps revocations across a restart: the server\'s CRL is rewritten from the CA\'s, and revoked certificates stay refused', async () => {
    expect(rotatedAway && leaverSecret).toBeTruthy();
    const before = await revokedSerials();
    expect(await silo.stop()).toMatchObject({ code: 0, signal: null });
    // Both servers down (a clean shutdown removes the pid file) before they start again.
    const pidFiles = ['pg', 'pg-tenants'].map((sub) => join(silo.dir, '.silo', sub, 'postmaster.pid'));
    expect(await until(async () => pidFiles.filter(existsSync), (left) => left.length === 0, 15_000)).toEqual([]);
    // The server's copy goes with the data directory; the CA's is the record it is rebuilt from.
    rmSync(join(silo.dir, '.silo', 'pg-tenants', SERVER_CRL_FILE));
    await silo.start();
    expect(await revokedSerials()).toEqual(before);
    expect(await certLogin(attacker, rotatedAway as EmbeddedTenant['secret'])).toMatch(REVOKED);
    expect(await certLogin(attacker)).toBe(`CONNECTED as ${attacker.role}`);
    expect(await certLogin(neighbour)).toBe(`CONNECTED as ${neighbour.role}`);
    const leaverRole = `t_${'0'.repeat(32)}`; // any role: the handshake fails before pg_hba or the role matter
    const r = await tryLogin({ user: leaverRole, database: leaverRole, ssl: { cert: leaverSecret?.sslCert, key: leaverSecret?.sslKey, ca: leaverSecret?.sslCa, checkServerIdentity: () => undefined } });
    expect(r.ok ? 'CONNECTED' : `refused ${r.code}: ${r.message}`).toMatch(REVOKED);
  }, 120_000);
});
