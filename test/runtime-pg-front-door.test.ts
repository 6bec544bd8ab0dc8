import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, ClientConfig } from 'pg';
import postgres from 'postgres';
import { createCa, issueServerCert, PemPair } from '../provisioning/local/tenant-certs';
import { DEFAULT_TIERS } from '../provisioning/tiers';
import { apiKeyPrefix } from '../common/api-key-format';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { call, createTenants, issueKey, SeededTenant, startTestRuntime } from './support/runtime-fixtures';
import { adminQuery } from './support/test-db';


/** The PostgreSQL front door with real clients (pg, psql), on two tenants. */
describe('PostgreSQL front door', () => {
  let cp: TestControlPlane;
  let rt: RunningTenantRuntime;
  let acme: SeededTenant;
  let bravo: SeededTenant;
  let carol: SeededTenant;
  const keys = new Map<string, string>();
  let ca: PemPair;
  let dir: string;
  const open: Client[] = [];

  const config = (t: SeededTenant | { slug: string }, extra: Partial<ClientConfig> = {}): ClientConfig => ({
    host: '127.0.0.1', port: rt.pg?.port, user: t.slug, password: keys.get(t.slug) ?? 'silo_000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', database: 'anything',
    // No SNI from an IP host: routed by the user name. verify-full semantics: the CA and the name.
    ssl: { ca: ca.certPem, servername: 'localhost' }, ...extra,
  });
  const client = async (cfg: ClientConfig): Promise<Client> => {
    const c = new Client(cfg);
    c.on('error', () => undefined);
    await c.connect();
    open.push(c);
    return c;
  };
  const refusal = async (cfg: ClientConfig): Promise<{ code?: string; message: string }> => {
    const c = new Client(cfg);
    c.on('error', () => undefined);
    try {
      await c.connect();
    } catch (err) {
      return { code: (err as { code?: string }).code, message: (err as Error).message };
    } finally {
      await c.end().catch(() => undefined);
    }
    await c.end();
    throw new Error('connected');
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'silo-front-door-'));
    ca = await createCa('front door test CA');
    const server = await issueServerCert(ca, ['localhost', 'acme.localhost', 'bravo.localhost']);
    writeFileSync(join(dir, 'tls.crt'), server.certPem);
    writeFileSync(join(dir, 'tls.key'), server.keyPem);
    writeFileSync(join(dir, 'ca.crt'), ca.certPem);
    cp = await startTestControlPlane();
    [acme, bravo, carol] = (await createTenants(cp, [{ slug: 'acme' }, { slug: 'bravo' }, { slug: 'carol' }])) as [SeededTenant, SeededTenant, SeededTenant];
    for (const t of [acme, bravo, carol]) keys.set(t.slug, (await issueKey(cp, t)).key);
    rt = await startTestRuntime(cp, {
      RUNTIME_PG_TLS_CERT: join(dir, 'tls.crt'), RUNTIME_PG_TLS_KEY: join(dir, 'tls.key'),
      RUNTIME_MAX_CONNECTIONS: '6', RUNTIME_MAX_CONNECTIONS_PER_TENANT: '3',
      RUNTIME_PG_TENANT_BUFFER_BYTES: String(2 * 1024 * 1024), RUNTIME_PG_BUFFER_BYTES: String(3 * 1024 * 1024),
    }, { tiers: { starter: { ...DEFAULT_TIERS.starter, statementTimeoutMs: 2_000 } } });
  });
  afterAll(async () => {
    for (const c of open) await c.end().catch(() => undefined);
    await rt?.close();
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves each tenant its own database over TLS, routed by SNI, the options or the user name, whatever database is named', async () => {
    const reported = new Map<string, string>();
    const sni = new Client(config({ slug: 'someone' }, { password: keys.get('acme'), ssl: { ca: ca.certPem, servername: 'acme.localhost' } }));
    (sni as unknown as { connection: NodeJS.EventEmitter }).connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => reported.set(m.parameterName, m.parameterValue));
    await sni.connect();
    open.push(sni);
    const bySni = sni;
    const byOptions = await client(config({ slug: 'app_user' }, { password: keys.get('bravo'), options: 'tenant=bravo' } as ClientConfig));
    const byUser = await client(config(acme, { database: 'postgres' }));
    const who = async (c: Client) => (await c.query<{ db: string; role: string; ssl: boolean }>('SELECT current_database() AS db, current_user AS role')).rows[0];
    expect((await who(bySni))?.role).toBe(acme.role);
    expect((await who(byOptions))?.role).toBe(bravo.role);
    expect((await who(byUser))?.role).toBe(acme.role);
    expect((await who(bySni))?.db).not.toBe((await who(byOptions))?.db);
    // What clients read at startup: the tenant server's own settings.
    const [server] = await adminQuery<{ v: string }>("SELECT current_setting('server_version') AS v");
    expect(Object.fromEntries(reported)).toMatchObject({ server_version: server?.v, client_encoding: 'UTF8', standard_conforming_strings: 'on', integer_datetimes: 'on', is_superuser: 'off' });
  });

  it('runs the extended protocol, transactions and a named statement within a transaction', async () => {
    const c = await client(config(acme));
    await c.query('CREATE TABLE IF NOT EXISTS notes (id int PRIMARY KEY, body text)');
    await c.query('BEGIN');
    await c.query('INSERT INTO notes VALUES ($1, $2)', [1, 'one']);
    const named = { name: 'by-id', text: 'SELECT body FROM notes WHERE id = $1' };
    expect((await c.query({ ...named, values: [1] })).rows).toEqual([{ body: 'one' }]);
    expect((await c.query({ ...named, values: [2] })).rows).toEqual([]);
    await c.query('ROLLBACK');
    expect((await c.query('SELECT count(*)::int AS n FROM notes')).rows).toEqual([{ n: 0 }]);
    const types = await c.query('SELECT $1::int AS i, $2::jsonb AS j, $3::timestamptz AS t, NULL::text AS n', [42, { a: 1 }, new Date(0)]);
    expect(types.rows[0]).toEqual({ i: 42, j: { a: 1 }, t: new Date(0), n: null });
    // A statement error leaves the session usable.
    await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('keeps named prepared statements across transactions in transaction mode (re-prepared on the next backend)', async () => {
    const c = await client(config(acme));
    const q = { name: 'sum-it', text: 'SELECT $1::int + $2::int AS s' };
    // pg prepares once per client connection and then sends only Bind/Execute: every later call
    // runs on a backend that was reset (DISCARD ALL) and never saw the Parse.
    for (let i = 0; i < 5; i++) expect((await c.query({ ...q, values: [i, 1] })).rows).toEqual([{ s: i + 1 }]);
    await c.query('BEGIN');
    expect((await c.query({ ...q, values: [20, 2] })).rows).toEqual([{ s: 22 }]);
    expect((await c.query({ ...q, values: [30, 3] })).rows).toEqual([{ s: 33 }]);
    await c.query('COMMIT');
    // An error in between does not desynchronise the stream.
    await expect(c.query({ name: 'broken', text: 'SELECT nope FROM nowhere' })).rejects.toMatchObject({ code: '42P01' });
    expect((await c.query({ ...q, values: [1, 1] })).rows).toEqual([{ s: 2 }]);
    // Pipelined: several prepared calls in flight at once on one client.
    const all = await Promise.all([1, 2, 3, 4].map((n) => c.query({ ...q, values: [n, n] })));
    expect(all.map((r) => r.rows[0].s)).toEqual([2, 4, 6, 8]);
  });

  it('works with postgres.js, which prepares named statements by default, in transaction mode', async () => {
    const sql = postgres({ host: 'localhost', port: rt.pg?.port, user: 'acme', password: keys.get('acme'), database: 'app', ssl: { ca: ca.certPem }, max: 4, onnotice: () => undefined });
    try {
      await sql`CREATE TABLE IF NOT EXISTS pjs (id int PRIMARY KEY, tags text[], doc jsonb)`;
      await sql`DELETE FROM pjs`;
      for (let i = 0; i < 20; i++) await sql`INSERT INTO pjs ${sql({ id: i, tags: [`t${i}`], doc: sql.json({ i }) })}`;
      const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => sql<{ id: number; doc: { i: number } }[]>`SELECT id, doc FROM pjs WHERE id = ${i}`));
      expect(rows.map((r) => r[0]?.doc.i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      const [{ n }] = await sql.begin(async (tx) => {
        await tx`UPDATE pjs SET tags = array_append(tags, 'x') WHERE id < 5`;
        return tx<{ n: number }[]>`SELECT count(*)::int AS n FROM pjs WHERE 'x' = ANY(tags)`;
      });
      expect(n).toBe(5);
      const [{ who }] = await sql<{ who: string }[]>`SELECT current_user AS who`;
      expect(who).toBe(acme.role);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it('runs pgbench: -i (COPY) and -S in simple, extended and prepared mode', async () => {
    const env = { ...process.env, PGPASSWORD: keys.get('bravo') as string, PGSSLMODE: 'verify-full', PGSSLROOTCERT: join(dir, 'ca.crt'), PGCONNECT_TIMEOUT: '5' };
    const bench = (args: string[]) => new Promise<string>((resolve, reject) => {
      execFile('pgbench', ['-h', 'localhost', '-p', String(rt.pg?.port), '-U', 'bravo', ...args, 'app'], { env, timeout: 60_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(`${stdout}${stderr}`)));
    });
    await bench(['-i', '-s', '1', '-q']);
    const check = await client(config(bravo));
    expect((await check.query('SELECT count(*)::int AS n FROM pgbench_accounts')).rows).toEqual([{ n: 100_000 }]);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const out = await bench(['-S', '-M', mode, '-c', '4', '-j', '2', '-t', '50', '-n']);
      expect(out).toMatch(/number of transactions actually processed: 200\/200/);
      expect(out).toMatch(/number of failed transactions: 0/);
    }
  }, 90_000);

  it('in transaction mode shares backends across clients within the tenant cap, and resets them between clients', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => client(config(bravo))));
    await Promise.all(clients.map((c, i) => c.query('SELECT pg_sleep(0.2), $1::int', [i])));
    const backends = await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend'", [bravo.role]);
    expect(backends[0]?.n).toBeLessThanOrEqual(3); // RUNTIME_MAX_CONNECTIONS_PER_TENANT, with 8 clients connected
    expect(rt.stats().connections).toBeLessThanOrEqual(6);
    // A SET outlives only its transaction: the backend is reset before anyone else gets it.
    const a = clients[0] as Client;
    await a.query("SET application_name = 'leaky'");
    const names = await Promise.all(clients.map((c) => c.query<{ n: string }>("SELECT current_setting('application_name') AS n")));
    expect(names.map((r) => r.rows[0]?.n)).not.toContain('leaky');
  });

  describe('transaction mode without a reset per transaction', () => {
    const text = 'SELECT $1::int * 7 AS v';
    const serverSide = "SELECT name FROM pg_prepared_statements WHERE statement = 'SELECT $1::int * 7 AS v'";

    it('hands a backend on as it is after a transaction with no session state: its prepared statements stay, shared by clients with the same statement', async () => {
      const one = await client(config(acme));
      expect((await one.query({ name: 'times-seven', text, values: [1] })).rows).toEqual([{ v: 7 }]);
      const [{ pid }] = (await one.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
      // The next transaction (another client; idle backends go most recently used first) gets the
      // same backend, and the statement is still prepared there under the front door's name.
      const two = await client(config(acme));
      const seen = await two.query<{ pid: number; names: string[] }>(`SELECT pg_backend_pid() AS pid, ARRAY(${serverSide}) AS names`);
      expect(seen.rows[0]?.pid).toBe(pid);
      expect(seen.rows[0]?.names).toEqual([expect.stringMatching(/^silo_[0-9a-f]{24}$/)]);
      // Another client's name for the same statement uses the prepared one (answered by the front
      // door), and a failed Parse leaves no name behind.
      expect((await two.query({ name: 'x7', text, values: [3] })).rows).toEqual([{ v: 21 }]);
      expect((await two.query(`SELECT count(*)::int AS n FROM (${serverSide}) s`)).rows).toEqual([{ n: 1 }]);
      await expect(two.query({ name: 'bad', text: 'SELEC 1' })).rejects.toMatchObject({ code: '42601' });
      expect((await two.query({ name: 'x7', text, values: [4] })).rows).toEqual([{ v: 28 }]);
      expect((await one.query({ name: 'times-seven', text, values: [5] })).rows).toEqual([{ v: 35 }]);
    });

    it('pipelined with postgres.js, a statement the backend already has is answered in its place', async () => {
      const first = await client(config(acme));
      await first.query({ name: 'p', text: 'SELECT $1::int + 100 AS v', values: [0] });
      const sql = postgres({ host: 'localhost', port: rt.pg?.port, user: 'acme', password: keys.get('acme'), database: 'app', ssl: { ca: ca.certPem }, max: 1, onnotice: () => undefined });
      try {
        // One connection, several queries in flight: postgres.js pipelines them (Parse/Bind/Execute
        // of each, one Sync each), and the second is the statement the backend already has.
        const [a, b, c, d] = await Promise.all([sql`SELECT ${1}::int AS v`, sql`SELECT ${2}::int + 100 AS v`, sql`SELECT 1/${0}::int AS v`.catch((e: { code: string }) => e.code), sql`SELECT ${4}::text AS v`]);
        expect([a?.[0]?.v, b?.[0]?.v, c, d?.[0]?.v]).toEqual([1, 102, '22012', '4']);
        const again = await Promise.all([1, 2, 3].map((n) => sql`SELECT ${n}::int + 100 AS v`));
        expect(again.map((r) => r[0]?.v)).toEqual([101, 102, 103]);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

    it('resets a backend whose transaction left session state (temp table, advisory lock, LISTEN) before the next client', async () => {
      const one = await client(config(acme));
      const results = (await one.query("CREATE TEMP TABLE scratch (a int); SELECT pg_advisory_lock(4242); LISTEN somewhere; SELECT pg_backend_pid() AS pid")) as unknown as Array<{ rows: Array<{ pid: number }> }>;
      const pid = results[3]?.rows[0]?.pid;
      await new Promise((r) => setTimeout(r, 200)); // its reset runs as it goes back: then it is the most recently used
      const two = await client(config(acme));
      const seen = await two.query<{ pid: number; t: string | null; l: string[] }>('SELECT pg_backend_pid() AS pid, to_regclass(\'pg_temp.scratch\')::text AS t, ARRAY(SELECT pg_listening_channels()) AS l');
      expect(seen.rows[0]).toEqual({ pid, t: null, l: [] });
      expect(await adminQuery("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242")).toEqual([]);
    });

    it('gives the HTTP API a fresh session on a backend a wire client handed on unreset', async () => {
      const wire = await client(config(acme));
      // The function's body is not in the calling SQL: the front door cannot see the SET it does.
      await wire.query("CREATE OR REPLACE FUNCTION leave_state() RETURNS int LANGUAGE sql AS $$ SELECT length(set_config('silo.leftover', 'yes', false)) * 0 + pg_backend_pid() $$");
      await new Promise((r) => setTimeout(r, 200)); // that transaction's backend is being reset (set_config is in its text)
      const [{ pid }] = (await wire.query<{ pid: number }>('SELECT leave_state() AS pid')).rows as [{ pid: number }];
      const r = await call(rt.url, '/v1/query', { host: 'acme.localhost', key: keys.get('acme') as string, body: { sql: "SELECT pg_backend_pid() AS pid, current_setting('silo.leftover', true) AS v" } });
      expect(r.status).toBe(200);
      const rows = (r.body as { rows: Array<{ pid: number; v: string | null }> }).rows;
      expect(rows[0]?.pid).toBe(pid); // the same backend...
      expect(rows[0]?.v ?? '').toBe(''); // ...reset first (a placeholder once set reads '' after RESET ALL; 'yes' without it)
    });
  });

  it('keeps a backend for the whole session with options=pool_mode=session (SET, LISTEN/NOTIFY)', async () => {
    const s = await client(config(acme, { options: '-c pool_mode=session' } as ClientConfig));
    await s.query("SET application_name = 'mine'");
    expect((await s.query<{ n: string }>("SELECT current_setting('application_name') AS n")).rows[0]?.n).toBe('mine');
    const heard = new Promise<string>((resolve) => s.on('notification', (m) => resolve(m.payload ?? '')));
    await s.query('LISTEN news');
    const other = await client(config(acme));
    await other.query("NOTIFY news, 'hello'");
    await expect(heard).resolves.toBe('hello');
  });

  it('gives a wrong, revoked, other tenant\'s or unknown tenant\'s key the same 28P01', async () => {
    const expected = { code: '28P01' };
    expect(await refusal(config(acme, { password: 'silo_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }))).toMatchObject(expected);
    expect(await refusal(config(acme, { password: keys.get('bravo') }))).toMatchObject(expected);
    expect(await refusal(config({ slug: 'nobody' }, { password: keys.get('acme') }))).toMatchObject(expected);
    const revoked = await issueKey(cp, acme, 'to-revoke');
    await client(config(acme, { password: revoked.key }));
    expect((await cp.api('DELETE', `/v1/tenants/${acme.id}/api-keys/${revoked.id}`)).status).toBe(200);
    const started = Date.now();
    let last: { code?: string; message: string } | null = null;
    while (Date.now() - started < 2_000) {
      last = await refusal(config(acme, { password: revoked.key })).catch(() => null);
      if (last) break;
    }
    expect(last).toMatchObject(expected);
    expect(Date.now() - started).toBeLessThan(1_000);
    // The message names no tenant and no reason.
    expect(last?.message).toBe('password authentication failed for user "acme"');
  });

  it('asks for SCRAM-SHA-256 (the key never crosses the wire); a key without stored verifiers needs RUNTIME_PG_AUTH=password', async () => {
    const seen: string[] = [];
    const c = new Client(config(acme));
    const conn = (c as unknown as { connection: NodeJS.EventEmitter }).connection;
    for (const e of ['authenticationSASL', 'authenticationCleartextPassword', 'authenticationMD5Password']) conn.on(e, () => seen.push(e));
    await c.connect();
    open.push(c);
    expect(seen).toEqual(['authenticationSASL']);
    // A key issued before verifiers existed (NULL columns): refused like any wrong key under SCRAM...
    const legacy = await issueKey(cp, acme, 'legacy');
    const nulled = await cp.sql('UPDATE api_keys SET scram_stored_key = NULL, scram_server_key = NULL WHERE prefix = $1 RETURNING prefix', [apiKeyPrefix(legacy.key)]);
    expect(nulled).toHaveLength(1);
    expect(await refusal(config(acme, { password: legacy.key }))).toMatchObject({ code: '28P01' });
    // ...and accepted, inside TLS, by a front door asking for the key itself.
    const plain = await startTestRuntime(cp, { RUNTIME_PG_TLS_CERT: join(dir, 'tls.crt'), RUNTIME_PG_TLS_KEY: join(dir, 'tls.key'), RUNTIME_PG_AUTH: 'password' });
    try {
      const p = new Client({ ...config(acme, { password: legacy.key }), port: plain.pg?.port });
      const asked: string[] = [];
      (p as unknown as { connection: NodeJS.EventEmitter }).connection.on('authenticationCleartextPassword', () => asked.push('cleartext'));
      await p.connect();
      expect(asked).toEqual(['cleartext']);
      expect((await p.query('SELECT current_user AS u')).rows[0]?.u).toBe(acme.role);
      await p.end();
    } finally {
      await plain.close();
    }
  });

  it('refuses a suspended tenant with its own message, and a key sent without TLS', async () => {
    expect((await cp.api('POST', `/v1/tenants/${bravo.id}/suspend`, { reason: 'test' })).status).toBe(200);
    try {
      let r: { code?: string; message: string } | null = null;
      for (let i = 0; i < 40 && r?.code !== '57P03'; i++) {
        r = await refusal(config(bravo)).catch(() => null);
        if (r?.code !== '57P03') await new Promise((res) => setTimeout(res, 50));
      }
      expect(r).toMatchObject({ code: '57P03', message: expect.stringContaining('TENANT_SUSPENDED') });
    } finally {
      await cp.api('POST', `/v1/tenants/${bravo.id}/resume`, {});
    }
    expect(await refusal(config(acme, { ssl: false }))).toMatchObject({ code: '28000', message: expect.stringContaining('TLS') });
  });

  it('forwards a CancelRequest to the backend running the client\'s statement', async () => {
    const c = await client(config(acme));
    const running = c.query('SELECT pg_sleep(30)').then(() => 'finished', (e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 300));
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4);
    msg.writeInt32BE(processID, 8);
    msg.writeInt32BE(secretKey, 12);
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: rt.pg?.port as number }, () => s.end(msg));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    expect(await running).toBe('57014');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('ends a statement that traps every cancel (the runtime\'s backstop), keeps it counted until gone, and serves the neighbour meanwhile', async () => {
    const trap = await client(config(bravo));
    const neighbour = await client(config(acme));
    const started = Date.now();
    const trapped = trap.query(`DO $$ BEGIN LOOP BEGIN LOOP PERFORM pg_sleep(0.05); END LOOP; EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$`)
      .then(() => 'finished', (e: { code?: string }) => e.code ?? 'closed');
    expect((await neighbour.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    // The tier's 2 s timeout (set above) + cancel grace + terminate grace.
    expect(await trapped).toMatch(/57014|closed/);
    expect(Date.now() - started).toBeLessThan(10_000);
    for (let i = 0; i < 100; i++) {
      const rows = await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND query LIKE '%query_canceled%' AND pid <> pg_backend_pid()", [bravo.role]);
      if (rows[0]?.n === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const left = await adminQuery<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND query LIKE '%query_canceled%' AND pid <> pg_backend_pid()", [bravo.role]);
    expect(left[0]?.n).toBe(0);
    expect(rt.stats().terminating).toBe(0);
  }, 30_000);

  it('exports front-door metrics per tenant and mode on the internal listener', async () => {
    const c = await client(config(acme));
    await c.query('SELECT 1');
    const text = await (await fetch(`${rt.metricsUrl}/metrics`)).text();
    expect(Number(/^silo_runtime_pg_transactions_total\{tenant="acme",mode="transaction"[^}]*\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^silo_runtime_pg_bytes_total\{tenant="acme",direction="out"[^}]*\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^silo_runtime_pg_clients\{mode="transaction"[^}]*\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it('lets a tenant pg_dump its own database through the front door in session mode', async () => {
    const c = await client(config(acme));
    await c.query('CREATE TABLE IF NOT EXISTS dumped (id int PRIMARY KEY, note text)');
    await c.query("INSERT INTO dumped VALUES (1, 'kept') ON CONFLICT DO NOTHING");
    const conn = `host=localhost port=${rt.pg?.port} user=acme dbname=app sslmode=verify-full sslrootcert=${join(dir, 'ca.crt')} options='-c pool_mode=session'`;
    const env = { ...process.env, PGPASSWORD: keys.get('acme') as string, PGCONNECT_TIMEOUT: '5' };
    const dump = await new Promise<string>((resolve, reject) => {
      execFile('pg_dump', ['--no-owner', '--no-privileges', '-t', 'dumped', conn], { env, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
    });
    expect(dump).toContain('CREATE TABLE public.dumped');
    expect(dump).toMatch(/COPY public\.dumped \(id, note\) FROM stdin;\n1\tkept\n/);
  });

  describe('a hostile client cannot keep a pooled backend', () => {
    const msg = (type: string, ...parts: Buffer[]) => {
      const body = Buffer.concat(parts);
      const head = Buffer.alloc(5);
      head.write(type, 0, 'latin1');
      head.writeUInt32BE(body.length + 4, 1);
      return Buffer.concat([head, body]);
    };
    const cstr = (v: string) => Buffer.from(`${v}\0`);
    const parse = (sql: string) => msg('P', cstr(''), cstr(sql), Buffer.from([0, 0]));
    const bind = () => msg('B', cstr(''), cstr(''), Buffer.from([0, 0, 0, 0, 0, 0]));
    const execute = () => msg('E', cstr(''), Buffer.from([0, 0, 0, 0]));
    const flush = () => msg('H');
    /** A logged-in client whose socket the test then drives by hand (pg's parser detached). */
    const raw = async (t: SeededTenant, extra: Partial<ClientConfig> = {}) => {
      const c = await client(config(t, extra));
      const stream = (c as unknown as { connection: { stream: NodeJS.ReadWriteStream & { destroy(): void; destroyed: boolean } } }).connection.stream;
      stream.removeAllListeners('data');
      let got = Buffer.alloc(0);
      stream.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
      return { stream, received: () => got, closed: new Promise<void>((r) => stream.on('close', () => r())) };
    };
    /** All of carol's cap (3) can be had at once in session mode: nothing of hers is stuck. */
    const capFree = async () => {
      const held = await Promise.all([0, 1, 2].map(() => client(config(carol, { options: '-c pool_mode=session' } as ClientConfig))));
      const rows = await Promise.all(held.map((c) => c.query('SELECT 1 AS one')));
      await Promise.all(held.map((c) => c.end()));
      return rows.every((r) => r.rows[0]?.one === 1);
    };

    it('leaving in the middle of an extended batch (Parse error, Flush, close) does not leak the backend', async () => {
      for (let i = 0; i < 3; i++) {
        const r = await raw(carol);
        r.stream.write(Buffer.concat([parse('SELEKT 1'), flush()]));
        for (let k = 0; k < 50 && !r.received().includes('SELEKT'); k++) await new Promise((res) => setTimeout(res, 20));
        r.stream.destroy();
      }
      expect(await capFree()).toBe(true);
    }, 30_000);

    it('past 1,000 kept statements a client is told (54000) and let go, and its backend is not kept', async () => {
      const r = await raw(carol);
      // A pipelined Query first: it is owed an answer, and must still reach the backend.
      const named = Array.from({ length: 1_001 }, (_, n) => msg('P', cstr(`s${n}`), cstr(`SELECT ${n}`), Buffer.from([0, 0])));
      r.stream.write(Buffer.concat([msg('Q', cstr('SELECT pg_sleep(0.1)')), ...named, msg('S')]));
      await r.closed;
      expect(r.received().toString('latin1')).toMatch(/54000[^]*too many or too large prepared statements/);
      expect(await capFree()).toBe(true);
    }, 30_000);

    it('holds prepared statements within a per-tenant allowance: past it a client gets 54000, other tenants are not affected, and a closed client gives its share back', async () => {
      const big = (n: number) => ({ name: `big-${n}`, text: `SELECT '${'x'.repeat(900_000)}' AS v, ${n} AS n` });
      const [one, two, three] = await Promise.all([0, 1, 2].map(() => client(config(carol))));
      await one?.query(big(1));
      await two?.query(big(2));
      // 2 x ~0.9 MiB held for carol: a third would pass her 2 MiB allowance (RUNTIME_PG_TENANT_BUFFER_BYTES here).
      await expect(three?.query(big(3))).rejects.toMatchObject({ code: '54000' });
      // acme's allowance is its own (the replica's is 3 MiB: 1.8 used by carol).
      const a = await client(config(acme));
      expect((await a.query(big(4))).rows[0]?.n).toBe(4);
      await a.end();
      await one?.end();
      const four = await client(config(carol));
      expect((await four.query(big(5))).rows[0]?.n).toBe(5);
      await Promise.all([two?.end(), four.end()]);
    }, 30_000);

    const named = (name: string, sql: string) => msg('P', cstr(name), cstr(sql), Buffer.from([0, 0]));
    const waitFor = async (r: { received(): Buffer }, text: string) => {
      for (let k = 0; k < 100 && !r.received().includes(text); k++) await new Promise((res) => setTimeout(res, 20));
    };

    it('refuses malformed or hostile statement messages with a clear error, and stays up (an over-long length used to throw from the socket handler)', async () => {
      const cases: Array<[Buffer, RegExp]> = [
        // Describe of a kept statement with a length past PostgreSQL's 1 GB limit: the rewrite overflowed.
        [Buffer.concat([Buffer.from('D'), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from('S'), cstr('a')]), /08P01[^]*invalid message length/],
        // A Close of a kept statement whose length says more follows: it used to be buffered for ever.
        [Buffer.concat([Buffer.from('C'), Buffer.from([0x00, 0x10, 0x00, 0x00]), Buffer.from('S'), cstr('a'), Buffer.alloc(1000)]), /08P01[^]*invalid Close message length/],
        [named('x'.repeat(2_000), 'SELECT 1'), /42622[^]*longer than 1024 bytes/],
        [named('silo_0123456789abcdef01234567', 'SELECT 1'), /42939[^]*front door's own/],
      ];
      for (const [bytes, expected] of cases) {
        const r = await raw(carol);
        r.stream.write(Buffer.concat([named('a', 'SELECT 1'), msg('S')]));
        await waitFor(r, 'Z');
        r.stream.write(bytes);
        await r.closed;
        expect(r.received().toString('latin1')).toMatch(expected);
      }
      expect(await capFree()).toBe(true);
    }, 30_000);

    it('a Query after an extended-protocol error (skipped by the server until Sync) does not pin the backend', async () => {
      const r = await raw(carol);
      r.stream.write(Buffer.concat([parse('SELEKT 1'), msg('Q', cstr('SELECT 1')), msg('S')]));
      await waitFor(r, 'SELEKT');
      await new Promise((res) => setTimeout(res, 100));
      // Still connected, between transactions: its backend went back, so carol's whole cap is free.
      expect(await capFree()).toBe(true);
      r.stream.destroy();
    }, 30_000);

    it('leaving in the middle of a message does not leak the backend', async () => {
      const r = await raw(carol, { options: '-c pool_mode=session' } as ClientConfig);
      const head = Buffer.alloc(5);
      head.write('d', 0, 'latin1');
      head.writeUInt32BE(4 + 100_000, 1);
      r.stream.write(head);
      await new Promise((res) => setTimeout(res, 100));
      r.stream.destroy();
      expect(await capFree()).toBe(true);
    }, 30_000);

    it('a statement run with Execute + Flush (no Sync) is still ended by the backstop', async () => {
      const r = await raw(carol);
      r.stream.write(msg('Q', cstr('BEGIN; SET LOCAL statement_timeout = 0')));
      for (let k = 0; k < 50 && !r.received().includes(Buffer.from('Z')); k++) await new Promise((res) => setTimeout(res, 20));
      const started = Date.now();
      r.stream.write(Buffer.concat([parse('SELECT pg_sleep(30)'), bind(), execute(), flush()]));
      await r.closed;
      // Tier timeout 2 s + cancel grace + terminate grace, well before the 30 s sleep ends.
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(r.received().toString('latin1')).toContain('57014');
      expect(await capFree()).toBe(true);
    }, 30_000);

    it('sends an unknown name a salt nobody can compute (no tenant-existence oracle), the same each time', async () => {
      const saltFor = async (user: string) => {
        const c = new Client(config({ slug: user }, { password: keys.get('acme') }));
        c.on('error', () => undefined);
        let salt = '';
        (c as unknown as { connection: NodeJS.EventEmitter }).connection.on('authenticationSASLContinue', (m: { data: string }) => (salt = /s=([^,]+)/.exec(m.data)?.[1] ?? ''));
        await c.connect().catch(() => undefined);
        return salt;
      };
      const unknown = await saltFor('nosuchtenant');
      const publicFormula = (v: string) => createHash('sha256').update(v).digest().subarray(0, 16).toString('base64');
      expect(unknown).not.toBe('');
      expect(unknown).not.toBe(publicFormula('silo-scram-salt:unknown:nosuchtenant'));
      expect(unknown).not.toBe(publicFormula('silo-scram-salt:nosuchtenant'));
      expect(await saltFor('nosuchtenant')).toBe(unknown);
      expect(await saltFor('othername')).not.toBe(unknown);
    });

    it('a client that leaves while its login waits gets no backend kept for it', async () => {
      for (let i = 0; i < 3; i++) {
        const c = new Client(config(carol, { options: '-c pool_mode=session' } as ClientConfig));
        c.on('error', () => undefined);
        const conn = (c as unknown as { connection: NodeJS.EventEmitter & { stream: { destroy(): void } } }).connection;
        conn.on('authenticationSASLFinal', () => conn.stream.destroy());
        await c.connect().catch(() => undefined);
      }
      await new Promise((res) => setTimeout(res, 300));
      expect(await capFree()).toBe(true);
    }, 30_000);
  });

  it('works with psql: sslmode=verify-full, a query and \\copy in both directions', async () => {
    const conn = `host=localhost port=${rt.pg?.port} user=acme dbname=app sslmode=verify-full sslrootcert=${join(dir, 'ca.crt')}`;
    const env = { ...process.env, PGPASSWORD: keys.get('acme') as string, PGCONNECT_TIMEOUT: '5' };
    const psql = (args: string[], input?: string) => new Promise<string>((resolve, reject) => {
      const child = execFile('psql', [conn, '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', ...args], { env, timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout.trim())));
      if (input !== undefined) child.stdin?.end(input);
    });
    expect(await psql(['-c', 'SELECT current_user'])).toBe(acme.role);
    await psql(['-c', 'CREATE TABLE IF NOT EXISTS lines (n int, s text)']);
    const rows = Array.from({ length: 2_000 }, (_, i) => `${i}\trow ${i}`).join('\n');
    await psql(['-c', '\\copy lines FROM STDIN'], `${rows}\n\\.\n`);
    expect(await psql(['-c', 'SELECT count(*) FROM lines'])).toBe('2000');
    const out = await psql(['-c', '\\copy (SELECT n FROM lines ORDER BY n LIMIT 3) TO STDOUT']);
    expect(out.split('\n')).toEqual(['0', '1', '2']);
  });
});
