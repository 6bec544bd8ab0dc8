import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { App, S3Backend, TerraformOutput, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
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
import { SiloError } from '../../common/errors';
import { TierSettings } from '../tiers';
import { TenantNames, tenantNames } from './tenant-names';

export const DEFAULT_ENGINE_VERSION = '16.4';
export const DEFAULT_SECRET_PREFIX = 'silo/tenants/';
/** Master user of every tenant cluster; its password lives only in the RDS-managed secret. */
export const MASTER_USERNAME = 'silo_admin';
export const POSTGRES_PORT = 5432;

/** Names of the stack's Terraform outputs (none of them sensitive). */
export const TENANT_STACK_OUTPUTS = {
  endpoint: 'endpoint',
  readerEndpoint: 'reader_endpoint',
  port: 'port',
  databaseName: 'database_name',
  secretArn: 'secret_arn',
  clusterIdentifier: 'cluster_identifier',
  finalSnapshotIdentifier: 'final_snapshot_identifier',
  kmsKeyArn: 'kms_key_arn',
} as const;

/** The VPC the tenant cluster lives in and who may reach it. */
export interface TenantNetworkConfig {
  vpcId: string;
  /** Private subnets in at least two availability zones. */
  subnetIds: string[];
  /** Security groups allowed to connect on 5432: the tenant runtime and the control plane. */
  allowedSecurityGroupIds: string[];
}

/** Remote state: one object per tenant in a shared bucket, locked through DynamoDB. */
export interface TenantBackendConfig {
  bucket: string;
  lockTable: string;
  region: string;
  /** Folder inside the bucket; the state key is `<keyPrefix>/tenant-<id>.tfstate`. */
  keyPrefix: string;
}

/** Props of {@link TenantStack}. */
export interface TenantStackConfig {
  /** Opaque tenant id: every identifier and the database name derive from it. */
  tenantId: string;
  /** Human-facing slug; only recorded as a tag, never used in a name. */
  slug: string;
  tier: TierSettings;
  region: string;
  /** Aurora PostgreSQL version; the parameter group family follows its major. Default `16.4`. */
  engineVersion?: string;
  network: TenantNetworkConfig;
  backend: TenantBackendConfig;
  /**
   * Prefix of secrets Silo itself creates for this tenant through the SecretStore. The master
   * secret is not one of them: RDS creates and names it (`rds!cluster-…`). Default `silo/tenants/`.
   */
  secretPrefix?: string;
  /** Extra tags; the `silo:*` and `managed-by` tags always win. */
  tags?: Record<string, string>;
  /**
   * Overrides the tier's deletion protection. Deprovisioning re-synthesises with `false` and
   * applies before `terraform destroy`, because AWS refuses to delete a protected cluster.
   */
  deletionProtection?: boolean;
}

/**
 * One tenant's database, as code: an encrypted Aurora PostgreSQL Serverless v2 cluster with its
 * own KMS key, an RDS-managed master secret, a locked-down security group and a per-tenant S3
 * state backend. Instantiate once per tenant (stack id `tenant-<id>`).
 */
export class TenantStack extends TerraformStack {
  readonly names: TenantNames;
  readonly secretPrefix: string;
  readonly cluster: RdsCluster;
  readonly kmsKey: KmsKey;

  constructor(scope: Construct, id: string, config: TenantStackConfig) {
    super(scope, id);
    validate(config);
    const names = tenantNames(config.tenantId);
    this.names = names;
    this.secretPrefix = config.secretPrefix ?? DEFAULT_SECRET_PREFIX;
    const engineVersion = config.engineVersion ?? DEFAULT_ENGINE_VERSION;
    const { tier, network, backend } = config;

    const tags: Record<string, string> = {
      ...config.tags,
      'silo:tenant-id': config.tenantId,
      'silo:tenant-slug': config.slug,
      'silo:tier': tier.name,
      'managed-by': 'silo',
    };

    new S3Backend(this, {
      bucket: backend.bucket,
      key: [backend.keyPrefix.replace(/^\/+|\/+$/g, ''), names.stateFileName].filter(Boolean).join('/'),
      region: backend.region,
      dynamodbTable: backend.lockTable,
      encrypt: true,
    });

    new AwsProvider(this, 'aws', { region: config.region, defaultTags: [{ tags }] });

    // Explicit tags on every resource as well as provider default tags: the tags are then
    // visible in the synthesized JSON and survive a provider that drops default tags.
    this.kmsKey = new KmsKey(this, 'kms_key', {
      description: `Silo tenant ${config.tenantId}: storage and master secret encryption`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      tags,
    });
    new KmsAlias(this, 'kms_alias', { name: names.kmsAlias, targetKeyId: this.kmsKey.keyId });

    const subnetGroup = new DbSubnetGroup(this, 'subnet_group', {
      name: names.subnetGroupName,
      description: `Silo tenant ${config.tenantId}`,
      subnetIds: network.subnetIds,
      tags,
    });

    // No inline rules and no egress: the only way in is 5432 from the allowed groups, declared
    // as separate rule resources (one per group) so adding a group never replaces the others.
    const securityGroup = new SecurityGroup(this, 'security_group', {
      name: names.securityGroupName,
      description: `Silo tenant ${config.tenantId}: Postgres from the runtime and control plane only`,
      vpcId: network.vpcId,
      revokeRulesOnDelete: true,
      tags,
    });
    for (const sourceId of unique(network.allowedSecurityGroupIds)) {
      new VpcSecurityGroupIngressRule(this, `ingress_${sourceId}`, {
        securityGroupId: securityGroup.id,
        referencedSecurityGroupId: sourceId,
        ipProtocol: 'tcp',
        fromPort: POSTGRES_PORT,
        toPort: POSTGRES_PORT,
        description: `Postgres from ${sourceId}`,
        tags,
      });
    }

    const major = engineVersion.split('.')[0];
    const family = `aurora-postgresql${major}`;
    const parameterGroup = new RdsClusterParameterGroup(this, 'cluster_parameter_group', {
      // Family in the name: a major upgrade creates a new group instead of colliding.
      name: `${names.clusterIdentifier}-${family}`,
      family,
      description: `Silo tenant ${config.tenantId}`,
      parameter: [{ name: 'rds.force_ssl', value: '1' }],
      tags,
    });

    this.cluster = new RdsCluster(this, 'cluster', {
      clusterIdentifier: names.clusterIdentifier,
      engine: 'aurora-postgresql',
      engineMode: 'provisioned',
      engineVersion,
      databaseName: names.databaseName,
      masterUsername: MASTER_USERNAME,
      // RDS generates the password and keeps it in Secrets Manager: it never enters state.
      manageMasterUserPassword: true,
      masterUserSecretKmsKeyId: this.kmsKey.arn,
      storageEncrypted: true,
      kmsKeyId: this.kmsKey.arn,
      iamDatabaseAuthenticationEnabled: true,
      serverlessv2ScalingConfiguration: { minCapacity: tier.minAcu, maxCapacity: tier.maxAcu },
      dbSubnetGroupName: subnetGroup.name,
      vpcSecurityGroupIds: [securityGroup.id],
      dbClusterParameterGroupName: parameterGroup.name,
      port: POSTGRES_PORT,
      backupRetentionPeriod: tier.backupRetentionDays,
      deletionProtection: config.deletionProtection ?? tier.deletionProtection,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: names.finalSnapshotIdentifier,
      copyTagsToSnapshot: true,
      enabledCloudwatchLogsExports: ['postgresql'],
      tags,
    });

    for (let i = 0; i < tier.instanceCount; i++) {
      new RdsClusterInstance(this, `instance_${i + 1}`, {
        identifier: `${names.clusterIdentifier}-${i + 1}`,
        clusterIdentifier: this.cluster.id,
        instanceClass: 'db.serverless',
        engine: this.cluster.engine,
        engineVersion: this.cluster.engineVersion,
        dbSubnetGroupName: subnetGroup.name,
        publiclyAccessible: false,
        promotionTier: i === 0 ? 0 : 1,
        tags,
      });
    }

    const out = TENANT_STACK_OUTPUTS;
    new TerraformOutput(this, out.endpoint, { value: this.cluster.endpoint });
    new TerraformOutput(this, out.readerEndpoint, { value: this.cluster.readerEndpoint });
    new TerraformOutput(this, out.port, { value: this.cluster.port });
    new TerraformOutput(this, out.databaseName, { value: this.cluster.databaseName });
    new TerraformOutput(this, out.secretArn, { value: this.cluster.masterUserSecret.get(0).secretArn });
    new TerraformOutput(this, out.clusterIdentifier, { value: this.cluster.clusterIdentifier });
    new TerraformOutput(this, out.finalSnapshotIdentifier, { value: names.finalSnapshotIdentifier });
    new TerraformOutput(this, out.kmsKeyArn, { value: this.kmsKey.arn });
  }
}

/**
 * Synthesizes one tenant's stack with a cdktf `App` into `<outdir>/stacks/tenant-<id>/` and
 * returns the absolute path of the written `cdk.tf.json`. Offline: needs no terraform binary.
 */
export function synthTenantStack(config: TenantStackConfig, outdir: string): string {
  const names = tenantNames(config.tenantId);
  mkdirSync(outdir, { recursive: true });
  const app = new App({ outdir, stackTraces: false });
  new TenantStack(app, names.stackId, config);
  app.synth();
  return resolve(join(outdir, 'stacks', names.stackId, 'cdk.tf.json'));
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function validate(config: TenantStackConfig): void {
  const problems: string[] = [];
  const { tier, network, backend } = config;
  if (!config.region) problems.push('region is required');
  if (config.engineVersion !== undefined && !/^\d+(\.\d+)*$/.test(config.engineVersion)) {
    problems.push('engineVersion must look like 16.4');
  }
  if (!(tier.minAcu >= 0 && tier.maxAcu >= tier.minAcu)) problems.push('tier ACU range is invalid');
  if (!Number.isInteger(tier.instanceCount) || tier.instanceCount < 1) problems.push('tier.instanceCount must be >= 1');
  if (!/^vpc-[0-9a-z]+$/.test(network.vpcId)) problems.push('network.vpcId must be a vpc id');
  if (network.subnetIds.length < 2) problems.push('network.subnetIds needs subnets in at least two availability zones');
  if (network.allowedSecurityGroupIds.length === 0) problems.push('network.allowedSecurityGroupIds must not be empty');
  for (const id of network.allowedSecurityGroupIds) {
    if (!/^sg-[0-9a-z]+$/.test(id)) problems.push(`network.allowedSecurityGroupIds: ${id} is not a security group id`);
  }
  if (!backend.bucket || !backend.lockTable || !backend.region) problems.push('backend needs bucket, lockTable and region');
  if (problems.length) {
    throw new SiloError(ErrorCode.VALIDATION_FAILED, `Invalid tenant stack config: ${problems.join('; ')}`, 400, { problems });
  }
}
