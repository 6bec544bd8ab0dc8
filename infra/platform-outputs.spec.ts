import { parsePlatformOutputs, PLATFORM_OUTPUT_NAMES, toControlPlaneEnv } from './platform-outputs';

const terraformOutputJson = {
  region: { sensitive: false, type: 'string', value: 'eu-west-1' },
  vpc_id: { sensitive: false, type: 'string', value: 'vpc-1' },
  private_subnet_ids: { sensitive: false, type: ['tuple', ['string', 'string', 'string']], value: ['subnet-a', 'subnet-b', 'subnet-c'] },
  runtime_security_group_id: { value: 'sg-rt' },
  control_plane_security_group_id: { value: 'sg-cp' },
  worker_security_group_id: { value: 'sg-wk' },
  tenant_db_allowed_security_group_ids: { value: ['sg-rt', 'sg-wk', 'sg-cp'] },
  tenant_state_bucket: { value: 'silo-tenant-state-123' },
  tenant_state_lock_table: { value: 'silo-tenant-state-lock' },
  tenant_secret_prefix: { value: 'silo/tenants/' },
  alb_dns_name: { value: 'ignored.example.com' },
};

describe('platform outputs', () => {
  it('reads `terraform output -json` and turns it into the control-plane environment', () => {
    const outputs = parsePlatformOutputs(terraformOutputJson);
    expect(toControlPlaneEnv(outputs)).toEqual({
      AWS_REGION: 'eu-west-1',
      PROVISIONING_DRIVER: 'aws',
      SECRET_STORE: 'aws',
      AWS_TENANT_VPC_ID: 'vpc-1',
      AWS_TENANT_SUBNET_IDS: 'subnet-a,subnet-b,subnet-c',
      AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS: 'sg-rt,sg-wk,sg-cp',
      TENANT_STATE_BUCKET: 'silo-tenant-state-123',
      TENANT_STATE_LOCK_TABLE: 'silo-tenant-state-lock',
      SILO_TENANT_SECRET_PREFIX: 'silo/tenants/',
    });
  });

  it('accepts the flat per-stack object of `cdktf output --outputs-file`', () => {
    const flat = Object.fromEntries(Object.entries(terraformOutputJson).map(([k, v]) => [k, v.value]));
    expect(parsePlatformOutputs(flat).privateSubnetIds).toEqual(['subnet-a', 'subnet-b', 'subnet-c']);
  });

  it('lists every missing or mistyped output', () => {
    const broken = { ...terraformOutputJson, private_subnet_ids: { value: 'subnet-a' }, tenant_state_bucket: undefined, region: { value: '' } };
    const message = (() => {
      try {
        parsePlatformOutputs(broken);
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(message.split('\n').slice(1).map((l) => l.trim()).sort()).toEqual([
      '- private_subnet_ids: expected a non-empty list of strings',
      '- region: expected a non-empty string',
      '- tenant_state_bucket: expected a non-empty string',
    ]);
    expect(() => parsePlatformOutputs([])).toThrow('expected a JSON object');
  });

  it('uses one snake_case Terraform output name per field', () => {
    const names = Object.values(PLATFORM_OUTPUT_NAMES);
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9_]*$/);
  });
});
