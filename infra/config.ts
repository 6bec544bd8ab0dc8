import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * Platform configuration: the one place infra reads `process.env`.
 *
 * Precedence: built-in defaults < JSON file named by `SILO_INFRA_CONFIG` < individual env variables.
 * With nothing set, the defaults synthesize a complete stack for `example.com` in eu-west-1, which
 * is what tests and `npm run synth` use.
 */

const serviceSizing = (d: { cpu: number; memory: number; min: number; max: number }) =>
  z
    .object({
      /** Fargate task size: CPU units (256 = 0.25 vCPU) and MiB of memory. */
      cpu: z.number().int().refine((v) => [256, 512, 1024, 2048, 4096, 8192, 16384].includes(v), 'must be a Fargate CPU size'),
      memory: z.number().int().min(512),
      minTasks: z.number().int().min(1),
      maxTasks: z.number().int().min(1),
      /** Target average CPU utilisation (%) for the CPU target-tracking policy. */
      cpuTargetPercent: z.number().min(10).max(90).default(60),
      /** Target ALB requests per task per minute (ignored for the worker, which has no load balancer). */
      requestsPerTarget: z.number().int().positive().default(1000),
    })
    .default({ cpu: d.cpu, memory: d.memory, minTasks: d.min, maxTasks: d.max, cpuTargetPercent: 60, requestsPerTarget: 1000 })
    .refine((s) => s.maxTasks >= s.minTasks, { message: 'maxTasks must be >= minTasks', path: ['maxTasks'] });

const hostname = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a lower-case DNS name like example.com');

