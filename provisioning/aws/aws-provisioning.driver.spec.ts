import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateSecretCommand,
  CreateSecretCommandInput,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { CloudWatchClient, GetMetricDataCommand, GetMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { Client } from 'pg';
import { ErrorCode } from '../../common/error-codes';
import { LocalTenantCluster, localTenantCluster } from '../../test/support/aws-tenant-cluster';
import { adminQuery } from '../../test/support/test-db';
import { PgBackendTerminator } from '../../tenant-runtime/backend-terminator';
import { DriverContext, DriverTenant, TenantConnectionInfo } from '../provisioning-driver';
import { AwsSecretStore } from '../secrets/aws-secret-store';
import { DEFAULT_TIERS } from '../tiers';
import { AwsProvisioningDriver } from './aws-provisioning.driver';
import { CLUSTER_TERMINATOR_CONNECTION_LIMIT, CLUSTER_TERMINATOR_DATABASE } from './cluster-terminator-role';
import { IDLE_IN_TRANSACTION_TIMEOUT_MS } from './tenant-app-role';
import { tenantNames } from './tenant-names';
import { TerraformRunner } from './terraform-runner';
import { FAKE_TERRAFORM_ENV, TEST_TENANT_ID, testBackend, testNetwork, writeFakeTerraform } from '../../test/support/aws-fixtures';

/** A DriverContext whose step records behave like the job's: a recorded step is replayed. */
function fakeContext(tenant: DriverTenant, recorded = new Map<string, unknown>()) {
  const lines: string[] = [];
  const ran: string[] = [];
  const ctx: DriverContext = {
    tenant,
    log: (line) => lines.push(line),
    async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
      if (recorded.has(name)) return recorded.get(name) as T;
      ran.push(name);
      const result = await fn();
      recorded.set(name, JSON.parse(JSON.stringify(result)));
      return result;
    },
  };
  return { ctx, lines, ran, recorded };
}

/** The master secret ARN the fake terraform's `output -json` names. */
const MASTER_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-7d2c3b1e-4f5a-4b6c-9d8e-0f1a2b3c4d5e-Xy1Z2a';
const meta = { $metadata: { httpStatusCode: 400 } };

/**
 * Secrets Manager as aws-sdk-client-mock behind a real AwsSecretStore: the master secret holds the
 * local test server's superuser login (standing in for the cluster's master user); created
 * secrets are kept by ARN; rotations and deletions are recorded.
 */
function fakeSecretsManager(cluster: LocalTenantCluster) {
  const client = new SecretsManagerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const sm = mockClient(client);
  const values = new Map<string, string>([[MASTER_ARN, JSON.stringify({ username: cluster.master.username, password: cluster.master.password })]]);
  const created: CreateSecretCommandInput[] = [];
  const rotated: string[] = [];
  const deleted: string[] = [];
  const arnOf = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;
  sm.on(GetSecretValueCommand).callsFake((input: { SecretId: string }) => {
    const v = values.get(input.SecretId);
    if (v === undefined) throw new ResourceNotFoundException({ message: 'not found', ...meta });
    return { SecretString: v };
  });
  sm.on(CreateSecretCommand).callsFake((input: CreateSecretCommandInput) => {
    const arn = arnOf(input.Name as string);
    if (values.has(arn)) throw new ResourceExistsException({ message: 'exists', ...meta });
    created.push(input);
    values.set(arn, input.SecretString as string);
    return { ARN: arn };
  });
  sm.on(DescribeSecretCommand).callsFake((input: { SecretId: string }) => ({ ARN: arnOf(input.SecretId) }));
  sm.on(RotateSecretCommand).callsFake((input: { SecretId: string }) => void rotated.push(input.SecretId));
  sm.on(DeleteSecretCommand).callsFake((input: { SecretId: string }) => void deleted.push(input.SecretId));
  return { store: new AwsSecretStore(client), values, created, rotated, deleted };
}

