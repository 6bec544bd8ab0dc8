import { RDSClient } from '@aws-sdk/client-rds';
import { Client } from 'pg';
import { adminQuery, createEmptyDatabase, dropDatabase, TestDatabase } from '../../test/support/test-db';
import { testDatabaseUrl } from '../../test/support/env';
import { frozenRoleName } from '../local/write-freeze';
import type { TenantSecret } from '../secrets/secret-store';
import { DEFAULT_TIERS } from '../tiers';
import { AwsDriverSecrets, AwsProvisioningDriver } from './aws-provisioning.driver';
import { ensureTenantAppRole } from './tenant-app-role';
import { TerraformRunner } from './terraform-runner';
import { testBackend, testNetwork } from '../../test/support/aws-fixtures';

const MASTER_REF = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-0000-AbCdEf';
const APP_REF = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:silo/tenants/t/app-AbCdEf';

/**
 * Aurora's master user is not a superuser (rds_superuser; CREATEROLE, owns the cluster's database).
 * Local stand-in: a NOSUPERUSER CREATEROLE login owning the tenant database, with pg_signal_backend.
 * PostgreSQL 15 here; Aurora defaults to 16, whose CREATEROLE rules differ (the creator holds ADMIN
 * on roles it made): not verified against a real cluster.
 */
describe('AwsProvisioningDriver.setWriteFreeze as a non-superuser master user (local PostgreSQL in place of Aurora)', () => {
  const host = new URL(testDatabaseUrl()).hostname;
  const port = Number(new URL(testDatabaseUrl()).port || 5432);
  const master = `silo_master_t${process.pid}`;
  const app = `tenant_app_m${process.pid}`;
  let db: TestDatabase;
  let driver: AwsProvisioningDriver;

  beforeAll(async () => {
    db = await createEmptyDatabase('awsfreeze');
    await adminQuery(`CREATE ROLE ${master} LOGIN NOSUPERUSER CREATEROLE CREATEDB PASSWORD 'master-pw'`);
    await adminQuery(`GRANT pg_signal_backend TO ${master}`);
    await adminQuery(`ALTER DATABASE ${db.name} OWNER TO ${master}`);
    await adminQuery(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN CREATE ROLE rds_iam NOLOGIN; END IF; END $$`);
    await ensureTenantAppRole({ host, port, database: db.name, user: master, password: 'master-pw', ssl: false }, DEFAULT_TIERS.pro, app);
    const values: Record<string, TenantSecret> = {
      [MASTER_REF]: { username: master, password: 'master-pw' },
      [APP_REF]: { username: app, password: '', auth: 'iam', region: 'eu-west-1', masterSecretRef: MASTER_REF },
    };
    const secrets: AwsDriverSecrets = {
      get: async (ref) => values[ref],
      create: async () => { throw new Error('not used'); },
      delete: async () => undefined,
      rotateManaged: async () => undefined,
    };
    driver = new AwsProvisioningDriver({ runner: new TerraformRunner({ binary: 'terraform' }), secrets, network: testNetwork(), backend: testBackend(), masterTls: false, rds: new RDSClient({ region: 'eu-west-1' }) });
  });
  afterAll(async () => {
    await dropDatabase(db.name);
    for (const role of [frozenRoleName(app), app, master]) await adminQuery(`DROP ROLE IF EXISTS "${role}"`);
  });

  const asApp = async (fn: (c: Client) => Promise<void>) => {
    const c = new Client({ host, port, database: db.name, user: app });
    await c.connect();
    try {
      await fn(c);
    } finally {
      await c.end();
    }
  };
  const attempt = (c: Client, sql: string) => c.query(sql).then(() => 'ok', (e: { code?: string }) => e.code ?? 'error');

  it('freezes tables, schemas and temporary tables and unfreezes; large-object creation stays open (catalog functions the master does not own)', async () => {
    const connection = { host, port, database: db.name, username: app, secretRef: APP_REF };
    await asApp(async (c) => {
      await c.query('CREATE TABLE public.t (id int)');
      await c.query('INSERT INTO public.t VALUES (1)');
    });
    await driver.setWriteFreeze(connection, true);
    await asApp(async (c) => {
      const refused: Record<string, string> = {};
      for (const sql of ['INSERT INTO public.t VALUES (2)', 'UPDATE public.t SET id = 3', 'CREATE TABLE public.x (id int)', 'CREATE TEMP TABLE y (id int)', `ALTER TABLE public.t OWNER TO ${app}`]) refused[sql] = await attempt(c, sql);
      expect(Object.entries(refused).filter(([, code]) => code !== '42501')).toEqual([]);
      expect((await c.query('SELECT id FROM public.t')).rows).toEqual([{ id: 1 }]);
      // The known gap: REVOKE EXECUTE on pg_catalog's lo_* and pg_logical_emit_message by a
      // non-owner revokes nothing, so a tenant can still create (and fill) large objects.
      expect(await attempt(c, "SELECT lo_from_bytea(0, 'still writable')")).toBe('ok');
    });
    await driver.setWriteFreeze(connection, false);
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [frozenRoleName(app)])).toEqual([]);
    await asApp(async (c) => {
      expect(await attempt(c, 'INSERT INTO public.t VALUES (4)')).toBe('ok');
      expect((await c.query(`SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'public.t'::regclass`)).rows).toEqual([{ owner: app }]);
    });
  });
});
