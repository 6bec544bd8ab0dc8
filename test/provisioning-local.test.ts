import { execFileSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { prepareTemplate } from '../migrations';
import { tenantDbName } from '../provisioning/local/pg-names';
import { TenantConnectionInfo } from '../provisioning/provisioning-driver';
import { adminQuery, createTestDatabase, pgDumpCanExport, TestDatabase } from './support/test-db';
import { localProvisioningKit, LocalProvisioningKit, memoryDriverContext } from './support/provisioning';
import { shippedTenantMigrations } from './support/tenant-migrations';

/** Checks a password against a stored SCRAM-SHA-256 verifier, as the server would. */
function verifies(stored: string, password: string): boolean {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(stored);
  if (!m) return false;
  const salted = pbkdf2Sync(password, Buffer.from(m[2], 'base64'), Number(m[1]), 32, 'sha256');
  const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
  return storedKey === m[3];
}

/** The error a connection attempt fails with, or 'connected' (closing the stray connection). */
async function connectError(conn: TenantConnectionInfo, password: string, database: string): Promise<string> {
  try {
    await (await connectAs(conn, password, database)).end();
    return 'connected';
  } catch (err) {
    return (err as Error).message;
  }
}

async function connectAs(conn: TenantConnectionInfo, password: string, database = conn.database): Promise<Client> {
  const c = new Client({ host: conn.host, port: conn.port, user: conn.username, password, database, connectionTimeoutMillis: 3_000 });
  await c.connect();
  return c;
}

describe('local provisioning driver (real Postgres)', () => {
  let db: TestDatabase;
  let kit: LocalProvisioningKit;
  const exportDir = mkdtempSync(join(tmpdir(), 'silo-export-'));
  // pg_dump wrapped: records the environment it was given, then runs the real one.
  const dumpEnvFile = join(exportDir, 'pg_dump.env');
  const pgDumpBin = join(exportDir, 'pg_dump-recording');
  writeFileSync(pgDumpBin, `#!/bin/sh\nenv > '${dumpEnvFile}'\nexec pg_dump "$@"\n`, { mode: 0o700 });

  beforeAll(async () => {
    db = await createTestDatabase('prov');
    kit = localProvisioningKit(db.url, db.name, { pgDumpBin });
  });
  afterAll(async () => {
    await kit.cleanup();
    await db.drop();
    rmSync(exportDir, { recursive: true, force: true });
  });

  async function provision(failAfterStep?: string) {
    const ctx = memoryDriverContext(undefined, undefined, failAfterStep);
    kit.track(ctx.tenant.id);
    return { ctx, conn: await kit.driver.provision(ctx) };
  }

  it('gives each tenant a role that reaches its own database and no other', async () => {
    const a = await provision();
    const b = await provision();
    const passA = (await kit.secrets.get(a.conn.secretRef)).password;

    const own = await connectAs(a.conn, passA);
    expect((await own.query('SELECT current_user AS u, current_database() AS d')).rows[0]).toEqual({ u: a.conn.username, d: a.conn.database });
    await own.query('CREATE TABLE notes (id int)'); // owns its schema
    await own.end();

    for (const other of [b.conn.database, db.name, kit.templateDatabase, 'postgres']) {
      expect(await connectError(a.conn, passA, other)).toMatch(/permission denied/i);
    }
    const [tpl] = await adminQuery<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [kit.templateDatabase]);
    expect(tpl.owner).not.toBe(a.conn.username);
  });

  it('closes a database to other roles when its CREATE DATABASE outlived a killed provisioner', async () => {
    const other = await provision();
    const otherPassword = (await kit.secrets.get(other.conn.secretRef)).password;
    // The first attempt made the role, then was SIGKILLed during CREATE DATABASE: the server finished
    // the statement on its own (default privileges: PUBLIC may connect), nothing recorded the step.
    const crashed = memoryDriverContext(undefined, undefined, 'role');
    kit.track(crashed.tenant.id);
    await expect(kit.driver.provision(crashed)).rejects.toThrow(/simulated crash after role/);
    const name = tenantDbName(crashed.tenant.id);
    await adminQuery(`CREATE DATABASE "${name}" OWNER "${name}" TEMPLATE "${kit.templateDatabase}"`);
    expect(await connectError(other.conn, otherPassword, name)).toBe('connected');

    const conn = await kit.driver.provision(memoryDriverContext(crashed.tenant.id));
    expect(await connectError(other.conn, otherPassword, name)).toMatch(/permission denied/i);
    const [acl] = await adminQuery<{ public_connect: boolean; marker: string }>(
      `SELECT EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0) AS public_connect, shobj_description(oid, 'pg_database') AS marker
       FROM pg_database WHERE datname = $1`, [name]);
    expect(acl).toEqual({ public_connect: false, marker: 'silo-instance:default' });
    const own = await connectAs(conn, (await kit.secrets.get(conn.secretRef)).password);
    await own.end();
  });

  it('prepares a template whose creation was cut short by a killed process (database made, nothing granted)', async () => {
    const fresh = localProvisioningKit(db.url, db.name, { prepareTemplate: (url) => prepareTemplate(url, undefined, { migrations: shippedTenantMigrations() }), masterKey: kit.masterKey });
    try {
      await adminQuery(`CREATE DATABASE "${fresh.templateDatabase}"`);
      const ctx = memoryDriverContext();
      fresh.track(ctx.tenant.id);
      const conn = await fresh.driver.provision(ctx);
      const own = await connectAs(conn, (await fresh.secrets.get(conn.secretRef)).password);
      expect((await own.query('SELECT count(*)::int AS n FROM silo._silo_migrations')).rows).toEqual([{ n: 1 }]);
      await own.end();
    } finally {
      await fresh.cleanup();
    }
  });

  it('creates roles without superuser, createrole or createdb, with the tier connection limit plus the default reserve (one runtime replica)', async () => {
    const { conn, ctx } = await provision();
    const [role] = await adminQuery('SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolconnlimit FROM pg_roles WHERE rolname = $1', [conn.username]);
    expect(role).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, rolconnlimit: ctx.tenant.tier.connectionLimit + 2 });
    expect(conn.database).toBe(tenantDbName(ctx.tenant.id));
    expect(conn.database).not.toContain(ctx.tenant.slug);
  });

  it('never stores the password in clear in the control database', async () => {
    const { conn } = await provision();
    const { password } = await kit.secrets.get(conn.secretRef);
    const rows = await adminQuery<{ t: string }>('SELECT row_to_json(s)::text AS t FROM local_secrets s', [], db.name);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.t).not.toContain(password);
  });

  it.each(['secret', 'role', 'database', 'ownership'])('converges after a crash right after step %s', async (step) => {
    const ctx = memoryDriverContext(undefined, undefined, step);
    kit.track(ctx.tenant.id);
    await expect(kit.driver.provision(ctx)).rejects.toThrow(`simulated crash after ${step}`);
    const retry = { ...ctx, step: ctx.step, tenant: ctx.tenant };
    // Same recorded steps, no crash this time.
    const conn = await kit.driver.provision({ ...retry, step: async (n, fn) => (ctx.done.has(n) ? (ctx.done.get(n) as never) : fn()) });
    const dbs = await adminQuery('SELECT datname FROM pg_database WHERE datname = $1', [conn.database]);
    const roles = await adminQuery('SELECT rolname FROM pg_roles WHERE rolname = $1', [conn.username]);
    const secrets = await kit.secrets.list(`silo/tenants/${ctx.tenant.id}`);
    expect([dbs.length, roles.length, secrets.length]).toEqual([1, 1, 1]);
    const c = await connectAs(conn, (await kit.secrets.get(conn.secretRef)).password);
    await c.end();
  });

  it('rotates credentials: the new password connects and the stored verifier no longer accepts the old one', async () => {
    const { conn, ctx } = await provision();
    const old = (await kit.secrets.get(conn.secretRef)).password;
    await kit.driver.rotateCredentials(memoryDriverContext(ctx.tenant.id), conn);
    const fresh = (await kit.secrets.get(conn.secretRef)).password;
    expect(fresh).not.toBe(old);
    await (await connectAs(conn, fresh)).end();
    // This server may use trust auth, so check the stored verifier itself: it proves the new password only.
    const [{ rolpassword }] = await adminQuery<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [conn.username]);
    expect(verifies(rolpassword, fresh)).toBe(true);
    expect(verifies(rolpassword, old)).toBe(false);
  });

  it('offboards: export readable by pg_restore, then no database, role or secret left (or keeps everything without a usable pg_dump)', async () => {
    const { conn, ctx } = await provision();
    const c = await connectAs(conn, (await kit.secrets.get(conn.secretRef)).password);
    await c.query("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1), (2)");
    await c.end();

    if (!(await pgDumpCanExport('path'))) {
      // e.g. the embedded PostgreSQL 18 with an older system pg_dump: refuse, lose nothing.
      await expect(kit.driver.deprovision(memoryDriverContext(ctx.tenant.id), { exportDir, connection: conn })).rejects.toMatchObject({ code: 'EXPORT_TOOL_UNAVAILABLE' });
      expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [conn.database])).toHaveLength(1);
      expect((await kit.secrets.get(conn.secretRef)).username).toBe(conn.username);
      return;
    }
    // Silo's own secrets are in this process's environment; pg_dump must get none of them.
    const silo = { ADMIN_TOKEN: 'admin-token-never-in-a-child', SILO_MASTER_KEY: 'mk', SILO_DIRECTORY_KEY: 'dk', STRIPE_WEBHOOK_SECRET: 'whsec_x', DATABASE_URL: 'postgres://u:p@h/db', REDIS_URL: 'redis://:pw@h' };
    Object.assign(process.env, silo);
    let result: Awaited<ReturnType<typeof kit.driver.deprovision>>;
    try {
      result = await kit.driver.deprovision(memoryDriverContext(ctx.tenant.id), { exportDir, connection: conn });
    } finally {
      for (const k of Object.keys(silo)) delete process.env[k];
    }
    const dumpEnv = Object.fromEntries(readFileSync(dumpEnvFile, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(dumpEnv).toMatchObject({ PGDATABASE: conn.database, PGHOST: expect.any(String) });
    expect(dumpEnv.PATH).toBeTruthy();
    for (const k of Object.keys(silo)) expect(dumpEnv).not.toHaveProperty(k);
    expect(result.exportLocation && existsSync(result.exportLocation)).toBe(true);
    const listing = execFileSync('pg_restore', ['--list', result.exportLocation as string]).toString();
    expect(listing).toMatch(/TABLE public invoices/);

    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [conn.database])).toHaveLength(0);
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [conn.username])).toHaveLength(0);
    await expect(kit.secrets.get(conn.secretRef)).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND' });
  });
});
