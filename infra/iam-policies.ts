/**
 * IAM policy documents for the platform's roles, as plain data so tests can read them exactly.
 * Values may be cdktf tokens (ARNs, account id); `JSON.stringify` keeps them resolvable.
 *
 * Rules: no Allow statement has Action `*` (or `service:*`) on Resource `*`; every statement that
 * must use Resource `*` (Describe/List calls, kms:CreateKey) names its actions and, where AWS
 * supports it, carries a tag condition.
 */

import { CLUSTER_TERMINATOR_ROLE } from '../provisioning/aws/cluster-terminator-role';
import { TENANT_APP_ROLE } from '../provisioning/aws/tenant-app-role';

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export const policy = (...statements: PolicyStatement[]): PolicyDocument => ({ Version: '2012-10-17', Statement: statements });

/** Tag every tenant resource carries; platform resources carry `managed-by = silo-platform` instead. */
export const TENANT_TAG_KEY = 'managed-by';
export const TENANT_TAG_VALUE = 'silo';

export interface AccountScope {
  region: string;
  accountId: string;
}

export function tenantSecretArnPattern(s: AccountScope, prefix: string): string {
  return `arn:aws:secretsmanager:${s.region}:${s.accountId}:secret:${prefix}*`;
}

/**
 * `rds-db:connect` as the application role on tenant clusters (IAM database authentication). The
 * resource is `dbuser:<cluster resource id>/<user>`; the resource id is opaque (`cluster-ABC…`,
 * not the identifier) and the action has no tag or name condition keys, so the grant cannot be
 * narrowed to tenant clusters: it is that one user name on any cluster of the account and region.
 * Only a cluster with IAM auth on and such a role in `rds_iam` accepts it (the control database
 * has IAM auth off).
 */
export function tenantAppDbUserArnPattern(s: AccountScope, appRole = TENANT_APP_ROLE): string {
  return `arn:aws:rds-db:${s.region}:${s.accountId}:dbuser:*/${appRole}`;
}

/** `rds-db:connect` as the runtime's terminator role on tenant clusters: the same shape and limits as tenantAppDbUserArnPattern. */
export function terminatorDbUserArnPattern(s: AccountScope, role = CLUSTER_TERMINATOR_ROLE): string {
  return tenantAppDbUserArnPattern(s, role);
}

/** Trust policy for a role assumed by ECS tasks of this account only. */
export function ecsTasksTrustPolicy(s: AccountScope): unknown {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'ecs-tasks.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: {
          StringEquals: { 'aws:SourceAccount': s.accountId },
          ArnLike: { 'aws:SourceArn': `arn:aws:ecs:${s.region}:${s.accountId}:*` },
        },
      },
    ],
  };
}

/** RDS names the master secret it manages `rds!cluster-<uuid>`; tenant stacks use `manage_master_user_password`. */
export function rdsManagedSecretArnPattern(s: AccountScope): string {
  return `arn:aws:secretsmanager:${s.region}:${s.accountId}:secret:rds!cluster-*`;
}

/**
 * Restricts `rds!cluster-*` secrets to those RDS created for tenant clusters: RDS tags each
 * managed secret with the ARN of the cluster that owns it.
 */
export function tenantMasterSecretCondition(s: AccountScope, tenantResourcePrefix: string) {
  return { StringLike: { 'aws:ResourceTag/aws:rds:primaryDBClusterArn': `arn:aws:rds:${s.region}:${s.accountId}:cluster:${tenantResourcePrefix}*` } };
}

/**
 * Runtime task role: read tenant connection secrets (under the tenant prefix, created through the
 * SecretStore; on AWS they hold no password) and log in to tenant clusters as the application role
 * and as the terminator role (ends backends that ignored a cancel) with an IAM token. Not the RDS-managed master secrets: the runtime never logs in as a cluster's
 * master user. KMS decrypt only when Secrets Manager asks on behalf of a tenant secret.
 */
