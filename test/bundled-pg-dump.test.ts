import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { bundledPgDump, ChannelBindingFilter } from '../provisioning/local/bundled-pg-dump';
import { tenantDbName } from '../provisioning/local/pg-names';
import { readCustomArchive } from './support/custom-archive';
import { testDatabaseUrl, withDatabase } from './support/env';
import { localProvisioningKit, LocalProvisioningKit, memoryDriverContext } from './support/provisioning';
import { adminQuery, createEmptyDatabase, createTestDatabase, TestDatabase } from './support/test-db';

/**
 * The WebAssembly pg_dump (bundled-pg-dump.ts) against the real test server: custom format read
 * back by an archive reader (the machine's pg_restore may be too old for its archive version),
 * plain format restored with psql, the failure paths (no database, no server, abort, idle timeout,
 * connection killed), and the local driver exporting with it.
 */
const psql = (url: string, args: string[], input?: string) => spawnSync('psql', ['-X', '-q', '-At', '-d', url, ...args], { input, maxBuffer: 512 * 1024 * 1024 });

async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('bundled pg_dump (WebAssembly, real Postgres)', () => {
  let src: TestDatabase;
  const dir = mkdtempSync(join(tmpdir(), 'silo-bundled-dump-'));
  const fingerprint = `SELECT count(*)::int AS n, md5(string_agg(t::text, ',' ORDER BY id)) AS h FROM t`;

  beforeAll(async () => {
    src = await createEmptyDatabase('bundleddump');
    // More than 32 kB per result, so libpq's speculative reads (a read after a read with data) happen.
    await adminQuery(`
      CREATE TABLE t (id int PRIMARY KEY, s text, j jsonb, b bytea);
      INSERT INTO t SELECT g, repeat('x', g % 300) || 'é\t"''', jsonb_build_object('g', g), decode(md5(g::text), 'hex') FROM generate_series(1, 20000) g;
      CREATE INDEX t_s ON t (s);
      CREATE VIEW v AS SELECT id FROM t WHERE id < 10;
      CREATE SEQUENCE sq; SELECT setval('sq', 42);
      CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';
      COMMENT ON TABLE t IS 'a ''quoted'' comment';`, [], src.name);
  });
  afterAll(async () => {
    await src.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a custom-format archive: header, table of contents with data offsets, table data equal to COPY', async () => {
    const file = join(dir, 'custom.dump');
    const r = await bundledPgDump({ url: src.url, file });
    expect(r).toMatchObject({ code: 0, aborted: false, timedOut: false });
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const a = readCustomArchive(file);
    expect(a).toMatchObject({ version: '1.16.0', format: 1, database: src.name, dumperVersion: expect.stringMatching(/^18\./) });
    const [{ v }] = await adminQuery<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    expect(a.serverVersion).toBe(v);
    const kinds = a.toc.map((e) => `${e.desc} ${e.tag}`);
    expect(kinds).toEqual(expect.arrayContaining(['TABLE t', 'TABLE DATA t', 'INDEX t_s', 'VIEW v', 'SEQUENCE sq', 'SEQUENCE SET sq', 'FUNCTION f(integer)', 'CONSTRAINT t t_pkey', 'COMMENT TABLE t']));
    const data = a.toc.find((e) => e.desc === 'TABLE DATA' && e.tag === 't')!;
    // The output was seekable: pg_dump rewrote the TOC with the block's offset, as a native one does on a file.
    expect(data.dataOffset).toBe(a.data.get(data.dumpId)!.offset);
    const copy = psql(src.url, ['-c', 'COPY t TO STDOUT']);
    expect(copy.status).toBe(0);
    expect(a.data.get(data.dumpId)!.content.equals(Buffer.concat([copy.stdout, Buffer.from('\\.\n\n\n')]))).toBe(true);
  });

  it('writes plain SQL that psql restores into a fresh database with the same data', async () => {
    const file = join(dir, 'plain.sql');
    expect((await bundledPgDump({ url: src.url, file, args: ['--format=plain'] })).code).toBe(0);
    const dst = await createEmptyDatabase('bundledrestore');
    try {
      const restore = psql(dst.url, ['-f', file]);
      // pg_dump 18 sets transaction_timeout, which servers before 17 do not know; nothing else may fail.
      const errors = restore.stderr.toString().split('\n').filter((l) => /ERROR/.test(l) && !/transaction_timeout/.test(l));
      expect(errors).toEqual([]);
      const [a] = await adminQuery(fingerprint, [], src.name);
      const [b] = await adminQuery(fingerprint, [], dst.name);
      expect(b).toEqual(a);
      expect(await adminQuery(`SELECT (SELECT last_value::int FROM sq) AS l, f(1) AS f, (SELECT count(*)::int FROM v) AS v, obj_description('t'::regclass) AS c`, [], dst.name))
        .toEqual([{ l: 42, f: 2, v: 9, c: "a 'quoted' comment" }]);
    } finally {
      await dst.drop();
    }
  });

  it('fails with pg_dump\'s message for a database that does not exist', async () => {
    const r = await bundledPgDump({ url: withDatabase(testDatabaseUrl(), 'silo_no_such_database'), file: join(dir, 'none.dump') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/database "silo_no_such_database" does not exist/);
  });

  it('fails without running pg_dump when nothing listens', async () => {
    const server = createServer();
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const { port } = server.address() as { port: number };
    await new Promise((res) => server.close(res));
    const r = await bundledPgDump({ url: `postgres://postgres@127.0.0.1:${port}/postgres`, file: join(dir, 'refused.dump') });
    expect(r.code).toBeNull();
    expect(r.stderr).toMatch(/connection to server at "127\.0\.0\.1", port \d+ failed: .*ECONNREFUSED/);
  });

  it('uses TLS when the server answers the SSLRequest with S (a TLS-terminating proxy in front of the test server)', async () => {
    const certDir = mkdtempSync(join(tmpdir(), 'silo-bundled-tls-'));
    const key = join(certDir, 'key.pem');
    const cert = join(certDir, 'cert.pem');
    expect(spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert]).status).toBe(0);
    const upstream = new URL(testDatabaseUrl());
    const tlsSessions: string[] = [];
    const proxy = createServer((client) => {
      client.once('data', (req) => {
        if (req.length !== 8 || req.readInt32BE(4) !== 80877103) return void client.destroy(); // not an SSLRequest
        client.write('S');
        const secure = new TLSSocket(client, { isServer: true, key: readFileSync(key), cert: readFileSync(cert) });
        secure.once('secure', () => tlsSessions.push(secure.getProtocol() ?? '?'));
        const pg = connect(Number(upstream.port || 5432), upstream.hostname);
        secure.pipe(pg).pipe(secure);
        const close = () => (secure.destroy(), pg.destroy());
        secure.on('error', close).on('close', close);
        pg.on('error', close).on('close', close);
      });
    });
    await new Promise<void>((res) => proxy.listen(0, '127.0.0.1', res));
    try {
      const u = new URL(src.url);
      u.host = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
      const file = join(dir, 'tls.dump');
      expect((await bundledPgDump({ url: u.toString(), file })).code).toBe(0);
      expect(tlsSessions).toHaveLength(1);
      expect(readCustomArchive(file).toc.some((e) => e.desc === 'TABLE DATA' && e.tag === 't')).toBe(true);
      // The URL's sslmode is honoured: verify-ca checks the chain against sslrootcert...
      u.search = `?sslmode=verify-ca&sslrootcert=${encodeURIComponent(cert)}`;
      expect((await bundledPgDump({ url: u.toString(), file })).code).toBe(0);
      // ...and refuses a certificate it cannot verify (self-signed, no root given) before pg_dump runs.
      u.search = '?sslmode=verify-ca';
      const refused = await bundledPgDump({ url: u.toString(), file: join(dir, 'unverified.dump') });
      expect(refused.code).toBeNull();
      expect(refused.stderr).toMatch(/self[- ]signed|unable to verify/i);
    } finally {
      await new Promise((res) => proxy.close(res));
      rmSync(certDir, { recursive: true, force: true });
    }
  });

  it('honours the URL\'s sslmode against a server without TLS: require refuses plain text, disable never asks', async () => {
    const u = new URL(src.url);
    u.search = '?sslmode=require';
    const refused = await bundledPgDump({ url: u.toString(), file: join(dir, 'require.dump') });
    expect(refused.code).toBeNull();
    expect(refused.stderr).toMatch(/server does not support SSL, but sslmode=require requires it/);
    u.search = '?sslmode=disable';
    expect((await bundledPgDump({ url: u.toString(), file: join(dir, 'disable.dump') })).code).toBe(0);
  });

  describe('while pg_dump waits for a lock the test holds', () => {
    let locker: Client;
    beforeEach(async () => {
      locker = new Client({ connectionString: src.url });
      await locker.connect();
      await locker.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
    });
    afterEach(async () => {
      await locker.query('ROLLBACK'); // a no-op where the test released it
      await locker.end();
    });
    const waitingDumper = () => waitFor(async () => (await adminQuery<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_dump' AND wait_event_type = 'Lock'`, [src.name]))[0]);
    const dumpers = async () => (await adminQuery(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_dump'`, [src.name])).length;

    it('an abort ends it promptly, and its connection with it', async () => {
      const ac = new AbortController();
      const run = bundledPgDump({ url: src.url, file: join(dir, 'aborted.dump'), signal: ac.signal });
      await waitingDumper();
      const t0 = Date.now();
      ac.abort();
      const r = await run;
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(r.aborted).toBe(true);
      expect(r.code).not.toBe(0);
      // A backend waiting for a lock notices the closed connection once it has the lock (as with a killed native pg_dump).
      await locker.query('ROLLBACK');
      await waitFor(async () => ((await dumpers()) === 0 ? true : undefined));
    });

    it('the idle timeout ends it when the server sends nothing for that long', async () => {
      const r = await bundledPgDump({ url: src.url, file: join(dir, 'idle.dump'), idleTimeoutMs: 1_000 });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/no data from the server for 1000 ms/);
      await locker.query('ROLLBACK');
      await waitFor(async () => ((await dumpers()) === 0 ? true : undefined));
    });

    it('the whole-run timeout ends it too', async () => {
      const r = await bundledPgDump({ url: src.url, file: join(dir, 'total.dump'), timeoutMs: 1_000 });
      expect(r).toMatchObject({ timedOut: true });
      expect(r.code).not.toBe(0);
    });

    it('a connection the server ends is a failure with the server\'s message, not a hang', async () => {
      const run = bundledPgDump({ url: src.url, file: join(dir, 'killed.dump') });
      const { pid } = await waitingDumper();
      await adminQuery('SELECT pg_terminate_backend($1)', [pid]);
      const r = await run;
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/terminating connection|server closed the connection/);
    });
  });
});

describe('ChannelBindingFilter', () => {
  const sasl = (mechs: string[]) => {
    const body = Buffer.from(`${mechs.join('\0')}\0\0`);
    const m = Buffer.alloc(9 + body.length);
    m.write('R', 0);
    m.writeInt32BE(8 + body.length, 1);
    m.writeInt32BE(10, 5);
    body.copy(m, 9);
    return m;
  };
  const authOk = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);

  it('removes SCRAM-SHA-256-PLUS from the offer, whatever the chunking, and passes the rest through untouched', () => {
    const stream = Buffer.concat([sasl(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']), authOk, Buffer.from('Zrest')]);
    for (const cut of [1, 3, 9, 20, stream.length]) {
      const f = new ChannelBindingFilter();
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += cut) out.push(f.push(stream.subarray(i, i + cut)));
      expect(Buffer.concat(out)).toEqual(Buffer.concat([sasl(['SCRAM-SHA-256']), authOk, Buffer.from('Zrest')]));
      expect(f.done).toBe(true);
    }
  });
});

describe('local driver exports with the bundled pg_dump', () => {
  let db: TestDatabase;
  let kit: LocalProvisioningKit;
  const exportDir = mkdtempSync(join(tmpdir(), 'silo-export-bundled-'));
  const fakeBin = mkdtempSync(join(tmpdir(), 'silo-fake-pgdump-'));
  const masterKey = randomBytes(32); // kits sharing a control database share its secrets

  beforeAll(async () => {
    db = await createTestDatabase('bundledexp');
  });
  afterAll(async () => {
    await kit?.cleanup();
    await db.drop();
    rmSync(exportDir, { recursive: true, force: true });
    rmSync(fakeBin, { recursive: true, force: true });
  });

  async function offboardOne(pgDumpBin: string | undefined, path?: string) {
    if (kit) await kit.cleanup();
    kit = localProvisioningKit(db.url, db.name, { pgDumpBin, masterKey });
    const ctx = memoryDriverContext();
    kit.track(ctx.tenant.id);
    const conn = await kit.driver.provision(ctx);
    await adminQuery('CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1), (2)', [], conn.database);
    const savedPath = process.env.PATH;
    if (path !== undefined) process.env.PATH = path; // what the driver's pg_dump lookup sees
    const dctx = memoryDriverContext(ctx.tenant.id);
    try {
      const { exportLocation } = await kit.driver.deprovision(dctx, { exportDir, connection: conn });
      return { exportLocation: exportLocation!, lines: dctx.lines, database: tenantDbName(ctx.tenant.id) };
    } finally {
      process.env.PATH = savedPath;
    }
  }

  function expectExport(file: string) {
    expect(existsSync(file)).toBe(true);
    expect(existsSync(`${file}.partial`)).toBe(false);
    const st = statSync(file);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.size).toBeGreaterThan(0);
    const a = readCustomArchive(file);
    expect(a.dumperVersion).toMatch(/^18\./);
    const data = a.toc.find((e) => e.desc === 'TABLE DATA' && e.tag === 'invoices')!;
    expect(a.data.get(data.dumpId)!.content.toString()).toBe('1\n2\n\\.\n\n\n');
  }

  it('PG_DUMP_BIN=bundled: the export is the bundled pg_dump\'s, then the database is gone', async () => {
    const { exportLocation, database } = await offboardOne('bundled');
    expectExport(exportLocation);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [database])).toHaveLength(0);
  });

  it('auto, no pg_dump on PATH: falls back to the bundled one and says so', async () => {
    const { exportLocation, lines } = await offboardOne(undefined, fakeBin);
    expectExport(exportLocation);
    expect(lines.join('\n')).toMatch(/pg_dump on PATH not found; exporting .* with the bundled pg_dump 18/);
  });

  it('auto, a pg_dump on PATH older than the server: falls back to the bundled one', async () => {
    const fake = join(fakeBin, 'pg_dump');
    writeFileSync(fake, '#!/bin/sh\necho "pg_dump: error: aborting because of server version mismatch" >&2\nexit 1\n');
    chmodSync(fake, 0o755);
    try {
      const { exportLocation, lines } = await offboardOne('auto', `${fakeBin}:${process.env.PATH}`);
      expectExport(exportLocation);
      expect(lines.join('\n')).toMatch(/pg_dump on PATH is older than the server/);
    } finally {
      rmSync(fake);
    }
  });

  it('an explicit path is used alone: missing, it is EXPORT_TOOL_UNAVAILABLE and the data stays', async () => {
    if (kit) await kit.cleanup();
    kit = localProvisioningKit(db.url, db.name, { pgDumpBin: join(fakeBin, 'no-such-pg_dump'), masterKey });
    const ctx = memoryDriverContext();
    kit.track(ctx.tenant.id);
    const conn = await kit.driver.provision(ctx);
    await expect(kit.driver.deprovision(memoryDriverContext(ctx.tenant.id), { exportDir, connection: conn })).rejects.toMatchObject({ code: 'EXPORT_TOOL_UNAVAILABLE' });
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [conn.database])).toHaveLength(1);
    expect(readdirSync(exportDir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });
});
