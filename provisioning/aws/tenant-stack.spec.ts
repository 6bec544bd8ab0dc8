import 'cdktf/lib/testing/adapters/jest';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testing } from 'cdktf';
import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import { RdsClusterParameterGroup } from '@cdktf/provider-aws/lib/rds-cluster-parameter-group';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { ErrorCode } from '../../common/error-codes';
import { DEFAULT_TIERS } from '../tiers';
import { TEST_CONTROL_SG, TEST_RUNTIME_SG, TEST_TENANT_ID, testStackConfig } from '../../test/support/aws-fixtures';
import { TenantStack, TenantStackConfig, synthTenantStack } from './tenant-stack';
import { testApp } from '../../infra/testing';

Testing.setupJest();

const TENANT_ID = TEST_TENANT_ID;
const RUNTIME_SG = TEST_RUNTIME_SG;
const CONTROL_SG = TEST_CONTROL_SG;
const stackConfig = testStackConfig;

type Json = Record<string, any>;

function synth(config: TenantStackConfig): { text: string; json: Json } {
  const stack = new TenantStack(testApp(), `tenant-${config.tenantId}`, config);
  const text = Testing.synth(stack);
  return { text, json: JSON.parse(text) as Json };
}

const resourcesOf = (json: Json, type: string): Json[] => Object.values((json.resource?.[type] ?? {}) as Record<string, Json>);