const schema = z
  .object({
    /** Prefix for every platform resource name; also the `environment` tag. */
    name: z.string().regex(/^[a-z][a-z0-9-]{1,20}$/, 'lower-case letters, digits and dashes, 2-21 chars').default('silo'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region like eu-west-1').default('eu-west-1'),
    /** Three availability zones; defaults to `<region>a/b/c`. */
    availabilityZones: z.array(z.string()).length(3).optional(),
    /** Apex for the control-plane API: `api.<domain>`. */
    domain: hostname.default('example.com'),
    /** Tenants are served at `<slug>.<tenantDomain>`; defaults to `tenants.<domain>`. */
    tenantDomain: hostname.optional(),
    /**
     * The PostgreSQL front door: `<slug>.<pgDomain>:5432`, through the NLB. Defaults to `db.<domain>`.
     * A name of its own because `*.<tenantDomain>` resolves to the HTTP load balancer.
     */
    pgDomain: hostname.optional(),
    /** Route 53 hosted zone for both names: when set, certificate validation and alias records are managed here. */
    hostedZoneId: z.string().regex(/^Z[A-Z0-9]{1,32}$/, 'must be a Route 53 zone id').optional(),
    vpcCidr: z.string().regex(/^\d{1,3}\.\d{1,3}\.0\.0\/16$/, 'must be a /16 like 10.40.0.0/16').default('10.40.0.0/16'),
    /** 1 (cheaper, one AZ's NAT is a single point of failure for egress) or 3 (one per AZ). */
    natGateways: z.union([z.literal(1), z.literal(3)]).default(3),
    /** Tag pushed to ECR for both images (ECR tags are immutable: use the git SHA). */
    imageTag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'must be a valid image tag').default('0.1.0'),
    /** First deploy: create everything but run no tasks until secrets are set. */
    servicesPaused: z.boolean().default(false),
    controlPlane: serviceSizing({ cpu: 512, memory: 1024, min: 2, max: 6 }),
    worker: serviceSizing({ cpu: 1024, memory: 2048, min: 1, max: 4 }),
    runtime: serviceSizing({ cpu: 1024, memory: 2048, min: 2, max: 20 }),
    controlDb: z
      .object({
        engineVersion: z.string().regex(/^\d+\.\d+$/).default('16.6'),
        minAcu: z.number().min(0).max(256).default(0.5),
        maxAcu: z.number().min(1).max(256).default(8),
        /** Writer + readers. Two gives a failover target in another AZ. */
        instances: z.number().int().min(1).max(15).default(2),
        backupRetentionDays: z.number().int().min(1).max(35).default(14),
      })
      .default({ engineVersion: '16.6', minAcu: 0.5, maxAcu: 8, instances: 2, backupRetentionDays: 14 }),
    redis: z
      .object({
        nodeType: z.string().default('cache.t4g.small'),
        engineVersion: z.string().default('7.1'),
        /** Primary + replicas; two or more enables automatic failover. */
        nodes: z.number().int().min(1).max(6).default(2),
      })
      .default({ nodeType: 'cache.t4g.small', engineVersion: '7.1', nodes: 2 }),
    /** Secrets Manager path the runtime may read and the worker may write. Must end with `/`. */
    tenantSecretPrefix: z.string().regex(/^[A-Za-z0-9/_+=.@-]+\/$/, 'must end with "/"').default('silo/tenants/'),
    /** Name prefix of tenant RDS resources the worker may manage (TenantStack: `silo-tenant-<id>`). */
    tenantResourcePrefix: z.string().regex(/^[a-z][a-z0-9-]*-$/, 'lower-case, must end with "-"').default('silo-tenant-'),
    /** KMS alias name prefix of tenant keys, without `alias/` (TenantStack: `alias/silo/tenant-<id>`). */
    tenantKmsAliasPrefix: z.string().regex(/^[A-Za-z0-9/_-]+$/).default('silo/tenant-'),
    /** Aurora engine version tenant stacks use (passed to the control plane as AURORA_ENGINE_VERSION). */
    tenantAuroraEngineVersion: z.string().regex(/^\d+\.\d+$/).default('16.6'),
    /** Tenant state bucket name; defaults to `<name>-tenant-state-<account id>`. */
    tenantStateBucketName: z.string().regex(/^[a-z0-9][a-z0-9.-]{2,62}$/).optional(),
    logRetentionDays: z.number().int().positive().default(30),
    alarms: z
      .object({
        email: z.email().optional(),
        /** Percentage of ALB requests answered 5xx (ELB + targets). */
        alb5xxPercent: z.number().positive().default(5),
        /** Runtime p99 TargetResponseTime, seconds. */
        runtimeP99Seconds: z.number().positive().default(1),
        /** Failed jobs in 5 minutes before alarming. */
        jobFailures: z.number().int().positive().default(1),
        /** CloudWatch Logs filter pattern that marks one failed job in the worker's JSON logs. */
        jobFailedLogPattern: z.string().default('{ $.event = "job.failed" }'),
      })
      .default({ alb5xxPercent: 5, runtimeP99Seconds: 1, jobFailures: 1, jobFailedLogPattern: '{ $.event = "job.failed" }' }),
    /** ALB deletion protection; turn off only to tear an environment down. */
    albDeletionProtection: z.boolean().default(true),
    /** S3 backend for the platform's own state (created by the `<name>-bootstrap` stack). Unset: local state file. */
    stateBackend: z
      .object({ bucket: z.string().min(3), lockTable: z.string().min(3), key: z.string().default('platform/terraform.tfstate') })
      .optional(),
  })
  .strict();

export type InfraConfigInput = z.input<typeof schema>;
type Parsed = z.output<typeof schema>;

/** Fully resolved platform configuration. */
export type InfraConfig = Omit<Parsed, 'availabilityZones' | 'tenantDomain' | 'pgDomain'> & {
  availabilityZones: [string, string, string];
  tenantDomain: string;
  pgDomain: string;
};

export class InfraConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid infra configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'InfraConfigError';
  }
}