describe('AwsProvisioningDriver (fake terraform, real synth, mocked Secrets Manager, cluster = local Postgres)', () => {
  let root: string;
  let outdir: string;
  let callLog: string;
  let cluster: LocalTenantCluster;
  /** A session as `user` on the cluster (trust auth on the test server stands in for the IAM login). */
  const session = async <T>(user: string, database: string, fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = new Client({ host: cluster.host, port: cluster.port, database, user });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  let secrets: ReturnType<typeof fakeSecretsManager>;
  let driver: AwsProvisioningDriver;
  // Roles are server-wide: a unique name per run, as for the application role.
  const terminatorRole = `silo_terminator_t${process.pid}_${Date.now().toString(36)}`;

  beforeAll(async () => {
    cluster = await localTenantCluster('awsdriver');
  });
  afterAll(async () => {
    await adminQuery(`DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${terminatorRole}') THEN
      REVOKE ALL ON DATABASE ${CLUSTER_TERMINATOR_DATABASE} FROM "${terminatorRole}"; DROP ROLE "${terminatorRole}"; END IF; END $$`);
    await cluster.cleanup();
    // Left only by a storage test that failed between freeze and unfreeze (it owned objects in the database dropped above).
    await adminQuery(`DROP ROLE IF EXISTS "${cluster.appRole}_frozen"`);
  });

  const tenant: DriverTenant = { id: TEST_TENANT_ID, slug: 'acme-corp', tier: DEFAULT_TIERS.pro, region: 'eu-west-1' };
  const stackDir = () => join(outdir, 'stacks', `tenant-${TEST_TENANT_ID}`);
  const calls = (): string[][] =>
    existsSync(callLog)
      ? readFileSync(callLog, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { argv: string[] }).argv)
      : [];
  const commands = () => calls().map((argv) => (argv[0] === 'state' ? `state ${argv[1]}` : argv[0]));
  const synthesized = () => JSON.parse(readFileSync(join(stackDir(), 'cdk.tf.json'), 'utf8')) as {
    resource: { aws_rds_cluster: { cluster: { deletion_protection: boolean } } };
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'silo-aws-driver-'));
    outdir = join(root, 'cdktf.out');
    callLog = join(root, 'calls.log');
    secrets = fakeSecretsManager(cluster);
    driver = makeDriver();
  });
  const makeDriver = (env: Record<string, string> = {}) =>
    new AwsProvisioningDriver({
      runner: new TerraformRunner({
        binary: writeFakeTerraform(root),
        env: { PATH: process.env.PATH as string, FAKE_TF_LOG: callLog, ...cluster.terraformEnv, ...env },
        passEnv: FAKE_TERRAFORM_ENV,
        killGraceMs: 200,
      }),
      secrets: secrets.store,
      network: testNetwork(),
      backend: testBackend(),
      outdir,
      appRole: cluster.appRole,
      terminatorRole,
      masterTls: false,
      rds: new RDSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }),
      // Three runtime replicas: the role's limit is three pools plus the reserve.
      connectionBudget: { runtimeReplicas: 3, reserve: 2 },
    });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('provisions: synth, init, apply, outputs, the tenant role, the terminator role, its connection secret; the connection is the role, not the master user', async () => {
    const { ctx, lines, ran } = fakeContext(tenant);
    const info = await driver.provision(ctx);

    expect(info).toEqual({
      host: cluster.host,
      port: cluster.port,
      database: cluster.database,
      username: cluster.appRole,
      secretRef: `arn:aws:secretsmanager:eu-west-1:123456789012:secret:silo/tenants/${TEST_TENANT_ID}/app-AbCdEf`,
    });
    expect(info.username).not.toBe('silo_admin');
    expect(info.secretRef).not.toBe(MASTER_ARN);
    // The runtime's secret: no password, IAM login, the cluster's region; the master ARN only as a pointer for the worker.
    expect(secrets.created).toHaveLength(1);
    expect(JSON.parse(secrets.created[0].SecretString as string)).toEqual({ username: cluster.appRole, password: '', auth: 'iam', region: 'eu-west-1', masterSecretRef: MASTER_ARN });
    expect(secrets.created[0].Tags).toEqual(expect.arrayContaining([{ Key: 'silo:tenant-id', Value: TEST_TENANT_ID }, { Key: 'managed-by', Value: 'silo' }]));
    expect(ran).toEqual(['synth', 'init', 'apply', 'outputs', 'tenant-role', 'terminator-role', 'tenant-secret']);
    expect(lines.join('\n')).not.toContain(cluster.master.password || 'no-password-in-this-run');
    expect(commands()).toEqual(['init', 'apply', 'output']);
    expect(readFileSync(callLog, 'utf8')).toContain(`"cwd":${JSON.stringify(stackDir())}`);
    expect(synthesized().resource.aws_rds_cluster.cluster.deletion_protection).toBe(true);
    expect(lines).toEqual(expect.arrayContaining(['$ terraform apply', expect.stringMatching(/^Apply complete! Resources: \d+ added/)]));
  });

  it('replays recorded steps without running terraform again', async () => {
    const first = fakeContext(tenant);
    const info = await driver.provision(first.ctx);
    const before = calls().length;

    const retry = fakeContext(tenant, first.recorded);
    expect(await driver.provision(retry.ctx)).toEqual(info);
    expect(retry.ran).toEqual([]);
    expect(calls()).toHaveLength(before);
  });

  it('resumes on a host without the synthesized stack: re-synthesizes and re-inits before apply', async () => {
    const first = fakeContext(tenant);
    await first.ctx.step('synth', async () => 'elsewhere');
    await first.ctx.step('init', async () => true);
    const info = await driver.provision(first.ctx);
    expect(info.port).toBe(cluster.port);
    expect(commands()).toEqual(['init', 'apply', 'output']);
  });

  it('surfaces a failed apply as TERRAFORM_FAILED and records no outputs', async () => {
    const { ctx, recorded } = fakeContext(tenant);
    await expect(makeDriver({ FAKE_TF_FAIL: 'apply' }).provision(ctx)).rejects.toMatchObject({ code: ErrorCode.TERRAFORM_FAILED });
    expect([...recorded.keys()]).toEqual(['synth', 'init']);
  });

  it('deprovisions: lifts deletion protection, keeps the KMS key, destroys, deletes the connection secret, returns the final snapshot', async () => {
    const connection = await driver.provision(fakeContext(tenant).ctx);
    rmSync(callLog);

    const { ctx, ran } = fakeContext(tenant);
    const result = await driver.deprovision(ctx, { exportDir: join(root, 'exports'), connection });

    expect(result).toEqual({ exportLocation: `silo-tenant-${TEST_TENANT_ID}-final` });
    expect(ran).toEqual(['deprovision-synth', 'deprovision-inspect', 'deprovision-unprotect', 'deprovision-retain-key', 'deprovision-destroy', 'deprovision-delete-secret']);
    expect(secrets.deleted).toEqual([connection.secretRef]);
    expect(calls()).toEqual([
      ['init', '-input=false', '-no-color'],
      ['state', 'list'],
      ['apply', '-auto-approve', '-input=false', '-no-color', '-lock-timeout=300s', '-target=aws_rds_cluster.cluster'],
      ['state', 'list'],
      ['state', 'rm', 'aws_kms_key.kms_key', 'aws_kms_alias.kms_alias'],
      ['destroy', '-auto-approve', '-input=false', '-no-color', '-lock-timeout=300s'],
    ]);
    expect(synthesized().resource.aws_rds_cluster.cluster.deletion_protection).toBe(false);
  });

  it('deprovisions a tenant with nothing in state without applying (which would create a cluster)', async () => {
    const { ctx } = fakeContext(tenant);
    const result = await driver.deprovision(ctx, { exportDir: root, connection: null });
    expect(result).toEqual({ exportLocation: null });
    expect(commands()).toEqual(['init', 'state list', 'state list', 'destroy']);
    // No connection recorded: the connection secret is deleted by name (absent is fine).
    expect(secrets.deleted).toEqual([`silo/tenants/${TEST_TENANT_ID}/app`]);
  });

  it('rotates a connection from before application roles (secretRef = master secret) through managed rotation of it', async () => {
    const { ctx, ran } = fakeContext(tenant);
    const secretRef = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-abc-XyZ';
    await driver.rotateCredentials(ctx, { host: 'h', port: 5432, database: 'd', username: 'silo_admin', secretRef });
    expect(secrets.rotated).toEqual([secretRef]);
    expect(ran).toEqual(['rotate-managed-secret']);
    expect(calls()).toEqual([]);
  });

  it('rotates an IAM connection: converges the roles again, then rotates the master secret its secret names (the role has no password)', async () => {
    const connection = await driver.provision(fakeContext(tenant).ctx);
    const { ctx, ran } = fakeContext(tenant);
    await driver.rotateCredentials(ctx, connection);
    expect(ran).toEqual(['tenant-role', 'terminator-role', 'rotate-managed-secret']);
    expect(secrets.rotated).toEqual([MASTER_ARN]);
    expect(secrets.created).toHaveLength(1);
  });

  describe('the tenant role on the cluster', () => {
    let connection: TenantConnectionInfo;
    const asApp = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
      // Local stand-in for the IAM login: trust auth on the test server lets the role in without a token.
      const c = new Client({ host: cluster.host, port: cluster.port, database: cluster.database, user: cluster.appRole });
      await c.connect();
      try {
        return await fn(c);
      } finally {
        await c.end();
      }
    };
    const roleRow = async () => (await adminQuery<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolreplication: boolean; rolbypassrls: boolean; rolcanlogin: boolean; rolconnlimit: number; rolconfig: string[]; haspassword: boolean; iam: boolean }>(
      `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolcanlogin, r.rolconnlimit, r.rolconfig,
              a.rolpassword IS NOT NULL AS haspassword, pg_has_role(r.oid, 'rds_iam', 'MEMBER') AS iam
       FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = $1`, [cluster.appRole]))[0];

    beforeEach(async () => {
      connection = await driver.provision(fakeContext(tenant).ctx);
    });

    it('is a login role in rds_iam, without a password, superuser, CREATEROLE or CREATEDB, with the tier\'s settings and a connection limit for every replica plus the reserve', async () => {
      const tier = DEFAULT_TIERS.pro;
      expect(connection.username).toBe(cluster.appRole);
      expect(await roleRow()).toEqual({
        rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false, rolcanlogin: true,
        rolconnlimit: tier.connectionLimit * 3 + 2, haspassword: false, iam: true,
        rolconfig: expect.arrayContaining([`statement_timeout=${tier.statementTimeoutMs}`, `idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_TIMEOUT_MS}`, `temp_file_limit=${tier.tempFileLimitMb}MB`]),
      });
      expect((await roleRow()).rolconfig).toHaveLength(3);
      const shown = await asApp(async (c) => (await c.query<{ st: string; tfl: string; usr: string }>(`SELECT current_setting('statement_timeout') AS st, current_setting('temp_file_limit') AS tfl, current_user AS usr`)).rows[0]);
      expect(shown).toEqual({ st: `${tier.statementTimeoutMs / 1000}s`, tfl: `${tier.tempFileLimitMb / 1024}GB`, usr: cluster.appRole });
    });

    it('is converged idempotently: a second provision and a rotation change nothing and fail nothing', async () => {
      const before = await roleRow();
      const again = fakeContext(tenant);
      await driver.provision(again.ctx);
      expect(again.ran).toEqual(['synth', 'init', 'apply', 'outputs', 'tenant-role', 'terminator-role', 'tenant-secret']);
      await driver.rotateCredentials(fakeContext(tenant).ctx, connection);
      expect(await roleRow()).toEqual(before);
      expect(secrets.created).toHaveLength(1);
    });

    it('owns its work in the tenant database, and PUBLIC has no CONNECT there any more', async () => {
      await asApp(async (c) => {
        await c.query('CREATE TABLE public.notes (id int PRIMARY KEY, body text)');
        await c.query(`INSERT INTO notes VALUES (1, 'x')`);
        await c.query('CREATE TEMP TABLE scratch (x int)');
      });
      const [acl] = await adminQuery<{ public_connect: boolean; app_create: boolean }>(
        `SELECT has_database_privilege('public', $1, 'CONNECT') AS public_connect, has_database_privilege($2, $1, 'CREATE') AS app_create`, [cluster.database, cluster.appRole]);
      expect(acl).toEqual({ public_connect: false, app_create: true });
    });

    it('cannot touch the master user or make roles, from its own session', async () => {
      const attempts = [
        `ALTER ROLE ${JSON.stringify(cluster.master.username)} PASSWORD 'taken-over'`,
        `ALTER ROLE ${JSON.stringify(cluster.master.username)} NOLOGIN`,
        `ALTER ROLE ${JSON.stringify(cluster.master.username)} SET statement_timeout = 1`,
        'CREATE ROLE sidekick LOGIN',
        `ALTER ROLE current_user CREATEROLE`,
        `ALTER ROLE current_user SUPERUSER`,
        `ALTER ROLE current_user SET temp_file_limit = -1`,
        `GRANT ${JSON.stringify(cluster.master.username)} TO current_user`,
        `SET ROLE ${JSON.stringify(cluster.master.username)}`,
      ];
      const codes = await asApp(async (c) => {
        const out: Record<string, string> = {};
        for (const sql of attempts) out[sql] = await c.query(sql).then(() => 'ran', (e: { code?: string }) => e.code ?? 'error');
        return out;
      });
      for (const sql of attempts) expect({ sql, code: codes[sql] }).toEqual({ sql, code: '42501' });
    });

    it('resets role defaults the tenant set on itself at the next convergence; database defaults do not steer the master session', async () => {
      await asApp(async (c) => {
        await c.query('ALTER ROLE current_user SET statement_timeout = 1');
        await c.query(`ALTER ROLE current_user IN DATABASE ${JSON.stringify(cluster.database)} SET search_path = evil`);
        await c.query('ALTER ROLE current_user SET default_transaction_read_only = on');
      });
      // A read-only default and a 1 ms timeout on the database would break a session without ADMIN_SESSION_OPTIONS.
      await adminQuery(`ALTER DATABASE "${cluster.database}" SET default_transaction_read_only = on`);
      await adminQuery(`ALTER DATABASE "${cluster.database}" SET statement_timeout = 1`);
      try {
        await driver.rotateCredentials(fakeContext(tenant).ctx, connection);
      } finally {
        await adminQuery(`ALTER DATABASE "${cluster.database}" RESET ALL`);
      }
      const tier = DEFAULT_TIERS.pro;
      expect((await roleRow()).rolconfig.sort()).toEqual([`idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_TIMEOUT_MS}`, `statement_timeout=${tier.statementTimeoutMs}`, `temp_file_limit=${tier.tempFileLimitMb}MB`]);
      const perDb = await adminQuery(`SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1 AND s.setrole <> 0`, [cluster.database]);
      expect(perDb).toEqual([]);
    });
  });

  describe('the terminator role on the cluster', () => {
    let connection: TenantConnectionInfo;
    const roleRow = async () => (await adminQuery<Record<string, unknown>>(
      `SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolcanlogin, r.rolinherit, r.rolconnlimit,
              a.rolpassword IS NOT NULL AS haspassword,
              ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of,
              ARRAY(SELECT u.rolname::text FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE m.roleid = r.oid ORDER BY 1) AS members,
              has_database_privilege(r.oid, $2, 'CONNECT') AS connect_maintenance
       FROM pg_roles r JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = $1`, [terminatorRole, CLUSTER_TERMINATOR_DATABASE]))[0];
    const expected = {
      rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false, rolcanlogin: true, rolinherit: true,
      rolconnlimit: CLUSTER_TERMINATOR_CONNECTION_LIMIT, haspassword: false,
      member_of: ['pg_read_all_stats', 'pg_signal_backend', 'rds_iam'], members: [], connect_maintenance: true,
    };

    beforeEach(async () => {
      connection = await driver.provision(fakeContext(tenant).ctx);
    });

    it('is a login role without a password in exactly rds_iam, pg_signal_backend and pg_read_all_stats, with no members and nothing else', async () => {
      expect(await roleRow()).toEqual(expected);
      const tenantApp = await adminQuery<{ member: boolean; usage: boolean }>(
        `SELECT pg_has_role($1, $2, 'MEMBER') AS member, pg_has_role($1, $2, 'USAGE') AS usage`, [cluster.appRole, terminatorRole]);
      expect(tenantApp).toEqual([{ member: false, usage: false }]);
    });

    it('is converged idempotently, and a member someone added is removed at the next convergence (rotation)', async () => {
      const again = fakeContext(tenant);
      await driver.provision(again.ctx);
      expect(again.recorded.get('terminator-role')).toEqual({ role: terminatorRole, revokedMembers: [] });
      expect(await roleRow()).toEqual(expected);
      await adminQuery(`GRANT "${terminatorRole}" TO "${cluster.appRole}"; ALTER ROLE "${terminatorRole}" SUPERUSER PASSWORD 'pw' CONNECTION LIMIT -1`);
      const rotation = fakeContext(tenant);
      await driver.rotateCredentials(rotation.ctx, connection);
      expect(rotation.recorded.get('terminator-role')).toEqual({ role: terminatorRole, revokedMembers: [cluster.appRole] });
      expect(rotation.lines).toContain(`removed from ${terminatorRole}: ${cluster.appRole}`);
      expect(await roleRow()).toEqual(expected);
    });

    it('cannot be become, granted, altered, dropped or signalled by the tenant role', async () => {
      await session(terminatorRole, CLUSTER_TERMINATOR_DATABASE, async (terminatorSession) => {
        const pid = (await terminatorSession.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
        const t = JSON.stringify(terminatorRole);
        const attempts = [
          `SET ROLE ${t}`,
          `SET SESSION AUTHORIZATION ${t}`,
          `GRANT ${t} TO current_user`,
          `GRANT pg_signal_backend TO current_user`,
          `ALTER ROLE ${t} PASSWORD 'taken-over'`,
          `ALTER ROLE ${t} NOLOGIN`,
          `ALTER ROLE ${t} SET statement_timeout = 1`,
          `ALTER ROLE ${t} RENAME TO evil`,
          `DROP ROLE ${t}`,
          `SELECT pg_terminate_backend(${pid})`,
          `SELECT pg_cancel_backend(${pid})`,
        ];
        const codes = await session(cluster.appRole, cluster.database, async (c) => {
          const out: Record<string, string> = {};
          for (const sql of attempts) out[sql] = await c.query(sql).then(() => 'ran', (e: { code?: string }) => e.code ?? 'error');
          return out;
        });
        for (const sql of attempts) expect({ sql, code: codes[sql] }).toEqual({ sql, code: '42501' });
        // Its session survived all of it.
        expect((await terminatorSession.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      });
      expect(await roleRow()).toEqual(expected);
    });

    it('ends a tenant backend that ignores cancels, through the runtime\'s terminator logged in as it', async () => {
      const tenantSession = new Client({ host: cluster.host, port: cluster.port, database: cluster.database, user: cluster.appRole });
      tenantSession.on('error', () => undefined);
      await tenantSession.connect();
      const pid = (await tenantSession.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const trap = tenantSession.query(`DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(0.05); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$`).catch((e: { code?: string }) => e.code);
      const terminator = new PgBackendTerminator(async () => ({ user: terminatorRole, password: '', database: CLUSTER_TERMINATOR_DATABASE }));
      const server = { host: cluster.host, port: cluster.port };
      const ref = { ...server, pid, role: cluster.appRole };
      try {
        expect(await terminator.reap(server, [ref])).toEqual(new Set([pid]));
        expect(await trap).toBe('57P01'); // admin_shutdown: terminated
        const deadline = Date.now() + 2_000;
        let left = await terminator.reap(server, [ref]);
        while (left.size && Date.now() < deadline) left = await new Promise((r) => setTimeout(r, 50)).then(() => terminator.reap(server, [ref]));
        expect(left).toEqual(new Set());
      } finally {
        await terminator.close();
        await tenantSession.end().catch(() => undefined);
      }
    });
  });

  describe('storage quotas', () => {
    const frozenRole = () => `${cluster.appRole}_frozen`;
    const asApp = <T>(fn: (c: Client) => Promise<T>): Promise<T> => session(cluster.appRole, cluster.database, fn);
    const attempt = (c: Client, sql: string) => c.query(sql).then(() => 'ok', (e: { code?: string; message?: string }) => e.code ?? e.message ?? 'error');
    const acl = async () => adminQuery<{ what: string; acl: string | null; owner: string }>(
      // Effective ACLs (a NULL ACL is the owner's default).
      `SELECT 'rel ' || c.relname AS what, coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))::text AS acl, pg_get_userbyid(c.relowner) AS owner
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relname IN ('storage_things', 'storage_things_id_seq')
       UNION ALL SELECT 'nsp ' || n.nspname, coalesce(n.nspacl, acldefault('n', n.nspowner))::text, pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname IN ('app', 'public')
       UNION ALL SELECT 'db', coalesce(d.datacl, acldefault('d', d.datdba))::text, pg_get_userbyid(d.datdba) FROM pg_database d WHERE d.datname = current_database()
       ORDER BY 1`, [], cluster.database);

    it('has no measureStorage without a CloudWatch client (the sweep skips the driver), and setWriteFreeze regardless', () => {
      expect(driver.measureStorage).toBeUndefined();
      expect(typeof driver.setWriteFreeze).toBe('function');
    });

    it('measures each tenant database as its cluster\'s latest VolumeBytesUsed (one GetMetricData for all), unknown when no datapoint or not a driver database name', async () => {
      const cwClient = new CloudWatchClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
      const cw = mockClient(cwClient);
      const other = '7c9d0e1f-2222-4333-8444-555566667777';
      cw.on(GetMetricDataCommand).callsFake((input: GetMetricDataCommandInput) => ({
        MetricDataResults: (input.MetricDataQueries ?? []).map((q) => {
          const cluster = q.MetricStat?.Metric?.Dimensions?.[0]?.Value;
          return cluster === tenantNames(TEST_TENANT_ID).clusterIdentifier
            ? { Id: q.Id, StatusCode: 'Complete', Timestamps: [new Date()], Values: [123_456_789] }
            : { Id: q.Id, StatusCode: 'Complete', Timestamps: [], Values: [] };
        }),
      }));
      const measuring = new AwsProvisioningDriver({ runner: new TerraformRunner({ binary: 'terraform' }), secrets: secrets.store, network: testNetwork(), backend: testBackend(), cloudWatch: cwClient, rds: new RDSClient({ region: 'eu-west-1' }) });
      const db = tenantNames(TEST_TENANT_ID).databaseName;
      const sizes = await measuring.measureStorage!([db, tenantNames(other).databaseName, 'postgres', 'tenant_Bad']);
      expect([...sizes]).toEqual([[db, 123_456_789]]);
      const calls = cw.commandCalls(GetMetricDataCommand);
      expect(calls).toHaveLength(1);
      expect(calls[0].args[0].input.MetricDataQueries?.map((q) => q.MetricStat?.Metric?.Dimensions)).toEqual([
        [{ Name: 'DBClusterIdentifier', Value: `silo-tenant-${TEST_TENANT_ID}` }],
        [{ Name: 'DBClusterIdentifier', Value: `silo-tenant-${other}` }],
      ]);
    });

    it('freezes the application role on the cluster as the master user (write-freeze.ts), holds through a rotation, and unfreezes exactly', async () => {
      const connection = await driver.provision(fakeContext(tenant).ctx);
      expect(connection.username).toBe(cluster.appRole);
      await asApp(async (c) => {
        for (const sql of [
          'CREATE SCHEMA IF NOT EXISTS app',
          'CREATE TABLE IF NOT EXISTS app.storage_things (id serial PRIMARY KEY, v text)',
          "INSERT INTO app.storage_things (v) VALUES ('before')",
        ]) expect([sql, await attempt(c, sql)]).toEqual([sql, 'ok']);
      });
      const before = await acl();
      const session = new Client({ host: cluster.host, port: cluster.port, database: cluster.database, user: cluster.appRole });
      session.on('error', () => undefined);
      await session.connect();

      await driver.setWriteFreeze(connection, true);
      // Its open session was ended.
      expect(await attempt(session, 'SELECT 1')).toMatch(/^57P01$|Connection terminated|not queryable/);
      const frozen = await acl();
      expect(frozen).not.toEqual(before);
      expect(frozen.filter((r) => r.what.startsWith('rel ')).map((r) => r.owner)).toEqual([frozenRole(), frozenRole()]);

      const hostile = [
        "INSERT INTO app.storage_things (v) VALUES ('x')",
        "UPDATE app.storage_things SET v = 'y'",
        'DELETE FROM app.storage_things',
        'CREATE TABLE app.more (id int)',
        'CREATE TABLE public.more (id int)',
        'CREATE TEMP TABLE scratch (id int)',
        `ALTER TABLE app.storage_things OWNER TO "${cluster.appRole}"`,
        `SET ROLE "${frozenRole()}"`,
        'SELECT lo_create(0)',
        "SET default_transaction_read_only = off; INSERT INTO app.storage_things (v) VALUES ('x')",
      ];
      const probe = async (label: string) => asApp(async (c) => {
        // A GRANT by a non-owner grants nothing (a warning, not an error): the ACLs must not move.
        expect(['ok', '42501']).toContain(await attempt(c, `GRANT INSERT ON app.storage_things TO "${cluster.appRole}"`));
        expect(await acl()).toEqual(frozen);
        const outcomes: Record<string, string> = {};
        for (const sql of hostile) outcomes[sql] = await attempt(c, sql);
        expect([label, Object.entries(outcomes).filter(([, code]) => code !== '42501')]).toEqual([label, []]);
        expect((await c.query('SELECT v FROM app.storage_things ORDER BY id')).rows).toEqual([{ v: 'before' }]);
      });
      await probe('frozen');

      // Rotation converges the role again (re-grants CONNECT, TEMPORARY, CREATE): the freeze is re-applied.
      const { ctx, lines } = fakeContext(tenant);
      await driver.rotateCredentials(ctx, connection);
      expect(lines).toContain(`write freeze of ${cluster.appRole} re-applied`);
      expect(await acl()).toEqual(frozen);
      await probe('after a rotation');
      await driver.setWriteFreeze(connection, true); // again: idempotent
      expect(await acl()).toEqual(frozen);

      await driver.setWriteFreeze(connection, false);
      expect(await acl()).toEqual(before);
      expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [frozenRole()])).toEqual([]);
      await asApp(async (c) => {
        for (const sql of ["INSERT INTO app.storage_things (v) VALUES ('after')", 'CREATE TEMP TABLE scratch (id int)', 'CREATE TABLE IF NOT EXISTS public.more (id int)']) {
          expect([sql, await attempt(c, sql)]).toEqual([sql, 'ok']);
        }
      });
      await driver.setWriteFreeze(connection, false); // again: a no-op
      // A rotation of an unfrozen tenant re-applies nothing.
      const again = fakeContext(tenant);
      await driver.rotateCredentials(again.ctx, connection);
      expect(again.lines.filter((l) => l.includes('write freeze'))).toEqual([]);
      await session.end().catch(() => undefined);
    });

    it('refuses to freeze a connection from before application roles (tenant SQL as the master user), touching nothing', async () => {
      const legacy: TenantConnectionInfo = { host: cluster.host, port: cluster.port, database: cluster.database, username: cluster.master.username, secretRef: MASTER_ARN };
      await expect(driver.setWriteFreeze(legacy, true)).rejects.toMatchObject({ code: ErrorCode.PROVISIONING_FAILED, status: 409 });
      expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [`${cluster.master.username}_frozen`])).toEqual([]);
    });
  });
});
