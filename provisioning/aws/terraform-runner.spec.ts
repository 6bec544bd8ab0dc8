import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import { TerraformRunner, parseTerraformOutputs } from './terraform-runner';
import { FAKE_TERRAFORM_ENV, writeFakeTerraform } from '../../test/support/aws-fixtures';

interface Call {
  argv: string[];
  cwd: string;
  pid: number;
  envKeys: string[];
  tfInAutomation?: string;
}

const SECRET_ENV_VALUE = 'AKIA-not-a-real-key-but-never-print-me';

/** Running, i.e. signalable and not a zombie waiting for whatever adopted it to reap it. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return true; // no procfs (or reaped meanwhile): trust kill(0), the caller polls again
  }
}

async function waitUntil(check: () => boolean, ms = 2_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

async function caught(p: Promise<unknown>): Promise<SiloError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SiloError) return e;
    throw e;
  }
  throw new Error('expected a SiloError');
}

describe('TerraformRunner', () => {
  let root: string;
  let binary: string;
  let stackDir: string;
  let log: string;
  let pidsFile: string;

  const calls = (): Call[] =>
    existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Call) : [];
  const runner = (env: Record<string, string> = {}, timeoutsMs = {}) =>
    new TerraformRunner({
      binary,
      timeoutsMs,
      killGraceMs: 300,
      env: { PATH: process.env.PATH, FAKE_TF_LOG: log, FAKE_TF_PIDS: pidsFile, AWS_SECRET_ACCESS_KEY: SECRET_ENV_VALUE, ...env },
      passEnv: FAKE_TERRAFORM_ENV,
    });

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'silo-tf-runner-'));
    binary = writeFakeTerraform(root);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  beforeEach(() => {
    const n = mkdtempSync(join(root, 'case-'));
    stackDir = join(n, 'stacks', 'tenant-abc123');
    mkdirSync(stackDir, { recursive: true });
    writeFileSync(join(stackDir, 'cdk.tf.json'), JSON.stringify({ resource: { aws_kms_key: { kms_key: {} } } }));
    log = join(n, 'calls.log');
    pidsFile = join(n, 'pids.json');
  });

  it('runs init, apply, output and destroy with the right arguments in the stack directory', async () => {
    const tf = runner();
    await tf.init(stackDir);
    await tf.apply(stackDir);
    await tf.output(stackDir);
    await tf.destroy(stackDir);
    await tf.apply(stackDir, { targets: ['aws_rds_cluster.cluster'] });

    const recorded = calls();
    expect(recorded.map((c) => c.argv)).toEqual([
      ['init', '-input=false', '-no-color'],
      ['apply', '-auto-approve', '-input=false', '-no-color', '-lock-timeout=300s'],
      ['output', '-json'],
      ['destroy', '-auto-approve', '-input=false', '-no-color', '-lock-timeout=300s'],
      ['apply', '-auto-approve', '-input=false', '-no-color', '-lock-timeout=300s', '-target=aws_rds_cluster.cluster'],
    ]);
    for (const c of recorded) {
      expect(c.cwd).toBe(stackDir);
      expect(c.tfInAutomation).toBe('1');
    }
  });

  it('makes apply and destroy wait for a state lock held by another run (-lock-timeout) instead of failing at once', async () => {
    const tf = new TerraformRunner({ binary, lockTimeoutSeconds: 90, env: { PATH: process.env.PATH, FAKE_TF_LOG: log }, passEnv: FAKE_TERRAFORM_ENV });
    await tf.apply(stackDir, { targets: ['aws_rds_cluster.cluster'] });
    await tf.destroy(stackDir);
    await tf.init(stackDir);
    expect(calls().map((c) => c.argv)).toEqual([
      ['apply', '-auto-approve', '-input=false', '-no-color', '-lock-timeout=90s', '-target=aws_rds_cluster.cluster'],
      ['destroy', '-auto-approve', '-input=false', '-no-color', '-lock-timeout=90s'],
      ['init', '-input=false', '-no-color'],
    ]);
  });

  it('hands terraform only the OS basics, AWS_* and TF_* variables: none of Silo\'s secrets or URLs', async () => {
    const silo = { ADMIN_TOKEN: 'a'.repeat(24), SILO_MASTER_KEY: 'mk', SILO_DIRECTORY_KEY: 'dk', STRIPE_WEBHOOK_SECRET: 'whsec_x', DATABASE_URL: 'postgres://u:p@h/db', REDIS_URL: 'redis://:pw@h', PGPASSWORD: 'control-db' };
    await runner({ ...silo, AWS_REGION: 'eu-west-1', TF_PLUGIN_CACHE_DIR: '/tmp/tf-cache' }).init(stackDir);
    const [c] = calls();
    expect(c.envKeys).toEqual(expect.arrayContaining(['PATH', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'TF_PLUGIN_CACHE_DIR', 'TF_IN_AUTOMATION', 'FAKE_TF_LOG']));
    for (const k of Object.keys(silo)) expect(c.envKeys).not.toContain(k);
  });

  it('parses output -json into typed outputs', async () => {
    const outputs = await runner().output(stackDir);
    expect(outputs.endpoint).toEqual({
      sensitive: false,
      type: 'string',
      value: 'silo-tenant-abc123.cluster-c9akciq32ltz.eu-west-1.rds.amazonaws.com',
    });
    expect(outputs.port).toEqual({ sensitive: false, type: 'number', value: 5432 });
    expect(outputs.secret_arn.value).toMatch(/^arn:aws:secretsmanager:/);
  });

  it('lists and removes state addresses', async () => {
    const tf = runner();
    expect(await tf.stateList(stackDir)).toEqual([]);
    await tf.apply(stackDir);
    expect(await tf.stateList(stackDir)).toEqual(['aws_kms_key.kms_key']);
    await tf.stateRm(stackDir, ['aws_kms_key.kms_key']);
    await tf.stateRm(stackDir, []);
    expect(await tf.stateList(stackDir)).toEqual([]);
    expect(calls().map((c) => c.argv.slice(0, 2))).toEqual([
      ['state', 'list'], ['apply', '-auto-approve'], ['state', 'list'], ['state', 'rm'], ['state', 'list'],
    ]);
  });

  it('streams output lines to the callback as they arrive', async () => {
    const lines: Array<[string, string]> = [];
    await runner().init(stackDir, { onLine: (line, stream) => lines.push([stream, line]) });
    expect(lines).toEqual([
      ['stdout', 'Initializing the backend...'],
      ['stdout', 'Successfully configured the backend "s3"!'],
      ['stdout', 'Terraform has been successfully initialized!'],
    ]);
  });

  it('does not stream output -json stdout, which may hold sensitive values', async () => {
    const lines: string[] = [];
    await runner().output(stackDir, { onLine: (line) => lines.push(line) });
    expect(lines).toEqual([]);
  });

  it('maps a non-zero exit to TERRAFORM_FAILED with the command and the stderr tail, not the env', async () => {
    const lines: string[] = [];
    const err = await caught(runner({ FAKE_TF_FAIL: 'apply' }).apply(stackDir, { onLine: (l) => lines.push(l) }));
    expect(err.code).toBe(ErrorCode.TERRAFORM_FAILED);
    expect(err.message).toContain('terraform apply exited with code 1');
    expect(err.message).toContain('Error: creating RDS Cluster');
    expect(err.message).toContain('on cdk.tf.json line 42');
    expect(err.message).not.toContain(SECRET_ENV_VALUE);
    expect(JSON.stringify(err.details)).not.toContain(SECRET_ENV_VALUE);
    expect(lines).toContain('aws_rds_cluster.cluster: Creating...');
  });

  it('maps a missing binary to TERRAFORM_FAILED', async () => {
    const tf = new TerraformRunner({ binary: join(root, 'no-such-terraform') });
    const err = await caught(tf.init(stackDir));
    expect(err.code).toBe(ErrorCode.TERRAFORM_FAILED);
    expect(err.message).toContain('executable not found');
  });

  it('kills the whole process group on timeout and reports TERRAFORM_TIMEOUT', async () => {
    const started = Date.now();
    const err = await caught(runner({ FAKE_TF_HANG: 'apply' }, { apply: 400 }).apply(stackDir));
    expect(err.code).toBe(ErrorCode.TERRAFORM_TIMEOUT);
    expect(err.message).toContain('terraform apply timed out after 400 ms');
    expect(Date.now() - started).toBeLessThan(5_000);
    const pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as number[];
    expect(pids).toHaveLength(2);
    expect(await waitUntil(() => pids.every((p) => !isAlive(p)))).toBe(true);
  });

  it('escalates to SIGKILL when terraform ignores SIGTERM', async () => {
    const err = await caught(runner({ FAKE_TF_HANG: 'destroy', FAKE_TF_IGNORE_TERM: '1' }, { destroy: 300 }).destroy(stackDir));
    expect(err.code).toBe(ErrorCode.TERRAFORM_TIMEOUT);
    expect(err.details).toMatchObject({ signal: 'SIGKILL' });
    const pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as number[];
    expect(await waitUntil(() => pids.every((p) => !isAlive(p)))).toBe(true);
  });

  it('stops terraform when the signal aborts, and refuses to start when already aborted', async () => {
    const controller = new AbortController();
    const run = runner({ FAKE_TF_HANG: 'apply' }).apply(stackDir, { signal: controller.signal });
    await waitUntil(() => existsSync(pidsFile));
    controller.abort();
    const err = await caught(run);
    expect(err.code).toBe(ErrorCode.TERRAFORM_FAILED);
    expect(err.details).toMatchObject({ aborted: true });
    const pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as number[];
    expect(await waitUntil(() => pids.every((p) => !isAlive(p)))).toBe(true);

    const before = calls().length;
    const again = await caught(runner().init(stackDir, { signal: controller.signal }));
    expect(again.details).toMatchObject({ aborted: true });
    expect(calls()).toHaveLength(before);
  });
});

describe('parseTerraformOutputs', () => {
  it('rejects non-JSON without quoting it', () => {
    const text = '{"db_password": {"sensitive": true, "value": "s3cr3t-value"';
    expect(() => parseTerraformOutputs(text)).toThrow(expect.objectContaining({ code: ErrorCode.TERRAFORM_FAILED }));
    try {
      parseTerraformOutputs(text);
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cr3t');
    }
  });

  it('rejects entries without a value', () => {
    expect(() => parseTerraformOutputs('{"endpoint": {"type": "string"}}')).toThrow('unexpected shape');
    expect(() => parseTerraformOutputs('[]')).toThrow('did not print an object');
  });
});
