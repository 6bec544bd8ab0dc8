import { synthesize, SynthesizedStack } from './testing';
import { AppautoscalingPolicy } from '@cdktf/provider-aws/lib/appautoscaling-policy';
import { DynamodbTable } from '@cdktf/provider-aws/lib/dynamodb-table';
import { ElasticacheReplicationGroup } from '@cdktf/provider-aws/lib/elasticache-replication-group';
import { LbListener } from '@cdktf/provider-aws/lib/lb-listener';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning';
import { parseInfraConfig } from './config';
import { PlatformStack } from './platform-stack';
import { PLATFORM_OUTPUT_NAMES } from './platform-outputs';

type Block = Record<string, unknown>;
interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

const ACCOUNT = '${data.aws_caller_identity.account.account_id}';
const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const ref = (s: SynthesizedStack, type: string, prefix: string, attr = 'id') => `\${${s.ref(type, prefix)}.${attr}}`;

/** Every policy document in the stack, with where it came from. */
function policies(s: SynthesizedStack): { where: string; identity: boolean; statements: Statement[] }[] {
  const out: { where: string; identity: boolean; statements: Statement[] }[] = [];
  const add = (type: string, attr: string, identity: boolean) => {
    for (const [id, r] of Object.entries(s.resources(type))) {
      if (typeof r[attr] !== 'string') continue;
      out.push({ where: `${type}.${id}.${attr}`, identity, statements: list((JSON.parse(r[attr] as string) as { Statement: Statement[] }).Statement) });
    }
  };
  add('aws_iam_role_policy', 'policy', true);
  add('aws_iam_policy', 'policy', true);
  add('aws_iam_role', 'assume_role_policy', false);
  add('aws_kms_key', 'policy', false);
  add('aws_s3_bucket_policy', 'policy', false);
  add('aws_secretsmanager_secret', 'policy', false);
  return out;
}

function rolePolicy(s: SynthesizedStack, prefix: string): Statement[] {
  return list((JSON.parse(s.resource('aws_iam_role_policy', prefix).policy as string) as { Statement: Statement[] }).Statement);
}

/** Ingress rules in every form Terraform accepts, normalised. */
function ingressRules(s: SynthesizedStack) {
  const rules: { where: string; group: string; from?: number; to?: number; cidrs: string[]; sourceGroup?: string }[] = [];
  for (const [id, r] of Object.entries(s.resources('aws_vpc_security_group_ingress_rule'))) {
    rules.push({
      where: id,
      group: r.security_group_id as string,
      from: r.from_port as number,
      to: r.to_port as number,
      cidrs: [r.cidr_ipv4, r.cidr_ipv6].filter((c): c is string => typeof c === 'string'),
      sourceGroup: r.referenced_security_group_id as string | undefined,
    });
  }
  for (const [id, r] of Object.entries(s.resources('aws_security_group_rule'))) {
    if (r.type !== 'ingress') continue;
    rules.push({ where: id, group: r.security_group_id as string, from: r.from_port as number, to: r.to_port as number, cidrs: [...list(r.cidr_blocks as string[]), ...list(r.ipv6_cidr_blocks as string[])], sourceGroup: r.source_security_group_id as string | undefined });
  }
  for (const type of ['aws_security_group', 'aws_default_security_group']) {
    for (const [id, g] of Object.entries(s.resources(type))) {
      for (const r of list(g.ingress as Block[])) {
        rules.push({ where: `${type}.${id} inline`, group: `\${${type}.${id}.id}`, from: r.from_port as number, to: r.to_port as number, cidrs: [...list(r.cidr_blocks as string[]), ...list(r.ipv6_cidr_blocks as string[])] });
      }
    }
  }
  return rules;
}