export function runtimeTaskPolicy(s: AccountScope, tenantSecretPrefix: string, _tenantResourcePrefix: string): PolicyDocument {
  const secrets = tenantSecretArnPattern(s, tenantSecretPrefix);
  return policy(
    {
      Sid: 'ReadTenantSecrets',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      Resource: [secrets],
    },
    { Sid: 'ConnectAsTenantAppRole', Effect: 'Allow', Action: ['rds-db:connect'], Resource: [tenantAppDbUserArnPattern(s)] },
    // The runtime ends backends that ignored a cancel as silo_terminator on the backend's cluster (RUNTIME_TERMINATOR_SECRET_REF=iam:silo_terminator).
    { Sid: 'ConnectAsTerminatorRole', Effect: 'Allow', Action: ['rds-db:connect'], Resource: [terminatorDbUserArnPattern(s)] },
    {
      Sid: 'DecryptTenantSecrets',
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: [`arn:aws:kms:${s.region}:${s.accountId}:key/*`],
      Condition: {
        StringEquals: { 'kms:ViaService': `secretsmanager.${s.region}.amazonaws.com` },
        StringLike: { 'kms:EncryptionContext:SecretARN': [secrets] },
      },
    },
  );
}

/**
 * Control-plane task role: the API enqueues jobs and never creates cloud resources itself. It may
 * read tenant secrets (connection info), including tenant clusters' RDS-managed master secrets
 * (unchanged from before application roles), and list them. No database login on tenant clusters.
 */
export function controlPlaneTaskPolicy(s: AccountScope, tenantSecretPrefix: string, tenantResourcePrefix: string): PolicyDocument {
  const secrets = tenantSecretArnPattern(s, tenantSecretPrefix);
  const masterSecrets = rdsManagedSecretArnPattern(s);
  return policy(
    {
      Sid: 'ReadTenantSecrets',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      Resource: [secrets],
    },
    {
      Sid: 'ReadTenantMasterSecrets',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      Resource: [masterSecrets],
      Condition: tenantMasterSecretCondition(s, tenantResourcePrefix),
    },
    {
      Sid: 'DecryptTenantSecrets',
      Effect: 'Allow',
      Action: ['kms:Decrypt'],
      Resource: [`arn:aws:kms:${s.region}:${s.accountId}:key/*`],
      Condition: {
        StringEquals: { 'kms:ViaService': `secretsmanager.${s.region}.amazonaws.com` },
        StringLike: { 'kms:EncryptionContext:SecretARN': [secrets, masterSecrets] },
      },
    },
    // ListSecrets has no resource-level permissions.
    { Sid: 'ListSecrets', Effect: 'Allow', Action: ['secretsmanager:ListSecrets'], Resource: ['*'] },
  );
}

export interface WorkerPolicyProps extends AccountScope {
  tenantSecretPrefix: string;
  tenantResourcePrefix: string;
  tenantKmsAliasPrefix: string;
  vpcArn: string;
  stateBucketArn: string;
  lockTableArn: string;
  stateKeyArn: string;
  /** The platform key and the control DB cluster: every action denied, whatever their tags say. */
  platformKeyArn: string;
  controlDbClusterArn: string;
}

/**
 * Worker task role: runs `terraform apply` for tenant stacks. May create RDS/KMS/Secrets
 * Manager/security-group resources only with `managed-by = silo` on the request, and change or
 * delete only resources already tagged so (and, for RDS and secrets, named for tenants). Reads and
 * writes tenant state in the state bucket and lock table.
 */