describe('TenantStack', () => {
  let pro: { text: string; json: Json };
  let starter: { text: string; json: Json };

  beforeAll(() => {
    pro = synth(stackConfig());
    starter = synth(stackConfig({ tier: DEFAULT_TIERS.starter, tenantId: 'ten_01HZX9K2' }));
  });

  describe('cluster', () => {
    it('is Aurora PostgreSQL Serverless v2 with the tier ACU range', () => {
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, {
        engine: 'aurora-postgresql',
        engine_mode: 'provisioned',
        engine_version: '16.4',
        serverlessv2_scaling_configuration: { min_capacity: 1, max_capacity: 8 },
      });
      expect(starter.text).toHaveResourceWithProperties(RdsCluster, {
        serverlessv2_scaling_configuration: { min_capacity: 0.5, max_capacity: 2 },
      });
    });

    it('has tier.instanceCount db.serverless instances attached to the cluster', () => {
      for (const [synthed, count] of [[pro, 2], [starter, 1]] as const) {
        const instances = resourcesOf(synthed.json, RdsClusterInstance.tfResourceType);
        expect(instances).toHaveLength(count);
        for (const instance of instances) {
          expect(instance).toMatchObject({
            instance_class: 'db.serverless',
            cluster_identifier: '${aws_rds_cluster.cluster.id}',
            publicly_accessible: false,
          });
        }
      }
    });

    it('encrypts storage with the tenant KMS key', () => {
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, {
        storage_encrypted: true,
        kms_key_id: '${aws_kms_key.kms_key.arn}',
      });
    });

    it('lets RDS keep the master password in Secrets Manager under the tenant key', () => {
      const [cluster] = resourcesOf(pro.json, RdsCluster.tfResourceType);
      expect(cluster).toMatchObject({
        manage_master_user_password: true,
        master_user_secret_kms_key_id: '${aws_kms_key.kms_key.arn}',
        master_username: 'silo_admin',
      });
      expect(cluster).not.toHaveProperty('master_password');
      expect(cluster).not.toHaveProperty('master_password_wo');
    });

    it('turns on IAM database authentication', () => {
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, { iam_database_authentication_enabled: true });
    });

    it('takes deletion protection and backup retention from the tier', () => {
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, { deletion_protection: true, backup_retention_period: 14 });
      expect(starter.text).toHaveResourceWithProperties(RdsCluster, { deletion_protection: false, backup_retention_period: 7 });
    });

    it('lets deprovisioning override deletion protection', () => {
      const { text } = synth(stackConfig({ deletionProtection: false }));
      expect(text).toHaveResourceWithProperties(RdsCluster, { deletion_protection: false });
    });

    it('takes a named final snapshot instead of skipping it', () => {
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, {
        skip_final_snapshot: false,
        final_snapshot_identifier: `silo-tenant-${TENANT_ID}-final`,
      });
    });

    it('exports the postgresql log to CloudWatch', () => {
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, { enabled_cloudwatch_logs_exports: ['postgresql'] });
    });

    it('names everything from the tenant id, never the slug', () => {
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, {
        cluster_identifier: `silo-tenant-${TENANT_ID}`,
        database_name: 'tenant_0f8e2c1a_1111_4222_8333_444455556666',
        port: 5432,
      });
      expect(starter.text).toHaveResourceWithProperties(RdsCluster, {
        cluster_identifier: 'silo-tenant-ten-01hzx9k2',
        database_name: 'tenant_ten_01hzx9k2',
      });
      const withoutTags = JSON.stringify(pro.json.resource, (k, v: unknown) => (k === 'tags' ? undefined : v));
      expect(withoutTags).not.toContain('acme-corp');
    });
  });

  describe('KMS key', () => {
    it('is per tenant, rotated, and aliased alias/silo/tenant-<id>', () => {
      expect(pro.text).toHaveResourceWithProperties(KmsKey, { enable_key_rotation: true });
      expect(pro.text).toHaveResourceWithProperties(KmsAlias, {
        name: `alias/silo/tenant-${TENANT_ID}`,
        target_key_id: '${aws_kms_key.kms_key.key_id}',
      });
    });
  });

  describe('network', () => {
    it('puts the cluster in a subnet group over the given subnets', () => {
      expect(pro.text).toHaveResourceWithProperties(DbSubnetGroup, {
        name: `silo-tenant-${TENANT_ID}-db`,
        subnet_ids: ['subnet-0aaa1111', 'subnet-0bbb2222', 'subnet-0ccc3333'],
      });
      expect(pro.text).toHaveResourceWithProperties(RdsCluster, {
        db_subnet_group_name: '${aws_db_subnet_group.subnet_group.name}',
        vpc_security_group_ids: ['${aws_security_group.security_group.id}'],
      });
    });

    it('admits only TCP 5432 from each allowed security group, and no CIDR at all', () => {
      const groups = resourcesOf(pro.json, SecurityGroup.tfResourceType);
      expect(groups).toHaveLength(1);
      expect(groups[0]).toMatchObject({ vpc_id: 'vpc-0123456789abcdef0' });
      expect(groups[0]).not.toHaveProperty('ingress');
      expect(groups[0]).not.toHaveProperty('egress');
      expect(pro.json.resource).not.toHaveProperty('aws_security_group_rule');

      const rules = resourcesOf(pro.json, VpcSecurityGroupIngressRule.tfResourceType);
      expect(rules.map((r) => r.referenced_security_group_id).sort()).toEqual([CONTROL_SG, RUNTIME_SG].sort());
      for (const rule of rules) {
        expect(rule).toMatchObject({
          security_group_id: '${aws_security_group.security_group.id}',
          ip_protocol: 'tcp',
          from_port: 5432,
          to_port: 5432,
        });
        for (const open of ['cidr_ipv4', 'cidr_ipv6', 'prefix_list_id']) expect(rule).not.toHaveProperty(open);
      }
    });
  });

  it('forces TLS through a cluster parameter group of the engine major family', () => {
    expect(pro.text).toHaveResourceWithProperties(RdsClusterParameterGroup, {
      family: 'aurora-postgresql16',
      parameter: [{ name: 'rds.force_ssl', value: '1' }],
    });
    expect(pro.text).toHaveResourceWithProperties(RdsCluster, {
      db_cluster_parameter_group_name: '${aws_rds_cluster_parameter_group.cluster_parameter_group.name}',
    });
    const { text } = synth(stackConfig({ engineVersion: '17.2' }));
    expect(text).toHaveResourceWithProperties(RdsClusterParameterGroup, { family: 'aurora-postgresql17' });
  });

  it('tags every taggable resource and the provider defaults with tenant, tier and managed-by', () => {
    const required = { 'silo:tenant-id': TENANT_ID, 'silo:tier': 'pro', 'managed-by': 'silo', team: 'data' };
    expect(pro.text).toHaveProviderWithProperties(AwsProvider, { region: 'eu-west-1', default_tags: [{ tags: expect.objectContaining(required) }] });
    const untaggable = new Set([KmsAlias.tfResourceType]);
    const types = Object.keys(pro.json.resource as Json).filter((t) => !untaggable.has(t));
    expect(types.length).toBeGreaterThanOrEqual(7);
    for (const type of types) {
      for (const resource of resourcesOf(pro.json, type)) {
        expect({ type, tags: resource.tags }).toEqual({ type, tags: expect.objectContaining(required) });
      }
    }
  });

  it('keeps state in a per-tenant S3 object with DynamoDB locking and encryption', () => {
    expect(pro.json.terraform.backend).toEqual({
      s3: {
        bucket: 'silo-tf-state',
        key: `tenants/tenant-${TENANT_ID}.tfstate`,
        region: 'eu-central-1',
        dynamodb_table: 'silo-tf-locks',
        encrypt: true,
      },
    });
    expect(pro.json.terraform.backend).not.toHaveProperty('local');
  });

  it('outputs connection facts and the secret ARN, nothing sensitive', () => {
    const outputs = pro.json.output as Record<string, { value: string; sensitive?: boolean }>;
    expect(outputs).toMatchObject({
      endpoint: { value: '${aws_rds_cluster.cluster.endpoint}' },
      port: { value: '${aws_rds_cluster.cluster.port}' },
      database_name: { value: '${aws_rds_cluster.cluster.database_name}' },
      secret_arn: { value: '${aws_rds_cluster.cluster.master_user_secret[0].secret_arn}' },
    });
    // A new output has to be added here on purpose, after checking it exposes nothing.
    expect(Object.keys(outputs).sort()).toEqual([
      'cluster_identifier', 'database_name', 'endpoint', 'final_snapshot_identifier',
      'kms_key_arn', 'port', 'reader_endpoint', 'secret_arn',
    ]);
    for (const [name, output] of Object.entries(outputs)) {
      expect(name).not.toMatch(/password/i);
      expect({ name, value: output.value }).not.toEqual({ name, value: expect.stringMatching(/password|secret_string/i) });
      expect(output.sensitive).toBeUndefined();
    }
  });

  it('rejects configs that would build an unreachable or misnamed cluster', () => {
    const bad = (o: Partial<TenantStackConfig>) => () => synth(stackConfig(o));
    const net = stackConfig().network;
    for (const o of [
      { network: { ...net, allowedSecurityGroupIds: [] } },
      { network: { ...net, allowedSecurityGroupIds: ['0.0.0.0/0'] } },
      { network: { ...net, subnetIds: ['subnet-0aaa1111'] } },
      { tenantId: '---' },
      { tenantId: 'x'.repeat(41) },
      { engineVersion: 'latest' },
    ]) {
      expect(bad(o)).toThrow(expect.objectContaining({ code: ErrorCode.VALIDATION_FAILED }));
    }
  });
});

describe('synthTenantStack', () => {
  it('writes <outdir>/stacks/tenant-<id>/cdk.tf.json and returns its path', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'silo-synth-'));
    try {
      const file = synthTenantStack(stackConfig(), join(outdir, 'nested', 'cdktf.out'));
      expect(file).toBe(join(outdir, 'nested', 'cdktf.out', 'stacks', `tenant-${TENANT_ID}`, 'cdk.tf.json'));
      const json = JSON.parse(readFileSync(file, 'utf8')) as Json;
      expect(json.terraform.backend.s3.key).toBe(`tenants/tenant-${TENANT_ID}.tfstate`);
      expect(Object.keys(json.resource as Json)).toContain('aws_rds_cluster');
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