describe('PlatformStack', () => {
  let s: SynthesizedStack;
  beforeAll(() => {
    s = synthesize((app) => new PlatformStack(app, 'platform', parseInfraConfig({ domain: 'silo.example.com' })));
  });

  describe('Redis', () => {
    it('is encrypted at rest with the platform key and requires TLS and an AUTH token', () => {
      expect(s.json).toHaveResourceWithProperties(ElasticacheReplicationGroup, {
        at_rest_encryption_enabled: 'true',
        kms_key_id: ref(s, 'aws_kms_key', 'platform-key', 'arn'),
        transit_encryption_enabled: true,
        transit_encryption_mode: 'required',
        auth_token: ref(s, 'aws_secretsmanager_secret_version', 'redis_auth-token-value', 'secret_string'),
      });
    });

    it('takes its AUTH token from Secrets Manager, generated once and pinned, never written in code', () => {
      const version = s.resource('aws_secretsmanager_secret_version', 'redis_auth-token-value');
      expect(version.secret_string).toMatch(/^\$\{data\.aws_secretsmanager_random_password\.[^.]+\.random_password\}$/);
      expect(version.lifecycle).toEqual({ ignore_changes: ['secret_string'] });
      const generator = Object.values(s.doc.data?.aws_secretsmanager_random_password ?? {});
      expect(generator).toHaveLength(1);
      expect(generator[0]).toMatchObject({ password_length: 64, exclude_punctuation: true });
    });

    it('hands services a rediss:// URL', () => {
      expect(s.resource('aws_secretsmanager_secret_version', 'redis_url-value').secret_string).toMatch(/^rediss:\/\/:\$\{/);
    });
  });

  describe('control database', () => {
    it('is Aurora PostgreSQL Serverless v2, KMS-encrypted, deletion protected, with an RDS-managed password', () => {
      expect(s.json).toHaveResourceWithProperties(RdsCluster, {
        engine: 'aurora-postgresql',
        engine_mode: 'provisioned',
        storage_encrypted: true,
        kms_key_id: ref(s, 'aws_kms_key', 'platform-key', 'arn'),
        deletion_protection: true,
        skip_final_snapshot: false,
        manage_master_user_password: true,
        serverlessv2_scaling_configuration: { min_capacity: 0.5, max_capacity: 8 },
      });
      const cluster = s.resource('aws_rds_cluster', 'control-db_cluster');
      expect(cluster).not.toHaveProperty('master_password');
      expect(cluster).not.toHaveProperty('master_password_wo');
      for (const instance of Object.values(s.resources('aws_rds_cluster_instance'))) {
        expect(instance).toMatchObject({ instance_class: 'db.serverless', publicly_accessible: false });
      }
    });

    it('forces TLS through its cluster parameter group', () => {
      const pg = s.resource('aws_rds_cluster_parameter_group', 'control-db_params');
      expect(pg.parameter).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'rds.force_ssl', value: '1' })]));
      expect(s.resource('aws_rds_cluster', 'control-db_cluster').db_cluster_parameter_group_name).toBe(ref(s, 'aws_rds_cluster_parameter_group', 'control-db_params', 'name'));
    });

    it('gives services the password only as an injected secret, and a URL that verifies TLS', () => {
      const containers = JSON.parse(s.resource('aws_ecs_task_definition', 'control-plane_task').container_definitions as string) as { environment: { name: string; value: string }[]; secrets: { name: string; valueFrom: string }[] }[];
      const env = Object.fromEntries(containers[0].environment.map((e) => [e.name, e.value]));
      expect(env.DATABASE_URL).toMatch(/^postgres:\/\/silo_admin@\$\{aws_rds_cluster\.[^}]+\.endpoint\}:5432\/silo\?sslmode=verify-full$/);
      expect(containers[0].secrets).toContainEqual({ name: 'PGPASSWORD', valueFrom: `${ref(s, 'aws_rds_cluster', 'control-db_cluster', 'master_user_secret[0].secret_arn')}:password::` });
    });
  });

  describe('network exposure', () => {
    it('admits 0.0.0.0/0 (or ::/0) only on the ALB (443 and 80) and the PostgreSQL NLB (5432)', () => {
      const open = ingressRules(s).filter((r) => r.cidrs.some((c) => c === '0.0.0.0/0' || c === '::/0'));
      const alb = ref(s, 'aws_security_group', 'lb_sg');
      const nlb = ref(s, 'aws_security_group', 'pg-lb_sg');
      expect(open.map((r) => ({ group: r.group, from: r.from, to: r.to })).sort((a, b) => (a.from ?? 0) - (b.from ?? 0))).toEqual([
        { group: alb, from: 80, to: 80 },
        { group: alb, from: 443, to: 443 },
        { group: nlb, from: 5432, to: 5432 },
      ]);
    });

    it('has no ingress from any CIDR except the load balancers\' public rules: everything else is group-to-group', () => {
      const publicGroups = [ref(s, 'aws_security_group', 'lb_sg'), ref(s, 'aws_security_group', 'pg-lb_sg')];
      for (const r of ingressRules(s).filter((r) => !publicGroups.includes(r.group))) {
        expect({ where: r.where, cidrs: r.cidrs }).toEqual({ where: r.where, cidrs: [] });
        expect(r.sourceGroup).toBeDefined();
      }
    });

    it('lets only the three service groups reach Postgres (5432) and Redis (6379)', () => {
      const services = ['control-plane-sg', 'worker-sg', 'runtime-sg'].map((g) => ref(s, 'aws_security_group', g)).sort();
      for (const [target, port] of [['control-db-sg', 5432], ['redis-sg', 6379]] as const) {
        const rules = ingressRules(s).filter((r) => r.group === ref(s, 'aws_security_group', target));
        expect(rules.map((r) => r.sourceGroup).sort()).toEqual(services);
        expect(rules.every((r) => r.from === port && r.to === port)).toBe(true);
      }
    });

    it('removes every rule from the VPC default security group', () => {
      expect(Object.values(s.resources('aws_default_security_group'))).toEqual([expect.objectContaining({ ingress: [], egress: [] })]);
    });
  });

  describe('IAM', () => {
    it('lets the runtime read only tenant connection secrets (not master secrets) and log in only as tenant_app and silo_terminator with an IAM token', () => {
      const tenantSecrets = `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:silo/tenants/*`;
      const statements = rolePolicy(s, 'runtime_task-policy');
      expect(statements).toEqual([
        { Sid: 'ReadTenantSecrets', Effect: 'Allow', Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'], Resource: [tenantSecrets] },
        // Any cluster's tenant_app in this account and region: rds-db:connect has no tag or name condition (see iam-policies.ts).
        { Sid: 'ConnectAsTenantAppRole', Effect: 'Allow', Action: ['rds-db:connect'], Resource: [`arn:aws:rds-db:eu-west-1:${ACCOUNT}:dbuser:*/tenant_app`] },
        // The terminator role the AWS driver creates on each cluster, with the same (not narrowable) shape.
        { Sid: 'ConnectAsTerminatorRole', Effect: 'Allow', Action: ['rds-db:connect'], Resource: [`arn:aws:rds-db:eu-west-1:${ACCOUNT}:dbuser:*/silo_terminator`] },
        {
          Sid: 'DecryptTenantSecrets',
          Effect: 'Allow',
          Action: ['kms:Decrypt'],
          Resource: [`arn:aws:kms:eu-west-1:${ACCOUNT}:key/*`],
          Condition: {
            StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' },
            StringLike: { 'kms:EncryptionContext:SecretARN': [tenantSecrets] },
          },
        },
      ]);
      expect(JSON.stringify(statements)).not.toContain('rds!cluster');
      // The one user the grant names, and the control database takes no IAM logins at all.
      expect(list(statements[1].Resource).every((r) => r.endsWith('/tenant_app'))).toBe(true);
      expect(statements.filter((st) => list(st.Action).includes('rds-db:connect')).flatMap((st) => list(st.Resource)).map((r) => r.split('/').pop())).toEqual(['tenant_app', 'silo_terminator']);
      expect(s.resource('aws_rds_cluster', 'control-db_cluster').iam_database_authentication_enabled).not.toBe(true);
    });

    it('lets the control plane read tenant secrets and RDS master secrets of tenant clusters only, and list secrets', () => {
      const tenantSecrets = `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:silo/tenants/*`;
      const masterSecrets = `arn:aws:secretsmanager:eu-west-1:${ACCOUNT}:secret:rds!cluster-*`;
      const statements = rolePolicy(s, 'control-plane_task-policy');
      expect(statements.map((st) => st.Sid)).toEqual(['ReadTenantSecrets', 'ReadTenantMasterSecrets', 'DecryptTenantSecrets', 'ListSecrets']);
      expect(statements[1]).toEqual({
        Sid: 'ReadTenantMasterSecrets',
        Effect: 'Allow',
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        Resource: [masterSecrets],
        Condition: { StringLike: { 'aws:ResourceTag/aws:rds:primaryDBClusterArn': `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:silo-tenant-*` } },
      });
      expect(statements[0].Resource).toEqual([tenantSecrets]);
      expect(JSON.stringify(statements)).not.toContain('rds-db:connect');
      // The control database's own cluster is not a tenant cluster, so its master secret is out of reach.
      const glob = (statements[1].Condition?.StringLike['aws:ResourceTag/aws:rds:primaryDBClusterArn'] as string).replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '*' ? '.*' : `\\${c}`));
      const controlCluster = `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:${s.resource('aws_rds_cluster', 'control-db_cluster').cluster_identifier as string}`;
      expect(new RegExp(`^${glob}$`).test(controlCluster)).toBe(false);
      expect(new RegExp(`^${glob}$`).test(`arn:aws:rds:eu-west-1:${ACCOUNT}:cluster:silo-tenant-abc`)).toBe(true);
    });

    it('lets the worker log in to tenant clusters as tenant_app (migrations) and read master secrets of tenant clusters (the tenant-role step)', () => {
      const statements = rolePolicy(s, 'worker_task-policy');
      expect(statements.find((st) => st.Sid === 'ConnectAsTenantAppRole')).toEqual({
        Sid: 'ConnectAsTenantAppRole', Effect: 'Allow', Action: ['rds-db:connect'], Resource: [`arn:aws:rds-db:eu-west-1:${ACCOUNT}:dbuser:*/tenant_app`],
      });
      expect(statements.find((st) => st.Sid === 'TenantMasterSecrets')?.Action).toEqual(expect.arrayContaining(['secretsmanager:GetSecretValue', 'secretsmanager:RotateSecret']));
    });

    it('lets the worker read CloudWatch metrics (storage sweep: each tenant cluster\'s VolumeBytesUsed), and only the worker', () => {
      const statements = rolePolicy(s, 'worker_task-policy');
      expect(statements.find((st) => st.Sid === 'ReadStorageMetrics')).toEqual({
        Sid: 'ReadStorageMetrics', Effect: 'Allow', Action: ['cloudwatch:GetMetricData'], Resource: ['*'],
      });
      expect(statements.filter((st) => JSON.stringify(st.Action).includes('cloudwatch:'))).toHaveLength(1);
      for (const other of ['control-plane_task-policy', 'runtime_task-policy']) expect(JSON.stringify(rolePolicy(s, other))).not.toContain('cloudwatch:');
    });

    it('has no policy anywhere that allows Action "*" on Resource "*"', () => {
      const all = policies(s);
      expect(all.length).toBeGreaterThanOrEqual(14);
      for (const p of all) {
        for (const st of p.statements.filter((st) => st.Effect === 'Allow')) {
          const star = list(st.Action).includes('*') && list(st.Resource).includes('*');
          expect({ where: p.where, sid: st.Sid, star }).toEqual({ where: p.where, sid: st.Sid, star: false });
        }
      }
    });

    it('grants no role a service-wide wildcard ("svc:*") or NotAction, and uses Resource "*" only for named actions', () => {
      for (const p of policies(s).filter((p) => p.identity)) {
        for (const st of p.statements) {
          expect(st).not.toHaveProperty('NotAction');
          expect(st).not.toHaveProperty('NotResource');
          if (st.Effect !== 'Allow') continue;
          const wild = list(st.Action).filter((a) => a === '*' || a.endsWith(':*'));
          expect({ where: p.where, sid: st.Sid, wild }).toEqual({ where: p.where, sid: st.Sid, wild: [] });
        }
      }
    });

    it('lets the worker create tenant resources only with managed-by=silo on the request, and change them only when so tagged', () => {
      const statements = rolePolicy(s, 'worker_task-policy');
      const mutating = /^(rds:(Create|Modify|Delete|Reboot|AddTags|RemoveTags)|kms:(CreateKey|PutKeyPolicy|ScheduleKeyDeletion|TagResource|UntagResource|EnableKeyRotation|CreateGrant)|secretsmanager:(CreateSecret|PutSecretValue|UpdateSecret|DeleteSecret|TagResource)|ec2:(CreateSecurityGroup|DeleteSecurityGroup|Authorize|Revoke|ModifySecurityGroupRules))/;
      // Statements allowed without a tag condition, and why: each is pinned to names or to AWS defaults.
      const nameScoped: Record<string, RegExp> = {
        TenantRdsUseDefaultGroups: /:(cluster-pg|pg):default\.\*$|:og:default:\*$/,
        TenantRdsFinalSnapshots: /:cluster-snapshot:silo-tenant-\*$/,
        TenantSecurityGroupInVpc: /^\$\{aws_vpc\./,
        TenantKmsAliases: /:alias\/silo\/tenant-\*$/,
        RdsManagedSecretsCreate: /:secret:rds!cluster-\*$/,
        TenantSecurityGroupRules: /:security-group-rule\/\*$/,
      };
      for (const st of statements.filter((st) => st.Effect === 'Allow' && list(st.Action).some((a) => mutating.test(a)))) {
        const tagged = JSON.stringify(st.Condition ?? {}).match(/aws:(Request|Resource)Tag\/managed-by":"silo"|ec2:CreateAction|aws:rds:primaryDBClusterArn":"arn:aws:rds:[^"]+:cluster:silo-tenant-\*"/);
        if (tagged) continue;
        const pattern = nameScoped[st.Sid ?? ''];
        expect({ sid: st.Sid, scoped: pattern !== undefined && list(st.Resource).every((r) => pattern.test(r)) }).toEqual({ sid: st.Sid, scoped: true });
      }
      const create = statements.find((st) => st.Sid === 'TenantRdsCreate');
      expect(create?.Condition).toEqual({ StringEquals: { 'aws:RequestTag/managed-by': 'silo' } });
      expect(list(create?.Resource).every((r) => r.includes(':silo-tenant-*'))).toBe(true);
    });

    it('denies the worker the platform key and the control database outright, and administration of the state key', () => {
      const denies = rolePolicy(s, 'worker_task-policy').filter((st) => st.Effect === 'Deny');
      expect(denies[0]).toEqual({
        Sid: 'DenyPlatformResources',
        Effect: 'Deny',
        Action: ['kms:*', 'rds:*'],
        Resource: [ref(s, 'aws_kms_key', 'platform-key', 'arn'), ref(s, 'aws_rds_cluster', 'control-db_cluster', 'arn')],
      });
      expect(denies[1]).toMatchObject({ Sid: 'DenyStateKeyAdministration', Resource: [ref(s, 'aws_kms_key', 'tenant-state-key', 'arn')] });
      expect(denies[1].Action).toEqual(expect.arrayContaining(['kms:ScheduleKeyDeletion', 'kms:PutKeyPolicy', 'kms:TagResource']));
      expect(denies).toHaveLength(2);
    });

    it('lets the worker use exactly the tenant state bucket and lock table', () => {
      const statements = rolePolicy(s, 'worker_task-policy');
      const bucketArn = ref(s, 'aws_s3_bucket', 'tenant-state_bucket', 'arn');
      expect(statements.find((st) => st.Sid === 'TenantStateObjects')?.Resource).toEqual([`${bucketArn}/*`]);
      expect(statements.find((st) => st.Sid === 'TenantStateBucket')?.Resource).toEqual([bucketArn]);
      expect(statements.find((st) => st.Sid === 'TenantStateLock')?.Resource).toEqual([ref(s, 'aws_dynamodb_table', 'tenant-state_lock-table', 'arn')]);
    });

    it('gives each execution role exactly the secrets its container injects', () => {
      for (const svc of ['control-plane', 'worker', 'runtime']) {
        const containers = JSON.parse(s.resource('aws_ecs_task_definition', `${svc}_task`).container_definitions as string) as { secrets: { valueFrom: string }[] }[];
        const injected = [...new Set(containers[0].secrets.map((x) => x.valueFrom.replace(/:[A-Za-z_]+::$/, '')))].sort();
        const granted = rolePolicy(s, `${svc}_execution-policy`).find((st) => st.Sid === 'InjectSecrets');
        expect(list(granted?.Resource).sort()).toEqual(injected);
      }
    });

    it('never hands the runtime the admin token, master key or Stripe secret', () => {
      const [c] = JSON.parse(s.resource('aws_ecs_task_definition', 'runtime_task').container_definitions as string) as { secrets: { name: string }[] }[];
      expect(c.secrets.map((x) => x.name)).toEqual(['PGPASSWORD', 'REDIS_URL', 'RUNTIME_PG_TLS_CERT_PEM', 'RUNTIME_PG_TLS_KEY_PEM', 'SILO_DIRECTORY_KEY']);
    });

    it('hands every service that touches Redis the same directory signing key', () => {
      const arn = ref(s, 'aws_secretsmanager_secret', 'directory-key-secret', 'arn');
      for (const svc of ['control-plane', 'worker', 'runtime']) {
        const [c] = JSON.parse(s.resource('aws_ecs_task_definition', `${svc}_task`).container_definitions as string) as { secrets: { name: string; valueFrom: string }[] }[];
        expect(c.secrets).toContainEqual({ name: 'SILO_DIRECTORY_KEY', valueFrom: arn });
        expect(c.secrets.map((x) => x.name)).toContain('REDIS_URL');
      }
    });

    it('serves the runtime\'s /metrics on an internal port the load balancer never reaches, and terminates as silo_terminator with an IAM token', () => {
      const [c] = JSON.parse(s.resource('aws_ecs_task_definition', 'runtime_task').container_definitions as string) as { environment: { name: string; value: string }[]; portMappings: { containerPort: number }[] }[];
      const env = Object.fromEntries(c.environment.map((e) => [e.name, e.value]));
      expect(env).toMatchObject({ RUNTIME_METRICS_PORT: '9464', RUNTIME_TERMINATOR_SECRET_REF: 'iam:silo_terminator' });
      // The worker and control plane end no backends: no terminator grant there.
      for (const svc of ['control-plane', 'worker']) expect(JSON.stringify(rolePolicy(s, `${svc}_task-policy`))).not.toContain('silo_terminator');
      const tgPorts = Object.values(s.resources('aws_lb_target_group')).flatMap((tg) => [tg.port, Number((tg.health_check as { port?: string }).port ?? tg.port)]);
      expect(tgPorts).not.toContain(9464);
      const ingressPorts = Object.values(s.resources('aws_vpc_security_group_ingress_rule')).map((r) => r.from_port);
      expect(ingressPorts).not.toContain(9464);
    });

    it('lets only ECS tasks of this account assume the roles', () => {
      for (const role of Object.values(s.resources('aws_iam_role'))) {
        const doc = JSON.parse(role.assume_role_policy as string) as { Statement: { Principal: unknown; Condition: unknown }[] };
        expect(doc.Statement).toEqual([
          expect.objectContaining({ Principal: { Service: 'ecs-tasks.amazonaws.com' }, Condition: expect.objectContaining({ StringEquals: { 'aws:SourceAccount': ACCOUNT } }) }),
        ]);
      }
    });
  });

  describe('load balancer', () => {
    it('routes api.<domain> to the control plane and *.<tenant domain> to the runtime over HTTPS', () => {
      const https = ref(s, 'aws_lb_listener', 'lb_https', 'arn');
      const rules = Object.values(s.resources('aws_lb_listener_rule')).map((r) => ({
        listener: r.listener_arn,
        hosts: (r.condition as { host_header: { values: string[] } }[])[0].host_header.values,
        target: (r.action as { target_group_arn: string }[])[0].target_group_arn,
      }));
      expect(rules).toEqual(
        expect.arrayContaining([
          { listener: https, hosts: ['api.silo.example.com'], target: ref(s, 'aws_lb_target_group', 'lb_control-plane-tg', 'arn') },
          { listener: https, hosts: ['*.tenants.silo.example.com'], target: ref(s, 'aws_lb_target_group', 'lb_runtime-tg', 'arn') },
        ]),
      );
      expect(rules).toHaveLength(2);
    });

    it('redirects HTTP to HTTPS and serves a validated certificate for both names with a TLS 1.2+ policy', () => {
      expect(s.json).toHaveResourceWithProperties(LbListener, {
        port: 80,
        protocol: 'HTTP',
        default_action: [{ type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', status_code: 'HTTP_301' } }],
      });
      expect(s.json).toHaveResourceWithProperties(LbListener, {
        port: 443,
        protocol: 'HTTPS',
        ssl_policy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
        certificate_arn: ref(s, 'aws_acm_certificate_validation', 'lb_certificate-validation', 'certificate_arn'),
      });
      expect(s.resource('aws_acm_certificate', 'lb_certificate')).toMatchObject({
        domain_name: '*.tenants.silo.example.com',
        subject_alternative_names: ['api.silo.example.com'],
        validation_method: 'DNS',
      });
    });

    it("serves the neon driver's default endpoint, api.<tenant domain>, on the runtime: its host rule wins, the certificate and the runtime's base domain cover it", () => {
      // The driver posts to https://api.<connection host minus its first label>/sql: for <slug>.tenants.silo.example.com, this host.
      const neonHost = 'api.tenants.silo.example.com';
      // ALB host conditions: case-insensitive, `*` any run of characters, `?` one; the lowest priority number that matches wins.
      const alb = (pattern: string) => new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
      const rules = Object.values(s.resources('aws_lb_listener_rule'))
        .map((r) => ({ priority: r.priority as number, hosts: (r.condition as { host_header: { values: string[] } }[])[0].host_header.values, target: (r.action as { target_group_arn: string }[])[0].target_group_arn }))
        .sort((a, b) => a.priority - b.priority);
      expect(rules.find((r) => r.hosts.some((h) => alb(h).test(neonHost)))?.target).toBe(ref(s, 'aws_lb_target_group', 'lb_runtime-tg', 'arn'));
      // An ACM wildcard covers exactly one label.
      const cert = s.resource('aws_acm_certificate', 'lb_certificate') as { domain_name: string; subject_alternative_names: string[] };
      expect([cert.domain_name, ...cert.subject_alternative_names].some((n) => n === neonHost || (n.startsWith('*.') && neonHost.slice(neonHost.indexOf('.') + 1) === n.slice(2)))).toBe(true);
      // Without it the runtime reads <slug>.<tenant domain> as a custom domain, and api.<tenant domain> as one too.
      const [c] = JSON.parse(s.resource('aws_ecs_task_definition', 'runtime_task').container_definitions as string) as { environment: { name: string; value: string }[] }[];
      expect(Object.fromEntries(c.environment.map((e) => [e.name, e.value])).RUNTIME_BASE_DOMAIN).toBe('tenants.silo.example.com');
    });

    it('health-checks both target groups on /health/ready', () => {
      for (const [tg, port] of [['lb_control-plane-tg', 3000], ['lb_runtime-tg', 4000]] as const) {
        expect(s.resource('aws_lb_target_group', tg)).toMatchObject({ port, target_type: 'ip', health_check: { path: '/health/ready', matcher: '200' } });
      }
    });
  });

  describe('PostgreSQL front door', () => {
    const runtimeContainer = () =>
      (JSON.parse(s.resource('aws_ecs_task_definition', 'runtime_task').container_definitions as string) as { environment: { name: string; value: string }[]; secrets: { name: string; valueFrom: string }[]; portMappings: { containerPort: number; protocol: string }[] }[])[0];

    it('is an internet-facing NLB in the public subnets, with its own security group and cross-zone balancing', () => {
      const nlb = s.resource('aws_lb', 'pg-lb_nlb');
      expect(nlb).toMatchObject({
        load_balancer_type: 'network',
        internal: false,
        security_groups: [ref(s, 'aws_security_group', 'pg-lb_sg')],
        enable_cross_zone_load_balancing: true,
        enable_deletion_protection: true,
      });
      expect(nlb.subnets).toEqual([0, 1, 2].map((i) => ref(s, 'aws_subnet', `network_public-${i}`)));
    });

    it('listens on TCP 5432 and forwards TCP, so TLS (and its SNI) is never terminated at the NLB', () => {
      const listeners = Object.values(s.resources('aws_lb_listener')).filter((l) => l.load_balancer_arn === ref(s, 'aws_lb', 'pg-lb_nlb', 'arn'));
      expect(listeners).toEqual([
        expect.objectContaining({ port: 5432, protocol: 'TCP', default_action: [{ type: 'forward', target_group_arn: ref(s, 'aws_lb_target_group', 'pg-lb_tg', 'arn') }] }),
      ]);
      expect(listeners[0]).not.toHaveProperty('certificate_arn');
      expect(listeners[0]).not.toHaveProperty('ssl_policy');
    });

    it("targets the runtime tasks' front door on 6432 by IP, without client IP preservation or a PROXY header, and health-checks /health/ready on the HTTP port", () => {
      expect(s.resource('aws_lb_target_group', 'pg-lb_tg')).toMatchObject({
        port: 6432,
        protocol: 'TCP',
        target_type: 'ip',
        vpc_id: ref(s, 'aws_vpc', 'network_vpc'),
        preserve_client_ip: 'false',
        proxy_protocol_v2: false,
        health_check: { enabled: true, protocol: 'HTTP', port: '4000', path: '/health/ready', matcher: '200' },
      });
    });

    it("gives the runtime service a second load_balancer entry (the NLB's target group on container port 6432), maps that port and waits for the listener", () => {
      const svc = s.resource('aws_ecs_service', 'runtime_service');
      expect(svc.load_balancer).toEqual([
        { target_group_arn: ref(s, 'aws_lb_target_group', 'lb_runtime-tg', 'arn'), container_name: 'tenant-runtime', container_port: 4000 },
        { target_group_arn: ref(s, 'aws_lb_target_group', 'pg-lb_tg', 'arn'), container_name: 'tenant-runtime', container_port: 6432 },
      ]);
      expect(svc.depends_on).toEqual(expect.arrayContaining([s.ref('aws_lb_listener', 'pg-lb_listener'), s.ref('aws_lb_listener_rule', 'lb_runtime-rule')]));
      expect(runtimeContainer().portMappings).toEqual([{ containerPort: 4000, protocol: 'tcp' }, { containerPort: 6432, protocol: 'tcp' }]);
      // The other services are untouched: one target group each (control plane), none (worker).
      expect(s.resource('aws_ecs_service', 'control-plane_service').load_balancer).toHaveLength(1);
      expect(s.resource('aws_ecs_service', 'worker_service')).not.toHaveProperty('load_balancer');
    });

    it('lets the runtime tasks take 6432 from the NLB group alone, and the NLB reach the tasks only on 6432 and the health-check port', () => {
      const runtime = ref(s, 'aws_security_group', 'runtime-sg');
      const nlb = ref(s, 'aws_security_group', 'pg-lb_sg');
      const alb = ref(s, 'aws_security_group', 'lb_sg');
      const intoRuntime = ingressRules(s).filter((r) => r.group === runtime);
      expect(intoRuntime.filter((r) => r.from === 6432)).toEqual([expect.objectContaining({ to: 6432, sourceGroup: nlb, cidrs: [] })]);
      expect(intoRuntime.filter((r) => r.from === 4000).map((r) => r.sourceGroup).sort()).toEqual([alb, nlb].sort());
      expect(intoRuntime.map((r) => r.from).sort()).toEqual([4000, 4000, 6432]);
      const nlbEgress = Object.values(s.resources('aws_vpc_security_group_egress_rule')).filter((r) => r.security_group_id === nlb);
      expect(nlbEgress.map((r) => ({ to: r.referenced_security_group_id, from: r.from_port, toPort: r.to_port, cidr: r.cidr_ipv4 })).sort((a, b) => (a.from as number) - (b.from as number))).toEqual([
        { to: runtime, from: 4000, toPort: 4000, cidr: undefined },
        { to: runtime, from: 6432, toPort: 6432, cidr: undefined },
      ]);
      // The NLB's group admits 5432 only.
      expect(ingressRules(s).filter((r) => r.group === nlb).map((r) => [r.from, r.to])).toEqual([[5432, 5432]]);
    });

    it("injects the certificate and key from the pg-tls secret's cert/key fields, KMS-encrypted with the platform key, readable by the runtime's execution role only", () => {
      const secret = s.resource('aws_secretsmanager_secret', 'pg-tls-secret');
      expect(secret).toMatchObject({ name: 'silo/platform/pg-tls', kms_key_id: ref(s, 'aws_kms_key', 'platform-key', 'arn') });
      const arn = ref(s, 'aws_secretsmanager_secret', 'pg-tls-secret', 'arn');
      expect(runtimeContainer().secrets).toEqual(expect.arrayContaining([
        { name: 'RUNTIME_PG_TLS_CERT_PEM', valueFrom: `${arn}:cert::` },
        { name: 'RUNTIME_PG_TLS_KEY_PEM', valueFrom: `${arn}:key::` },
      ]));
      expect(list(rolePolicy(s, 'runtime_execution-policy').find((st) => st.Sid === 'InjectSecrets')?.Resource)).toContain(arn);
      for (const svc of ['control-plane', 'worker']) expect(JSON.stringify(rolePolicy(s, `${svc}_execution-policy`))).not.toContain(s.ref('aws_secretsmanager_secret', 'pg-tls-secret'));
      // The runtime's env names no certificate file: the PEM variables are the only source.
      const env = Object.fromEntries(runtimeContainer().environment.map((e) => [e.name, e.value]));
      expect(env).not.toHaveProperty('RUNTIME_PG_TLS_CERT');
      expect(env).not.toHaveProperty('RUNTIME_PG_TLS_KEY');
    });

    it('runs the front door on 6432 with SNI <slug>.<pg domain>, a name of its own (the tenant domain stays on the ALB)', () => {
      const env = Object.fromEntries(runtimeContainer().environment.map((e) => [e.name, e.value]));
      expect(env).toMatchObject({ RUNTIME_PG_PORT: '6432', RUNTIME_PG_BASE_DOMAIN: 'db.silo.example.com', RUNTIME_BASE_DOMAIN: 'tenants.silo.example.com', HOST: '0.0.0.0' });
      expect(env).not.toHaveProperty('RUNTIME_PG_ENABLED');
      expect(env).not.toHaveProperty('RUNTIME_PG_ALLOW_PLAINTEXT');
      expect(s.doc.output?.pg_nlb_dns_name.value).toBe(ref(s, 'aws_lb', 'pg-lb_nlb', 'dns_name'));
    });
  });

  describe('ECS services', () => {
    it('deploy with the circuit breaker rolling back, keeping 100% healthy and surging to 200%', () => {
      const services = Object.values(s.resources('aws_ecs_service'));
      expect(services.map((svc) => svc.name).sort()).toEqual(['silo-control-plane', 'silo-tenant-runtime', 'silo-worker']);
      for (const svc of services) {
        expect(svc).toMatchObject({
          launch_type: 'FARGATE',
          deployment_circuit_breaker: { enable: true, rollback: true },
          deployment_minimum_healthy_percent: 100,
          deployment_maximum_percent: 200,
          network_configuration: { assign_public_ip: false },
        });
      }
    });

    it('run the worker from the control-plane image with its own command and no port', () => {
      const [worker] = JSON.parse(s.resource('aws_ecs_task_definition', 'worker_task').container_definitions as string) as Block[];
      const [cp] = JSON.parse(s.resource('aws_ecs_task_definition', 'control-plane_task').container_definitions as string) as Block[];
      expect(worker.command).toEqual(['node', 'bin/silo.js', 'worker']);
      expect(worker.image).toBe(cp.image);
      expect(worker).not.toHaveProperty('portMappings');
    });

    it('autoscale the control plane and runtime on CPU and on ALB requests per target, the worker on CPU', () => {
      const policiesFor = (svc: string) =>
        Object.values(s.resources('aws_appautoscaling_policy'))
          .filter((p) => p.resource_id === ref(s, 'aws_appautoscaling_target', `${svc}_scaling-target`, 'resource_id'))
          .map((p) => (p.target_tracking_scaling_policy_configuration as { predefined_metric_specification: { predefined_metric_type: string } }).predefined_metric_specification.predefined_metric_type)
          .sort();
      expect(policiesFor('control-plane')).toEqual(['ALBRequestCountPerTarget', 'ECSServiceAverageCPUUtilization']);
      expect(policiesFor('runtime')).toEqual(['ALBRequestCountPerTarget', 'ECSServiceAverageCPUUtilization']);
      expect(policiesFor('worker')).toEqual(['ECSServiceAverageCPUUtilization']);
      expect(s.json).toHaveResourceWithProperties(AppautoscalingPolicy, {
        policy_type: 'TargetTrackingScaling',
        target_tracking_scaling_policy_configuration: expect.objectContaining({
          predefined_metric_specification: {
            predefined_metric_type: 'ALBRequestCountPerTarget',
            resource_label: `${ref(s, 'aws_lb', 'lb_alb', 'arn_suffix')}/${ref(s, 'aws_lb_target_group', 'lb_runtime-tg', 'arn_suffix')}`,
          },
        }),
      });
    });

    it('point the control plane and worker at the platform for tenant provisioning', () => {
      for (const svc of ['control-plane', 'worker']) {
        const [c] = JSON.parse(s.resource('aws_ecs_task_definition', `${svc}_task`).container_definitions as string) as { environment: { name: string; value: string }[] }[];
        const env = Object.fromEntries(c.environment.map((e) => [e.name, e.value]));
        expect(env).toMatchObject({
          PROVISIONING_DRIVER: 'aws',
          SECRET_STORE: 'aws',
          AWS_REGION: 'eu-west-1',
          SILO_TENANT_SECRET_PREFIX: 'silo/tenants/',
          TENANT_STATE_BUCKET: ref(s, 'aws_s3_bucket', 'tenant-state_bucket', 'bucket'),
          TENANT_STATE_LOCK_TABLE: ref(s, 'aws_dynamodb_table', 'tenant-state_lock-table', 'name'),
          JOB_WORKER_ENABLED: svc === 'worker' ? 'true' : 'false',
        });
        expect(env.AWS_TENANT_SUBNET_IDS).toBe('${local.tenant_subnet_ids_csv}');
        expect(env.AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS).toBe('${local.tenant_db_allowed_security_group_ids_csv}');
        expect(s.doc.locals?.tenant_subnet_ids_csv).toMatch(/^\$\{join\(",", \[aws_subnet\.network_private-0/);
        expect(s.doc.locals?.tenant_db_allowed_security_group_ids_csv).toContain(s.ref('aws_security_group', 'runtime-sg'));
      }
    });
  });

  describe('tenant state storage', () => {
    it('encrypts the bucket with KMS, versions it and blocks all public access', () => {
      const bucket = ref(s, 'aws_s3_bucket', 'tenant-state_bucket');
      expect(s.json).toHaveResourceWithProperties(S3BucketServerSideEncryptionConfigurationA, {
        bucket,
        rule: [expect.objectContaining({ apply_server_side_encryption_by_default: { sse_algorithm: 'aws:kms', kms_master_key_id: ref(s, 'aws_kms_key', 'tenant-state-key', 'arn') } })],
      });
      expect(s.json).toHaveResourceWithProperties(S3BucketVersioningA, { bucket, versioning_configuration: { status: 'Enabled' } });
      expect(s.json).toHaveResourceWithProperties(S3BucketPublicAccessBlock, {
        bucket,
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      });
    });

    it('refuses plain-HTTP access to the bucket', () => {
      const policy = JSON.parse(s.resource('aws_s3_bucket_policy', 'tenant-state_tls-only').policy as string) as { Statement: Statement[] };
      expect(policy.Statement).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    });

    it('has a lock table keyed on LockID', () => {
      expect(s.json).toHaveResourceWithProperties(DynamodbTable, {
        hash_key: 'LockID',
        attribute: [{ name: 'LockID', type: 'S' }],
        server_side_encryption: { enabled: true, kms_key_arn: ref(s, 'aws_kms_key', 'tenant-state-key', 'arn') },
        deletion_protection_enabled: true,
      });
    });
  });

  describe('secrets, images, logs and alarms', () => {
    it('creates the Stripe, master-key, admin-token, directory-key and front-door TLS secrets with no value in Terraform', () => {
      const names = Object.values(s.resources('aws_secretsmanager_secret')).map((x) => x.name).sort();
      expect(names).toEqual(['silo/platform/admin-token', 'silo/platform/directory-key', 'silo/platform/master-key', 'silo/platform/pg-tls', 'silo/platform/redis-auth-token', 'silo/platform/redis-url', 'silo/platform/stripe-webhook-secret']);
      const versioned = Object.values(s.resources('aws_secretsmanager_secret_version')).map((v) => v.secret_id);
      expect(versioned.sort()).toEqual([ref(s, 'aws_secretsmanager_secret', 'redis_auth-token'), ref(s, 'aws_secretsmanager_secret', 'redis_url')].sort());
    });

    it('scans images on push and makes tags immutable', () => {
      const repos = Object.values(s.resources('aws_ecr_repository'));
      expect(repos).toHaveLength(2);
      for (const r of repos) expect(r).toMatchObject({ image_tag_mutability: 'IMMUTABLE', image_scanning_configuration: { scan_on_push: true } });
    });

    it('alarms on ALB 5xx rate, runtime p99 latency and failed jobs (metric filter -> silo_jobs_failed_total)', () => {
      const alarms = Object.values(s.resources('aws_cloudwatch_metric_alarm'));
      expect(alarms.map((a) => a.alarm_name).sort()).toEqual(['silo-alb-5xx-rate', 'silo-jobs-failed', 'silo-runtime-p99-latency']);
      const p99 = alarms.find((a) => a.alarm_name === 'silo-runtime-p99-latency');
      expect(p99).toMatchObject({ metric_name: 'TargetResponseTime', extended_statistic: 'p99', dimensions: { TargetGroup: ref(s, 'aws_lb_target_group', 'lb_runtime-tg', 'arn_suffix') } });
      const rate = alarms.find((a) => a.alarm_name === 'silo-alb-5xx-rate');
      expect(rate?.metric_query).toContainEqual(expect.objectContaining({ expression: '100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests', return_data: true }));
      expect(s.resource('aws_cloudwatch_log_metric_filter', 'alarms_jobs-failed-filter')).toMatchObject({
        log_group_name: ref(s, 'aws_cloudwatch_log_group', 'worker_logs', 'name'),
        metric_transformation: { name: 'silo_jobs_failed_total', namespace: 'Silo' },
      });
      expect(alarms.find((a) => a.alarm_name === 'silo-jobs-failed')).toMatchObject({ metric_name: 'silo_jobs_failed_total', namespace: 'Silo' });
    });
  });

  describe('outputs', () => {
    it('exports every value the provisioning driver needs under the PlatformOutputs names', () => {
      const outputs = s.doc.output ?? {};
      for (const name of Object.values(PLATFORM_OUTPUT_NAMES)) expect(outputs).toHaveProperty(name);
      expect(outputs.private_subnet_ids.value).toHaveLength(3);
      expect(outputs.tenant_secret_prefix.value).toBe('silo/tenants/');
      expect(outputs.region.value).toBe('eu-west-1');
      expect(outputs.tenant_state_lock_table.value).toBe(ref(s, 'aws_dynamodb_table', 'tenant-state_lock-table', 'name'));
    });
  });
});

describe('PlatformStack variants', () => {
  it('manages certificate validation and alias records when a hosted zone is configured, and none otherwise', () => {
    const withZone = synthesize((app) => new PlatformStack(app, 'zoned', parseInfraConfig({ hostedZoneId: 'Z0123456789ABC', servicesPaused: true })));
    expect(withZone.json).toHaveResourceWithProperties(Route53Record, { zone_id: 'Z0123456789ABC', for_each: expect.any(String) });
    expect(withZone.json).toHaveResourceWithProperties(Route53Record, { zone_id: 'Z0123456789ABC', name: 'api.example.com', type: 'A' });
    // The wildcard alias answers api.<tenant domain> (the neon driver's endpoint) too: no record of its own is needed.
    expect(withZone.json).toHaveResourceWithProperties(Route53Record, { zone_id: 'Z0123456789ABC', name: '*.tenants.example.com', type: 'A' });
    // The front door's wildcard is a name of its own, aliased to the NLB (the tenant wildcard stays on the ALB).
    expect(withZone.resource('aws_route53_record', 'pg-lb_alias')).toEqual({
      zone_id: 'Z0123456789ABC',
      name: '*.db.example.com',
      type: 'A',
      alias: { name: ref(withZone, 'aws_lb', 'pg-lb_nlb', 'dns_name'), zone_id: ref(withZone, 'aws_lb', 'pg-lb_nlb', 'zone_id'), evaluate_target_health: true },
    });
    expect(withZone.json).toHaveResourceWithProperties(Route53Record, { name: '*.tenants.example.com', alias: expect.objectContaining({ name: ref(withZone, 'aws_lb', 'lb_alb', 'dns_name') }) });
    expect(withZone.resource('aws_acm_certificate_validation', 'lb_certificate-validation').validation_record_fqdns).toEqual(expect.stringContaining('fqdn'));
    // Paused: services exist with no tasks, autoscaling may not raise them.
    for (const svc of Object.values(withZone.resources('aws_ecs_service'))) expect(svc.desired_count).toBe(0);
    for (const t of Object.values(withZone.resources('aws_appautoscaling_target'))) expect(t.min_capacity).toBe(0);
    expect(Object.keys(withZone.doc.terraform?.backend as Block)).toEqual(['local']);
  });

  it('uses the S3 backend with a lock table when one is configured', () => {
    const remote = synthesize((app) => new PlatformStack(app, 'remote', parseInfraConfig({ stateBackend: { bucket: 'silo-platform-state-1', lockTable: 'silo-platform-state-lock' } })));
    expect(remote.doc.terraform?.backend).toEqual({ s3: expect.objectContaining({ bucket: 'silo-platform-state-1', dynamodb_table: 'silo-platform-state-lock', key: 'platform/terraform.tfstate', encrypt: true }) });
    expect(remote.resources('aws_route53_record')).toEqual({});
  });
});