export function workerTaskPolicy(p: WorkerPolicyProps): PolicyDocument {
  const rds = (type: string, name: string) => `arn:aws:rds:${p.region}:${p.accountId}:${type}:${name}`;
  const tenantRds = ['cluster', 'db', 'subgrp', 'cluster-pg', 'pg'].map((t) => rds(t, `${p.tenantResourcePrefix}*`));
  const requestTag = { StringEquals: { [`aws:RequestTag/${TENANT_TAG_KEY}`]: TENANT_TAG_VALUE } };
  const resourceTag = { StringEquals: { [`aws:ResourceTag/${TENANT_TAG_KEY}`]: TENANT_TAG_VALUE } };
  const secrets = tenantSecretArnPattern(p, p.tenantSecretPrefix);
  const kmsKeys = `arn:aws:kms:${p.region}:${p.accountId}:key/*`;
  const ec2 = (type: string) => `arn:aws:ec2:${p.region}:${p.accountId}:${type}`;
  return policy(
    {
      Sid: 'TenantStateObjects',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      Resource: [`${p.stateBucketArn}/*`],
    },
    { Sid: 'TenantStateBucket', Effect: 'Allow', Action: ['s3:ListBucket', 's3:GetBucketVersioning'], Resource: [p.stateBucketArn] },
    {
      Sid: 'TenantStateLock',
      Effect: 'Allow',
      Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:DescribeTable'],
      Resource: [p.lockTableArn],
    },
    {
      Sid: 'TenantStateKey',
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
      Resource: [p.stateKeyArn],
    },
    {
      // These calls do not support resource-level permissions.
      Sid: 'DescribeOnly',
      Effect: 'Allow',
      Action: [
        'rds:DescribeDBClusters', 'rds:DescribeDBInstances', 'rds:DescribeDBSubnetGroups',
        'rds:DescribeDBClusterParameterGroups', 'rds:DescribeDBClusterParameters', 'rds:DescribeDBParameterGroups',
        'rds:DescribeDBParameters', 'rds:DescribeDBClusterSnapshots', 'rds:DescribeDBEngineVersions',
        'rds:DescribeOrderableDBInstanceOptions', 'rds:ListTagsForResource',
        'ec2:DescribeVpcs', 'ec2:DescribeVpcAttribute', 'ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups',
        'ec2:DescribeSecurityGroupRules', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeAvailabilityZones',
        'ec2:DescribeAccountAttributes', 'ec2:DescribeTags',
        'kms:ListAliases', 'secretsmanager:ListSecrets', 'secretsmanager:GetRandomPassword',
      ],
      Resource: ['*'],
    },
    {
      Sid: 'TenantRdsCreate',
      Effect: 'Allow',
      Action: [
        'rds:CreateDBCluster', 'rds:CreateDBInstance', 'rds:CreateDBSubnetGroup',
        'rds:CreateDBClusterParameterGroup', 'rds:CreateDBParameterGroup', 'rds:AddTagsToResource',
      ],
      Resource: tenantRds,
      Condition: requestTag,
    },
    {
      // CreateDBCluster/CreateDBInstance are also authorised against AWS's default groups.
      Sid: 'TenantRdsUseDefaultGroups',
      Effect: 'Allow',
      Action: ['rds:CreateDBCluster', 'rds:CreateDBInstance'],
      Resource: [rds('cluster-pg', 'default.*'), rds('pg', 'default.*'), rds('og', 'default:*')],
    },
    {
      Sid: 'TenantRdsManage',
      Effect: 'Allow',
      Action: [
        'rds:ModifyDBCluster', 'rds:DeleteDBCluster', 'rds:ModifyDBInstance', 'rds:DeleteDBInstance',
        'rds:RebootDBInstance', 'rds:ModifyDBSubnetGroup', 'rds:DeleteDBSubnetGroup',
        'rds:ModifyDBClusterParameterGroup', 'rds:DeleteDBClusterParameterGroup',
        'rds:ModifyDBParameterGroup', 'rds:DeleteDBParameterGroup',
        'rds:AddTagsToResource', 'rds:RemoveTagsFromResource', 'rds:CreateDBClusterSnapshot',
      ],
      Resource: tenantRds,
      Condition: resourceTag,
    },
    {
      // Final snapshots on delete: a new resource, so no tag yet; the name keeps it to tenants.
      Sid: 'TenantRdsFinalSnapshots',
      Effect: 'Allow',
      Action: ['rds:CreateDBClusterSnapshot', 'rds:AddTagsToResource'],
      Resource: [rds('cluster-snapshot', `${p.tenantResourcePrefix}*`)],
    },
    {
      // Tagging a key as it is created needs kms:TagResource too.
      Sid: 'TenantKmsCreate',
      Effect: 'Allow',
      Action: ['kms:CreateKey', 'kms:TagResource'],
      Resource: ['*'],
      Condition: requestTag,
    },
    {
      Sid: 'TenantKmsManage',
      Effect: 'Allow',
      Action: [
        'kms:DescribeKey', 'kms:GetKeyPolicy', 'kms:GetKeyRotationStatus', 'kms:ListResourceTags',
        'kms:EnableKeyRotation', 'kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion', 'kms:TagResource',
        'kms:UntagResource', 'kms:CreateAlias', 'kms:DeleteAlias', 'kms:UpdateAlias',
        'kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey',
      ],
      Resource: [kmsKeys],
      Condition: resourceTag,
    },
    {
      // RDS and Secrets Manager use tenant keys on the worker's behalf through grants.
      Sid: 'TenantKmsGrantsForAwsServices',
      Effect: 'Allow',
      Action: ['kms:CreateGrant'],
      Resource: [kmsKeys],
      Condition: { ...resourceTag, Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    },
    {
      Sid: 'TenantKmsAliases',
      Effect: 'Allow',
      Action: ['kms:CreateAlias', 'kms:DeleteAlias', 'kms:UpdateAlias'],
      Resource: [`arn:aws:kms:${p.region}:${p.accountId}:alias/${p.tenantKmsAliasPrefix}*`],
    },
    {
      // CreateDBCluster with manage_master_user_password: RDS creates `rds!cluster-…` with the caller's rights.
      Sid: 'RdsManagedSecretsCreate',
      Effect: 'Allow',
      Action: ['secretsmanager:CreateSecret', 'secretsmanager:TagResource'],
      Resource: [rdsManagedSecretArnPattern(p)],
    },
    {
      // Tenant migrations run as the application role, logging in with an IAM token (limits: tenantAppDbUserArnPattern).
      Sid: 'ConnectAsTenantAppRole',
      Effect: 'Allow',
      Action: ['rds-db:connect'],
      Resource: [tenantAppDbUserArnPattern(p)],
    },
    {
      // Storage quotas: the storage sweep (run by the worker) reads each tenant cluster's AWS/RDS
      // VolumeBytesUsed. GetMetricData has no resource-level permissions or condition keys, so
      // Resource is "*"; the action only reads metrics.
      Sid: 'ReadStorageMetrics',
      Effect: 'Allow',
      Action: ['cloudwatch:GetMetricData'],
      Resource: ['*'],
    },
    {
      // The tenant-role step (master login to converge the application role) and managed rotation on tenant clusters' master secrets.
      Sid: 'TenantMasterSecrets',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret', 'secretsmanager:RotateSecret'],
      Resource: [rdsManagedSecretArnPattern(p)],
      Condition: tenantMasterSecretCondition(p, p.tenantResourcePrefix),
    },
    {
      Sid: 'TenantSecretsCreate',
      Effect: 'Allow',
      Action: ['secretsmanager:CreateSecret', 'secretsmanager:TagResource'],
      Resource: [secrets],
      Condition: requestTag,
    },
    {
      Sid: 'TenantSecretsManage',
      Effect: 'Allow',
      Action: [
        'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecret',
        'secretsmanager:DescribeSecret', 'secretsmanager:DeleteSecret', 'secretsmanager:RestoreSecret',
        'secretsmanager:GetResourcePolicy', 'secretsmanager:TagResource', 'secretsmanager:UntagResource',
      ],
      Resource: [secrets],
      Condition: resourceTag,
    },
    {
      Sid: 'TenantSecurityGroupCreate',
      Effect: 'Allow',
      Action: ['ec2:CreateSecurityGroup'],
      Resource: [ec2('security-group/*')],
      Condition: requestTag,
    },
    { Sid: 'TenantSecurityGroupInVpc', Effect: 'Allow', Action: ['ec2:CreateSecurityGroup'], Resource: [p.vpcArn] },
    {
      Sid: 'TenantSecurityGroupTagOnCreate',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: [ec2('security-group/*')],
      Condition: { StringEquals: { 'ec2:CreateAction': ['CreateSecurityGroup', 'AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress'] } },
    },
    {
      Sid: 'TenantSecurityGroupManage',
      Effect: 'Allow',
      Action: [
        'ec2:AuthorizeSecurityGroupIngress', 'ec2:AuthorizeSecurityGroupEgress', 'ec2:RevokeSecurityGroupIngress',
        'ec2:RevokeSecurityGroupEgress', 'ec2:ModifySecurityGroupRules', 'ec2:DeleteSecurityGroup',
        'ec2:UpdateSecurityGroupRuleDescriptionsIngress', 'ec2:UpdateSecurityGroupRuleDescriptionsEgress',
        'ec2:CreateTags', 'ec2:DeleteTags',
      ],
      Resource: [ec2('security-group/*')],
      Condition: resourceTag,
    },
    {
      // Rules are separate resources, born untagged; the group they belong to is checked above.
      Sid: 'TenantSecurityGroupRules',
      Effect: 'Allow',
      Action: ['ec2:AuthorizeSecurityGroupIngress', 'ec2:AuthorizeSecurityGroupEgress', 'ec2:RevokeSecurityGroupIngress', 'ec2:RevokeSecurityGroupEgress', 'ec2:ModifySecurityGroupRules'],
      Resource: [ec2('security-group-rule/*')],
    },
    {
      // Defence in depth: the platform key and the control database stay out of reach even if
      // someone tags them managed-by=silo.
      Sid: 'DenyPlatformResources',
      Effect: 'Deny',
      Action: ['kms:*', 'rds:*'],
      Resource: [p.platformKeyArn, p.controlDbClusterArn],
    },
    {
      // The worker uses the state key, but may never re-tag, re-police, grant or delete it.
      Sid: 'DenyStateKeyAdministration',
      Effect: 'Deny',
      Action: [
        'kms:TagResource', 'kms:UntagResource', 'kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion', 'kms:DisableKey',
        'kms:CreateGrant', 'kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias',
      ],
      Resource: [p.stateKeyArn],
    },
  );
}

export interface ExecutionPolicyProps {
  repositoryArn: string;
  logGroupArn: string;
  /** Secrets injected into the container (exact ARNs, no wildcards). */
  secretArns: string[];
  /** Keys those secrets are encrypted with. */
  secretKeyArns: string[];
  region: string;
}

/** ECS task execution role: pull this service's image, write its log group, read exactly its secrets. */
export function executionPolicy(p: ExecutionPolicyProps): PolicyDocument {
  const statements: PolicyStatement[] = [
    // GetAuthorizationToken has no resource-level permissions.
    { Sid: 'EcrAuth', Effect: 'Allow', Action: ['ecr:GetAuthorizationToken'], Resource: ['*'] },
    {
      Sid: 'EcrPull',
      Effect: 'Allow',
      Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
      Resource: [p.repositoryArn],
    },
    { Sid: 'Logs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: [`${p.logGroupArn}:*`] },
  ];
  if (p.secretArns.length > 0) {
    statements.push(
      { Sid: 'InjectSecrets', Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: p.secretArns },
      {
        Sid: 'DecryptInjectedSecrets',
        Effect: 'Allow',
        Action: ['kms:Decrypt'],
        Resource: p.secretKeyArns,
        Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${p.region}.amazonaws.com` } },
      },
    );
  }
  return policy(...statements);
}
