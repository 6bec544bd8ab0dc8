import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TIERS } from '../../provisioning/tiers';
import { TenantStackConfig } from '../../provisioning/aws/tenant-stack';

/** Fixtures shared by the AWS provisioning specs (no AWS is ever contacted). */
export const TEST_TENANT_ID = '0f8e2c1a-1111-4222-8333-444455556666';
export const TEST_RUNTIME_SG = 'sg-0a1b2c3d4e5f60718';
export const TEST_CONTROL_SG = 'sg-0f9e8d7c6b5a40312';

export function testNetwork(): TenantStackConfig['network'] {
  return {
    vpcId: 'vpc-0123456789abcdef0',
    subnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222', 'subnet-0ccc3333'],
    allowedSecurityGroupIds: [TEST_RUNTIME_SG, TEST_CONTROL_SG],
  };
}

export function testBackend(): TenantStackConfig['backend'] {
  return { bucket: 'silo-tf-state', lockTable: 'silo-tf-locks', region: 'eu-central-1', keyPrefix: 'tenants/' };
}

export function testStackConfig(overrides: Partial<TenantStackConfig> = {}): TenantStackConfig {
  return {
    tenantId: TEST_TENANT_ID,
    slug: 'acme-corp',
    tier: DEFAULT_TIERS.pro,
    region: 'eu-west-1',
    network: testNetwork(),
    backend: testBackend(),
    tags: { team: 'data', 'managed-by': 'someone-else' },
    ...overrides,
  };
}

/** The fake terraform's settings: pass them with TerraformRunner's `passEnv` (the runner filters the environment). */
export const FAKE_TERRAFORM_ENV = [
  'FAKE_TF_LOG', 'FAKE_TF_PIDS', 'FAKE_TF_FAIL', 'FAKE_TF_HANG', 'FAKE_TF_IGNORE_TERM', 'FAKE_TF_ENDPOINT', 'FAKE_TF_PORT', 'FAKE_TF_DATABASE',
] as const;

/**
 * Writes a fake `terraform` executable into `dir` and returns its path. It appends one JSON line
 * per call ({ argv, cwd, pid, tfInAutomation, envKeys }) to `$FAKE_TF_LOG`, keeps a fake state in
 * `<cwd>/.fake-tfstate` (apply fills it, destroy empties it, `state rm` removes addresses),
 * prints `output -json` exactly as terraform does, and misbehaves on request:
 * `FAKE_TF_FAIL=<command>` exits 1 after printing errors on stderr; `FAKE_TF_HANG=<command>`
 * starts a grandchild, records both pids in `$FAKE_TF_PIDS` and never returns
 * (`FAKE_TF_IGNORE_TERM=1` also ignores SIGTERM). `FAKE_TF_ENDPOINT`, `FAKE_TF_PORT` and
 * `FAKE_TF_DATABASE` replace the cluster's endpoint, port and database name in `output -json`
 * (to point the driver's master login at a local test server).
 */
export function writeFakeTerraform(dir: string): string {
  const file = join(dir, 'terraform');
  writeFileSync(file, `#!${process.execPath}\n${FAKE_TERRAFORM_SOURCE}`, { mode: 0o755 });
  return file;
}

const FAKE_TERRAFORM_SOURCE = String.raw`
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const argv = process.argv.slice(2);
const command = argv[0] === 'state' ? 'state ' + argv[1] : argv[0];
const cwd = process.cwd();
if (process.env.FAKE_TF_LOG) {
  fs.appendFileSync(process.env.FAKE_TF_LOG, JSON.stringify({ argv, cwd, pid: process.pid, tfInAutomation: process.env.TF_IN_AUTOMATION, envKeys: Object.keys(process.env).sort() }) + '\n');
}
const stateFile = path.join(cwd, '.fake-tfstate');
const readState = () => (fs.existsSync(stateFile) ? fs.readFileSync(stateFile, 'utf8').split('\n').filter(Boolean) : []);
const writeState = (a) => fs.writeFileSync(stateFile, a.map((x) => x + '\n').join(''));

if (process.env.FAKE_TF_HANG === command) {
  if (process.env.FAKE_TF_IGNORE_TERM === '1') process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  fs.writeFileSync(process.env.FAKE_TF_PIDS, JSON.stringify([process.pid, child.pid]));
  console.log('Still creating... [10s elapsed]');
  setInterval(() => {}, 1000);
  return;
}
if (process.env.FAKE_TF_FAIL === command) {
  console.log('aws_rds_cluster.cluster: Creating...');
  console.error('');
  console.error('Error: creating RDS Cluster (silo-tenant-x): operation error RDS: CreateDBCluster, StatusCode: 400');
  console.error('  with aws_rds_cluster.cluster,');
  console.error('  on cdk.tf.json line 42, in resource.aws_rds_cluster.cluster:');
  process.exit(1);
}
switch (command) {
  case 'init':
    fs.mkdirSync(path.join(cwd, '.terraform'), { recursive: true });
    console.log('Initializing the backend...');
    console.log('Successfully configured the backend "s3"!');
    console.log('Terraform has been successfully initialized!');
    break;
  case 'apply': {
    const config = JSON.parse(fs.readFileSync(path.join(cwd, 'cdk.tf.json'), 'utf8'));
    const addresses = [];
    for (const [type, byName] of Object.entries(config.resource || {})) for (const name of Object.keys(byName)) addresses.push(type + '.' + name);
    writeState(addresses.sort());
    console.log('aws_kms_key.kms_key: Creating...');
    console.log('Apply complete! Resources: ' + addresses.length + ' added, 0 changed, 0 destroyed.');
    break;
  }
  case 'destroy':
    console.log('Destroy complete! Resources: ' + readState().length + ' destroyed.');
    writeState([]);
    break;
  case 'state list':
    for (const a of readState()) console.log(a);
    break;
  case 'state rm': {
    const gone = new Set(argv.slice(2));
    writeState(readState().filter((a) => !gone.has(a)));
    for (const a of gone) console.log('Removed ' + a);
    console.log('Successfully removed ' + gone.size + ' resource instance(s).');
    break;
  }
  case 'output': {
    const key = path.basename(cwd).replace(/^tenant-/, '');
    const out = {
      cluster_identifier: { sensitive: false, type: 'string', value: 'silo-tenant-' + key },
      database_name: { sensitive: false, type: 'string', value: process.env.FAKE_TF_DATABASE || 'tenant_' + key.replace(/-/g, '_') },
      endpoint: { sensitive: false, type: 'string', value: process.env.FAKE_TF_ENDPOINT || 'silo-tenant-' + key + '.cluster-c9akciq32ltz.eu-west-1.rds.amazonaws.com' },
      port: { sensitive: false, type: 'number', value: Number(process.env.FAKE_TF_PORT || 5432) },
      secret_arn: { sensitive: false, type: 'string', value: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-7d2c3b1e-4f5a-4b6c-9d8e-0f1a2b3c4d5e-Xy1Z2a' },
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    break;
  }
  default:
    console.error('Error: unknown command ' + command);
    process.exit(1);
}
`;
