import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '../../common/error-codes';
import { DriverContext, DriverTenant } from '../provisioning-driver';
import { DEFAULT_TIERS } from '../tiers';
import { AwsProvisioningDriver } from './aws-provisioning.driver';
import { TerraformRunner } from './terraform-runner';
import { FAKE_TERRAFORM_ENV, TEST_TENANT_ID, testBackend, testNetwork, writeFakeTerraform } from './testing';

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

describe('AwsProvisioningDriver (fake terraform, real synth)', () => {
  let root: string;
  let outdir: string;
  let callLog: string;
  let rotated: string[];
  let driver: AwsProvisioningDriver;

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
    rotated = [];
    driver = makeDriver();
  });
  const makeDriver = (env: Record<string, string> = {}) =>
    new AwsProvisioningDriver({
      runner: new TerraformRunner({
        binary: writeFakeTerraform(root),
        env: { PATH: process.env.PATH, FAKE_TF_LOG: callLog, ...env },
        passEnv: FAKE_TERRAFORM_ENV,
        killGraceMs: 200,
      }),
      secrets: { rotateManaged: async (ref) => void rotated.push(ref) },
      network: testNetwork(),
      backend: testBackend(),
      outdir,
    });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('provisions: synth, init, apply, outputs, returning connection info without a password', async () => {
    const { ctx, lines, ran } = fakeContext(tenant);
    const info = await driver.provision(ctx);

    expect(info).toEqual({
      host: `silo-tenant-${TEST_TENANT_ID}.cluster-c9akciq32ltz.eu-west-1.rds.amazonaws.com`,
      port: 5432,
      database: 'tenant_0f8e2c1a_1111_4222_8333_444455556666',
      username: 'silo_admin',
      secretRef: expect.stringMatching(/^arn:aws:secretsmanager:eu-west-1:\d+:secret:rds!cluster-/),
    });
    expect(ran).toEqual(['synth', 'init', 'apply', 'outputs']);
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
    expect(info.port).toBe(5432);
    expect(commands()).toEqual(['init', 'apply', 'output']);
  });

  it('surfaces a failed apply as TERRAFORM_FAILED and records no outputs', async () => {
    const { ctx, recorded } = fakeContext(tenant);
    await expect(makeDriver({ FAKE_TF_FAIL: 'apply' }).provision(ctx)).rejects.toMatchObject({ code: ErrorCode.TERRAFORM_FAILED });
    expect([...recorded.keys()]).toEqual(['synth', 'init']);
  });

  it('deprovisions: lifts deletion protection, keeps the KMS key, destroys, returns the final snapshot', async () => {
    await driver.provision(fakeContext(tenant).ctx);
    rmSync(callLog);

    const { ctx, ran } = fakeContext(tenant);
    const result = await driver.deprovision(ctx, { exportDir: join(root, 'exports'), connection: null });

    expect(result).toEqual({ exportLocation: `silo-tenant-${TEST_TENANT_ID}-final` });
    expect(ran).toEqual(['deprovision-synth', 'deprovision-inspect', 'deprovision-unprotect', 'deprovision-retain-key', 'deprovision-destroy']);
    expect(calls()).toEqual([
      ['init', '-input=false', '-no-color'],
      ['state', 'list'],
      ['apply', '-auto-approve', '-input=false', '-no-color', '-target=aws_rds_cluster.cluster'],
      ['state', 'list'],
      ['state', 'rm', 'aws_kms_key.kms_key', 'aws_kms_alias.kms_alias'],
      ['destroy', '-auto-approve', '-input=false', '-no-color'],
    ]);
    expect(synthesized().resource.aws_rds_cluster.cluster.deletion_protection).toBe(false);
  });

  it('deprovisions a tenant with nothing in state without applying (which would create a cluster)', async () => {
    const { ctx } = fakeContext(tenant);
    const result = await driver.deprovision(ctx, { exportDir: root, connection: null });
    expect(result).toEqual({ exportLocation: null });
    expect(commands()).toEqual(['init', 'state list', 'state list', 'destroy']);
  });

  it('rotates credentials through managed rotation of the RDS secret', async () => {
    const { ctx, ran } = fakeContext(tenant);
    const secretRef = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-abc-XyZ';
    await driver.rotateCredentials(ctx, { host: 'h', port: 5432, database: 'd', username: 'silo_admin', secretRef });
    expect(rotated).toEqual([secretRef]);
    expect(ran).toEqual(['rotate-managed-secret']);
    expect(calls()).toEqual([]);
  });
});
