import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import { EcrLifecyclePolicy } from '@cdktf/provider-aws/lib/ecr-lifecycle-policy';
import { EcrRepository } from '@cdktf/provider-aws/lib/ecr-repository';
import { EcsCluster } from '@cdktf/provider-aws/lib/ecs-cluster';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule';
import { Fn, LocalBackend, S3Backend, TerraformLocal, TerraformOutput, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { CLUSTER_TERMINATOR_ROLE } from '../provisioning/aws/cluster-terminator-role';
import { InfraConfig } from './config';
import { CONTROL_DB_NAME, CONTROL_DB_USER, ControlDatabase } from './constructs/control-database';
import { FargateService, InjectedSecret } from './constructs/fargate-service';
import { Network } from './constructs/network';
import { PgLoadBalancer } from './constructs/pg-load-balancer';
import { PlatformAlarms } from './constructs/platform-alarms';
import { PublicLoadBalancer } from './constructs/public-load-balancer';
import { RedisCache } from './constructs/redis-cache';
import { StateStore } from './constructs/state-store';
import { AccountScope, controlPlaneTaskPolicy, runtimeTaskPolicy, workerTaskPolicy } from './iam-policies';
import { PLATFORM_OUTPUT_NAMES, PlatformOutputs } from './platform-outputs';

export const CONTROL_PLANE_PORT = 3000;
export const RUNTIME_PORT = 4000;
/** The runtime's internal listener for /metrics (never behind the ALB). */
export const RUNTIME_METRICS_PORT = 9464;
/** The runtime's PostgreSQL front door on the tasks (RUNTIME_PG_PORT). */
export const RUNTIME_PG_PORT = 6432;
/**
 * What clients dial on the NLB: PostgreSQL's own port, so `host=<slug>.<pg domain>` works with
 * every client's default and egress rules written for PostgreSQL.
 */
export const PG_FRONT_DOOR_PORT = 5432;
export const HEALTH_READY_PATH = '/health/ready';
export const WORKER_COMMAND = ['node', 'bin/silo.js', 'worker'];
/** Where the control-plane image installs terraform (see infra/docker/control-plane.Dockerfile). */
export const TERRAFORM_BIN = '/usr/local/bin/terraform';

/** Tags on every platform resource. Tenant resources carry `managed-by = silo` instead, which the worker may touch. */
export const platformTags = (name: string) => ({ project: 'silo', 'managed-by': 'silo-platform', environment: name });

/** Configures the stack's backend: S3 + DynamoDB lock when configured, else a local file inside cdktf.out. */
export function configureBackend(stack: TerraformStack, config: InfraConfig, stateName: string): void {
  if (config.stateBackend) {
    new S3Backend(stack, {
      bucket: config.stateBackend.bucket,
      key: stateName === 'platform' ? config.stateBackend.key : `${stateName}/terraform.tfstate`,
      region: config.region,
      dynamodbTable: config.stateBackend.lockTable,
      encrypt: true,
    });
  } else {
    new LocalBackend(stack, { path: 'terraform.tfstate' });
  }
}

/**
 * The whole Silo platform in one account and region: network, ECS services behind an ALB (and
 * the runtime's PostgreSQL front door behind an NLB),
 * Redis, the control database, tenant-state storage, secrets, images, alarms, and the outputs
 * the provisioning driver needs.
 */
export class PlatformStack extends TerraformStack {
  /** Terraform expressions for the values tenant stacks need (also emitted as outputs). */
  readonly outputs: PlatformOutputs;

  constructor(scope: Construct, id: string, config: InfraConfig) {
    super(scope, id);
    const { name, region } = config;
    new AwsProvider(this, 'aws', { region, defaultTags: [{ tags: platformTags(name) }] });
    configureBackend(this, config, 'platform');

    const accountId = new DataAwsCallerIdentity(this, 'account').accountId;
    const scopeIds: AccountScope = { region, accountId };
    const platformSecretPrefix = `${name}/platform/`;

    // Keys. The platform key encrypts the control DB, Redis, platform secrets and the alarm topic.
    const platformKey = new KmsKey(this, 'platform-key', {
      description: `${name}: control database, Redis, platform secrets`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'AccountAdministersThroughIam',
            Effect: 'Allow',
            Principal: { AWS: `arn:aws:iam::${accountId}:root` },
            Action: 'kms:*',
            Resource: '*',
          },
          {
            Sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Resource: '*',
            Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
          },
        ],
      }),
    });
    new KmsAlias(this, 'platform-key-alias', { name: `alias/${name}/platform`, targetKeyId: platformKey.keyId });
    const stateKey = new KmsKey(this, 'tenant-state-key', {
      description: `${name}: tenant Terraform state`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
    });
    new KmsAlias(this, 'tenant-state-key-alias', { name: `alias/${name}/tenant-state`, targetKeyId: stateKey.keyId });

    const network = new Network(this, 'network', {
      name,
      cidr: config.vpcCidr,
      availabilityZones: config.availabilityZones,
      natGateways: config.natGateways,
    });
    const vpcId = network.vpc.id;
    const privateSubnetIds = network.privateSubnets.map((s) => s.id);

    // Security groups. Ingress is only ever from another group, except the ALB's 80/443 and the NLB's 5432.
    const group = (id: string, description: string) =>
      new SecurityGroup(this, `${id}-sg`, { name: `${name}-${id}`, description, vpcId, tags: { Name: `${name}-${id}` } });
    const controlPlaneSg = group('control-plane', 'Control plane tasks');
    const workerSg = group('worker', 'Job worker tasks');
    const runtimeSg = group('runtime', 'Tenant runtime tasks');
    const controlDbSg = group('control-db', 'Control database: from Silo services only');
    const redisSg = group('redis', 'Redis: from Silo services only');
    const allow = (id: string, to: SecurityGroup, from: SecurityGroup, port: number, description: string) =>
      new VpcSecurityGroupIngressRule(this, id, {
        securityGroupId: to.id,
        referencedSecurityGroupId: from.id,
        ipProtocol: 'tcp',
        fromPort: port,
        toPort: port,
        description,
      });
    const services = [
      ['control-plane', controlPlaneSg],
      ['worker', workerSg],
      ['runtime', runtimeSg],
    ] as const;
    for (const [svc, sg] of services) {
      allow(`control-db-from-${svc}`, controlDbSg, sg, 5432, `Postgres from ${svc}`);
      allow(`redis-from-${svc}`, redisSg, sg, 6379, `Redis from ${svc}`);
      // Outbound: AWS APIs, Stripe, tenant databases (through NAT or within the VPC).
      new VpcSecurityGroupEgressRule(this, `${svc}-egress`, {
        securityGroupId: sg.id,
        ipProtocol: '-1',
        cidrIpv4: '0.0.0.0/0',
        description: 'All outbound',
      });
    }

    const cluster = new EcsCluster(this, 'cluster', {
      name,
      setting: [{ name: 'containerInsights', value: 'enabled' }],
    });

    const repository = (id: string) => {
      const repo = new EcrRepository(this, `${id}-repo`, {
        name: `${name}/${id}`,
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfiguration: [{ encryptionType: 'AES256' }],
        forceDelete: false,
      });
      new EcrLifecyclePolicy(this, `${id}-repo-lifecycle`, {
        repository: repo.name,
        policy: JSON.stringify({
          rules: [
            { rulePriority: 1, description: 'Drop untagged layers after 7 days', selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 7 }, action: { type: 'expire' } },
            { rulePriority: 2, description: 'Keep the last 100 images', selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 100 }, action: { type: 'expire' } },
          ],
        }),
      });
      return repo;
    };
    const controlPlaneRepo = repository('control-plane');
    const runtimeRepo = repository('tenant-runtime');

    const tenantState = new StateStore(this, 'tenant-state', {
      bucketName: config.tenantStateBucketName ?? `${name}-tenant-state-${accountId}`,
      lockTableName: `${name}-tenant-state-lock`,
      kmsKeyArn: stateKey.arn,
    });

    // Values are set out of band (docs/deploy.md): never in code or Terraform state.
    const platformSecret = (id: string, description: string) =>
      new SecretsmanagerSecret(this, `${id}-secret`, {
        name: `${platformSecretPrefix}${id}`,
        description,
        kmsKeyId: platformKey.arn,
        recoveryWindowInDays: 30,
      });
    const stripeSecret = platformSecret('stripe-webhook-secret', 'Stripe webhook signing secret(s), comma-separated (STRIPE_WEBHOOK_SECRET)');
    const masterKeySecret = platformSecret('master-key', '32-byte key, base64 or hex (SILO_MASTER_KEY)');
    const adminTokenSecret = platformSecret('admin-token', 'Control-plane admin bearer token, 24+ chars (ADMIN_TOKEN)');
    const directoryKeySecret = platformSecret('directory-key', 'HMAC key signing tenant directory and API-key records in Redis, 32+ chars (SILO_DIRECTORY_KEY)');
    const pgTlsSecret = platformSecret('pg-tls', `JSON {"cert": PEM chain, "key": PEM key} for *.${config.pgDomain}: the runtime's PostgreSQL front door (RUNTIME_PG_TLS_CERT_PEM / _KEY_PEM)`);

    const controlDb = new ControlDatabase(this, 'control-db', {
      name,
      ...config.controlDb,
      subnetIds: privateSubnetIds,
      securityGroupId: controlDbSg.id,
      kmsKeyArn: platformKey.arn,
    });
    const redis = new RedisCache(this, 'redis', {
      name,
      ...config.redis,
      subnetIds: privateSubnetIds,
      securityGroupId: redisSg.id,
      kmsKeyArn: platformKey.arn,
      secretPrefix: platformSecretPrefix,
    });

    const apiHost = `api.${config.domain}`;
    const tenantHosts = `*.${config.tenantDomain}`;
    const lb = new PublicLoadBalancer(this, 'lb', {
      name,
      vpcId,
      publicSubnetIds: network.publicSubnets.map((s) => s.id),
      certificateNames: [tenantHosts, apiHost],
      hostedZoneId: config.hostedZoneId,
      deletionProtection: config.albDeletionProtection,
    });
    for (const [svc, sg, port] of [['control-plane', controlPlaneSg, CONTROL_PLANE_PORT], ['runtime', runtimeSg, RUNTIME_PORT]] as const) {
      allow(`${svc}-from-alb`, sg, lb.securityGroup, port, `HTTP from the ALB`);
      new VpcSecurityGroupEgressRule(this, `alb-to-${svc}`, {
        securityGroupId: lb.securityGroup.id,
        referencedSecurityGroupId: sg.id,
        ipProtocol: 'tcp',
        fromPort: port,
        toPort: port,
        description: `To ${svc} tasks`,
      });
    }
    // The PostgreSQL front door: TCP through an NLB, TLS terminated by the runtime (it reads SNI).
    const pgHosts = `*.${config.pgDomain}`;
    const pgLb = new PgLoadBalancer(this, 'pg-lb', {
      name,
      vpcId,
      publicSubnetIds: network.publicSubnets.map((s) => s.id),
      listenerPort: PG_FRONT_DOOR_PORT,
      targetPort: RUNTIME_PG_PORT,
      // The readiness the ALB checks, on the HTTP port: both load balancers agree on which tasks serve,
      // and the internal /metrics port stays closed to every load balancer.
      healthCheckPort: RUNTIME_PORT,
      healthCheckPath: HEALTH_READY_PATH,
      host: pgHosts,
      hostedZoneId: config.hostedZoneId,
      deletionProtection: config.albDeletionProtection,
    });
    for (const [port, what] of [[RUNTIME_PG_PORT, 'PostgreSQL front door'], [RUNTIME_PORT, 'health check']] as const) {
      allow(`runtime-from-pg-nlb-${port}`, runtimeSg, pgLb.securityGroup, port, `${what} from the NLB`);
      new VpcSecurityGroupEgressRule(this, `pg-nlb-to-runtime-${port}`, {
        securityGroupId: pgLb.securityGroup.id,
        referencedSecurityGroupId: runtimeSg.id,
        ipProtocol: 'tcp',
        fromPort: port,
        toPort: port,
        description: `To runtime tasks (${what})`,
      });
    }

    const controlPlaneRoute = lb.route('control-plane', { port: CONTROL_PLANE_PORT, healthCheckPath: HEALTH_READY_PATH, hosts: [apiHost], priority: 10 });
    const runtimeRoute = lb.route('runtime', { port: RUNTIME_PORT, healthCheckPath: HEALTH_READY_PATH, hosts: [tenantHosts], priority: 20 });

    const tenantDbAllowedSecurityGroupIds = [runtimeSg.id, workerSg.id, controlPlaneSg.id];
    this.outputs = {
      region,
      vpcId,
      privateSubnetIds,
      runtimeSecurityGroupId: runtimeSg.id,
      controlPlaneSecurityGroupId: controlPlaneSg.id,
      workerSecurityGroupId: workerSg.id,
      tenantDbAllowedSecurityGroupIds,
      tenantStateBucket: tenantState.bucket.bucket,
      tenantStateLockTable: tenantState.lockTable.name,
      tenantSecretPrefix: config.tenantSecretPrefix,
    };

    // Environment shared by every service. The DB password is injected as PGPASSWORD (node-postgres
    // reads it when DATABASE_URL has none), straight from the RDS-managed secret.
    const dbSecret: InjectedSecret = { arn: controlDb.cluster.masterUserSecret.get(0).secretArn, jsonKey: 'password'};
    const redisUrl: InjectedSecret = { arn: redis.urlSecret.arn};
    // Every service that reads or writes Redis records signs or verifies them with this key.
    const directoryKey: InjectedSecret = { arn: directoryKeySecret.arn };
    // One token for both fields, so the execution role lists the secret once.
    const pgTlsArn = pgTlsSecret.arn;
    const common = {
      NODE_ENV: 'production',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'info',
      AWS_REGION: region,
      SECRET_STORE: 'aws',
      SILO_TENANT_SECRET_PREFIX: config.tenantSecretPrefix,
      DATABASE_URL: `postgres://${CONTROL_DB_USER}@${controlDb.cluster.endpoint}:5432/${CONTROL_DB_NAME}?sslmode=verify-full`,
    };
    // Locals keep `join(",", ...)` out of the container-definitions JSON string.
    const csv = (id: string, values: string[]) => new TerraformLocal(this, id, Fn.join(',', values)).asString;
    const controlEnv = {
      ...common,
      CONTROL_PLANE_PORT: String(CONTROL_PLANE_PORT),
      PROVISIONING_DRIVER: 'aws',
      DEFAULT_REGION: region,
      AWS_TENANT_VPC_ID: vpcId,
      AWS_TENANT_SUBNET_IDS: csv('tenant_subnet_ids_csv', privateSubnetIds),
      AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS: csv('tenant_db_allowed_security_group_ids_csv', tenantDbAllowedSecurityGroupIds),
      TENANT_STATE_BUCKET: tenantState.bucket.bucket,
      TENANT_STATE_LOCK_TABLE: tenantState.lockTable.name,
      AURORA_ENGINE_VERSION: config.tenantAuroraEngineVersion,
      TERRAFORM_BIN,
    };
    const controlSecrets: Record<string, InjectedSecret> = {
      PGPASSWORD: dbSecret,
      REDIS_URL: redisUrl,
      SILO_DIRECTORY_KEY: directoryKey,
      ADMIN_TOKEN: { arn: adminTokenSecret.arn},
      SILO_MASTER_KEY: { arn: masterKeySecret.arn},
      STRIPE_WEBHOOK_SECRET: { arn: stripeSecret.arn},
    };
    const serviceBase = {
      prefix: name,
      clusterArn: cluster.arn,
      clusterName: cluster.name,
      scope: scopeIds,
      subnetIds: privateSubnetIds,
      paused: config.servicesPaused,
      logRetentionDays: config.logRetentionDays,
      secretsKmsKeyArns: [platformKey.arn],
    };
    const controlPlaneImage = `${controlPlaneRepo.repositoryUrl}:${config.imageTag}`;

    const workerPolicy = workerTaskPolicy({
      ...scopeIds,
      tenantSecretPrefix: config.tenantSecretPrefix,
      tenantResourcePrefix: config.tenantResourcePrefix,
      tenantKmsAliasPrefix: config.tenantKmsAliasPrefix,
      vpcArn: network.vpc.arn,
      stateBucketArn: tenantState.bucket.arn,
      lockTableArn: tenantState.lockTable.arn,
      stateKeyArn: stateKey.arn,
      platformKeyArn: platformKey.arn,
      controlDbClusterArn: controlDb.cluster.arn,
    });
    // Control plane: API only (JOB_WORKER_ENABLED=false); jobs run in the worker service.
    const controlPlane = new FargateService(this, 'control-plane', {
      ...serviceBase,
      ...config.controlPlane,
      service: 'control-plane',
      image: controlPlaneImage,
      repositoryArn: controlPlaneRepo.arn,
      port: CONTROL_PLANE_PORT,
      environment: { ...controlEnv, JOB_WORKER_ENABLED: 'false' },
      secrets: controlSecrets,
      securityGroup: controlPlaneSg,
      // The API only enqueues jobs; it may read tenant secrets (connection info), not create or delete anything.
      taskPolicy: controlPlaneTaskPolicy(scopeIds, config.tenantSecretPrefix, config.tenantResourcePrefix),
      loadBalancer: {
        targetGroup: controlPlaneRoute.targetGroup,
        listenerRule: controlPlaneRoute.rule,
        albArnSuffix: lb.alb.arnSuffix,
        requestsPerTarget: config.controlPlane.requestsPerTarget,
      },
    });
    const worker = new FargateService(this, 'worker', {
      ...serviceBase,
      ...config.worker,
      service: 'worker',
      image: controlPlaneImage,
      repositoryArn: controlPlaneRepo.arn,
      command: WORKER_COMMAND,
      environment: { ...controlEnv, JOB_WORKER_ENABLED: 'true' },
      secrets: controlSecrets,
      securityGroup: workerSg,
      taskPolicy: workerPolicy,
    });
    const runtime = new FargateService(this, 'runtime', {
      ...serviceBase,
      ...config.runtime,
      service: 'tenant-runtime',
      image: `${runtimeRepo.repositoryUrl}:${config.imageTag}`,
      repositoryArn: runtimeRepo.arn,
      port: RUNTIME_PORT,
      environment: {
        ...common,
        RUNTIME_PORT: String(RUNTIME_PORT),
        // <slug>.<tenant domain> names a tenant; api.<tenant domain> (also under the wildcard host rule,
        // certificate and alias) is the neon driver's default endpoint for those connection hosts.
        RUNTIME_BASE_DOMAIN: config.tenantDomain,
        // The front door (behind the NLB): SNI <slug>.<pg domain> names the tenant.
        RUNTIME_PG_PORT: String(RUNTIME_PG_PORT),
        RUNTIME_PG_BASE_DOMAIN: config.pgDomain,
        // /metrics is served only here; no security group rule opens this port (add one for your scraper).
        RUNTIME_METRICS_HOST: '0.0.0.0',
        RUNTIME_METRICS_PORT: String(RUNTIME_METRICS_PORT),
        // Backends that ignore a cancel are ended as silo_terminator (the AWS driver creates it per cluster) with an IAM token.
        RUNTIME_TERMINATOR_SECRET_REF: `iam:${CLUSTER_TERMINATOR_ROLE}`,
      },
      secrets: {
        PGPASSWORD: dbSecret,
        REDIS_URL: redisUrl,
        SILO_DIRECTORY_KEY: directoryKey,
        RUNTIME_PG_TLS_CERT_PEM: { arn: pgTlsArn, jsonKey: 'cert' },
        RUNTIME_PG_TLS_KEY_PEM: { arn: pgTlsArn, jsonKey: 'key' },
      },
      securityGroup: runtimeSg,
      taskPolicy: runtimeTaskPolicy(scopeIds, config.tenantSecretPrefix, config.tenantResourcePrefix),
      loadBalancer: {
        targetGroup: runtimeRoute.targetGroup,
        listenerRule: runtimeRoute.rule,
        albArnSuffix: lb.alb.arnSuffix,
        requestsPerTarget: config.runtime.requestsPerTarget,
      },
      additionalTargets: [{ targetGroup: pgLb.targetGroup, containerPort: RUNTIME_PG_PORT, listener: pgLb.listener }],
    });

    const alarms = new PlatformAlarms(this, 'alarms', {
      name,
      kmsKeyArn: platformKey.arn,
      email: config.alarms.email,
      albArnSuffix: lb.alb.arnSuffix,
      runtimeTargetGroupArnSuffix: runtimeRoute.targetGroup.arnSuffix,
      workerLogGroupName: worker.logGroup.name,
      alb5xxPercent: config.alarms.alb5xxPercent,
      runtimeP99Seconds: config.alarms.runtimeP99Seconds,
      jobFailures: config.alarms.jobFailures,
      jobFailedLogPattern: config.alarms.jobFailedLogPattern,
    });

    for (const [field, outputName] of Object.entries(PLATFORM_OUTPUT_NAMES) as [keyof PlatformOutputs, string][]) {
      new TerraformOutput(this, outputName, { value: this.outputs[field], description: `PlatformOutputs.${field}` });
    }
    const extra: Record<string, { value: unknown; description: string; sensitive?: boolean }> = {
      alb_dns_name: { value: lb.alb.dnsName, description: 'Point api.<domain> and *.<tenant domain> here (CNAME/alias)' },
      pg_nlb_dns_name: { value: pgLb.nlb.dnsName, description: `Point ${pgHosts} here (CNAME/alias): the PostgreSQL front door on port ${PG_FRONT_DOOR_PORT}` },
      certificate_validation_records: {
        value: lb.certificate.domainValidationOptions,
        description: 'DNS records ACM needs when no hosted zone is configured',
      },
      control_plane_repository_url: { value: controlPlaneRepo.repositoryUrl, description: 'ECR repository for the control-plane/worker image' },
      tenant_runtime_repository_url: { value: runtimeRepo.repositoryUrl, description: 'ECR repository for the tenant-runtime image' },
      ecs_cluster_name: { value: cluster.name, description: 'ECS cluster' },
      control_plane_service_name: { value: controlPlane.service.name, description: 'ECS service' },
      worker_service_name: { value: worker.service.name, description: 'ECS service' },
      runtime_service_name: { value: runtime.service.name, description: 'ECS service' },
      control_db_endpoint: { value: controlDb.cluster.endpoint, description: 'Control database writer endpoint' },
      control_db_master_secret_arn: { value: dbSecret.arn, description: 'RDS-managed master credentials secret' },
      platform_secret_ids: {
        value: { stripe_webhook_secret: stripeSecret.name, master_key: masterKeySecret.name, admin_token: adminTokenSecret.name, directory_key: directoryKeySecret.name, pg_tls: pgTlsSecret.name },
        description: 'Secrets whose values are set out of band',
      },
      alarm_topic_arn: { value: alarms.topic.arn, description: 'SNS topic for alarms' },
    };
    for (const [id, o] of Object.entries(extra)) new TerraformOutput(this, id, o);
  }
}