/** Parses an already merged object (JSON file + env overrides). Throws InfraConfigError listing every problem. */
export function parseInfraConfig(input: unknown): InfraConfig {
  const result = schema.safeParse(input ?? {});
  if (!result.success) {
    throw new InfraConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  const c = result.data;
  const azs = c.availabilityZones ?? [`${c.region}a`, `${c.region}b`, `${c.region}c`];
  const tenantDomain = c.tenantDomain ?? `tenants.${c.domain}`;
  if (tenantDomain === c.domain || `api.${c.domain}`.endsWith(`.${tenantDomain}`)) {
    throw new InfraConfigError([`tenantDomain: must not contain api.${c.domain} (host rules would overlap)`]);
  }
  const pgDomain = c.pgDomain ?? `db.${c.domain}`;
  // `*.<pgDomain>` must not shadow or compete with the HTTP names: under the tenant domain, a label
  // with records below it no longer matches `*.<tenantDomain>` (that tenant's HTTP name would vanish).
  const within = (name: string, parent: string) => name === parent || name.endsWith(`.${parent}`);
  if (within(pgDomain, tenantDomain) || within(tenantDomain, pgDomain)) {
    throw new InfraConfigError([`pgDomain: ${pgDomain} must not be, contain or sit under the tenant domain ${tenantDomain}`]);
  }
  if (within(pgDomain, `api.${c.domain}`) || within(`api.${c.domain}`, pgDomain)) {
    throw new InfraConfigError([`pgDomain: ${pgDomain} must not be, contain or sit under api.${c.domain}`]);
  }
  if (`${c.name}-control`.startsWith(c.tenantResourcePrefix)) {
    throw new InfraConfigError([`tenantResourcePrefix: must not match the control database (${c.name}-control)`]);
  }
  const platformSecrets = `${c.name}/platform/`;
  if (platformSecrets.startsWith(c.tenantSecretPrefix) || c.tenantSecretPrefix.startsWith(platformSecrets)) {
    throw new InfraConfigError([`tenantSecretPrefix: must not overlap the platform's own secrets (${platformSecrets})`]);
  }
  return { ...c, availabilityZones: azs as [string, string, string], tenantDomain, pgDomain };
}

const ENV_OVERRIDES: Record<string, (v: string, into: Record<string, unknown>) => void> = {
  SILO_INFRA_NAME: (v, o) => (o.name = v),
  AWS_REGION: (v, o) => (o.region = v),
  SILO_DOMAIN: (v, o) => (o.domain = v),
  SILO_TENANT_DOMAIN: (v, o) => (o.tenantDomain = v),
  SILO_PG_DOMAIN: (v, o) => (o.pgDomain = v),
  SILO_HOSTED_ZONE_ID: (v, o) => (o.hostedZoneId = v),
  SILO_IMAGE_TAG: (v, o) => (o.imageTag = v),
  SILO_SERVICES_PAUSED: (v, o) => (o.servicesPaused = v === 'true' || v === '1'),
  SILO_TENANT_SECRET_PREFIX: (v, o) => (o.tenantSecretPrefix = v),
  SILO_ALARM_EMAIL: (v, o) => (o.alarms = { ...(o.alarms as object | undefined), email: v }),
  SILO_NAT_GATEWAYS: (v, o) => (o.natGateways = Number(v)),
  SILO_ALB_DELETION_PROTECTION: (v, o) => (o.albDeletionProtection = !(v === 'false' || v === '0')),
};

/**
 * Reads `SILO_INFRA_CONFIG` (a JSON file) and the overrides above from `env`.
 * `SILO_INFRA_STATE_BUCKET` + `SILO_INFRA_STATE_LOCK_TABLE` switch the platform stack to the S3 backend.
 */
export function loadInfraConfig(
  env: Record<string, string | undefined> = process.env,
  readFile: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): InfraConfig {
  let merged: Record<string, unknown> = {};
  const file = env.SILO_INFRA_CONFIG;
  if (file) {
    try {
      const parsed: unknown = JSON.parse(readFile(file));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      merged = { ...(parsed as Record<string, unknown>) };
    } catch (e) {
      throw new InfraConfigError([`SILO_INFRA_CONFIG (${file}): ${(e as Error).message}`]);
    }
  }
  for (const [key, apply] of Object.entries(ENV_OVERRIDES)) {
    const v = env[key];
    if (v !== undefined && v !== '') apply(v, merged);
  }
  const bucket = env.SILO_INFRA_STATE_BUCKET;
  const lockTable = env.SILO_INFRA_STATE_LOCK_TABLE;
  if (bucket || lockTable) {
    merged.stateBackend = { ...(merged.stateBackend as object | undefined), bucket, lockTable };
  }
  return parseInfraConfig(merged);
}
