import { ErrorCode } from '../common/error-codes';
import { SiloError } from '../common/errors';
import { ConnectionBudget, connectionBudgetProblems } from './connection-budget';
import { LocalProvisioningDriver } from './local/local-provisioning.driver';
import { TenantCertIssuer } from './local/tenant-certs';
import { resolveTemplateDatabase } from './local/template-name';
import type { ProvisioningDriver } from './provisioning-driver';
import type { SecretStore } from './secrets/secret-store';
import { loadTierCatalogue, TierFileError } from './tier-catalogue';

/** The settings that pick and configure a provisioning driver (the control plane's and the CLI's configs have them). */
export interface ProvisioningConfig {
  PROVISIONING_DRIVER: 'local' | 'aws';
  DATABASE_URL: string;
  TENANT_DATABASE_URL?: string;
  TENANT_DATABASE_PUBLIC_HOST?: string;
  TENANT_DATABASE_CA_DIR?: string;
  TENANT_TEMPLATE_DATABASE?: string;
  SILO_INSTANCE_ID?: string;
  SILO_TENANT_SECRET_PREFIX: string;
  SECRET_RECOVERY_WINDOW_DAYS: number;
  PG_DUMP_BIN: string;
  TIERS_FILE?: string;
  DEFAULT_TIER: string;
  /** Runtime replicas serving tenants at once, and the connections kept for migrations (connection-budget.ts). */
  RUNTIME_REPLICAS: number;
  TENANT_CONNECTION_RESERVE: number;
  AWS_REGION?: string;
  TERRAFORM_BIN: string;
  TERRAFORM_TIMEOUT_SECONDS: number;
  CDKTF_OUTDIR: string;
  TENANT_STATE_BUCKET?: string;
  TENANT_STATE_LOCK_TABLE?: string;
  AWS_TENANT_VPC_ID?: string;
  AWS_TENANT_SUBNET_IDS: string[];
  AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS: string[];
  AURORA_ENGINE_VERSION: string;
}

export interface DriverExtras {
  /** Brings the tenant template database to the latest tenant schema (the migration runner). */
  prepareTemplate?: (templateUrl: string) => Promise<void>;
}

/**
 * The driver config picks. The only place that knows the concrete drivers and secret stores: the
 * AWS driver needs the AWS secret store (it rotates RDS-managed master secrets), checked here.
 * Refuses (CONFIG_INVALID) a connection budget that makes no sense for the tier catalogue.
 */
export async function createProvisioningDriver(config: ProvisioningConfig, secretStore: SecretStore, extras: DriverExtras = {}): Promise<ProvisioningDriver> {
  const connectionBudget = checkedConnectionBudget(config);
  if (config.PROVISIONING_DRIVER === 'aws') {
    // Loaded lazily: cdktf, the provider bindings and the AWS SDK are not needed by the local default.
    const { AwsProvisioningDriver } = lazy<typeof import('./aws/aws-provisioning.driver')>('./aws/aws-provisioning.driver');
    const { TerraformRunner } = lazy<typeof import('./aws/terraform-runner')>('./aws/terraform-runner');
    const { AwsSecretStore } = lazy<typeof import('./secrets/aws-secret-store')>('./secrets/aws-secret-store');
    const { CloudWatchClient } = lazy<typeof import('@aws-sdk/client-cloudwatch')>('@aws-sdk/client-cloudwatch');
    const { RDSClient } = lazy<typeof import('@aws-sdk/client-rds')>('@aws-sdk/client-rds');
    if (!(secretStore instanceof AwsSecretStore)) throw new SiloError(ErrorCode.CONFIG_INVALID, 'PROVISIONING_DRIVER=aws needs SECRET_STORE=aws', 500);
    return new AwsProvisioningDriver({
      runner: new TerraformRunner({ binary: config.TERRAFORM_BIN, timeoutsMs: { apply: config.TERRAFORM_TIMEOUT_SECONDS * 1000, destroy: config.TERRAFORM_TIMEOUT_SECONDS * 1000 } }),
      secrets: secretStore,
      network: { vpcId: config.AWS_TENANT_VPC_ID ?? '', subnetIds: config.AWS_TENANT_SUBNET_IDS, allowedSecurityGroupIds: config.AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS },
      backend: { bucket: config.TENANT_STATE_BUCKET ?? '', lockTable: config.TENANT_STATE_LOCK_TABLE ?? '', region: config.AWS_REGION ?? '', keyPrefix: 'tenants' },
      outdir: config.CDKTF_OUTDIR,
      engineVersion: config.AURORA_ENGINE_VERSION,
      secretPrefix: config.SILO_TENANT_SECRET_PREFIX,
      secretRecoveryWindowDays: config.SECRET_RECOVERY_WINDOW_DAYS,
      connectionBudget,
      // Storage quotas: each tenant cluster's VolumeBytesUsed; the reconciler's inventory: the tenant clusters. Both in the configured region.
      cloudWatch: new CloudWatchClient({ region: config.AWS_REGION }),
      rds: new RDSClient({ region: config.AWS_REGION }),
    });
  }
  const controlDb = new URL(config.DATABASE_URL).pathname.slice(1);
  const adminUrl = config.TENANT_DATABASE_URL ?? config.DATABASE_URL;
  const instanceId = config.SILO_INSTANCE_ID ?? controlDb;
  // One template per installation unless configured; an older installation keeps the shared name it already uses.
  const template = await resolveTemplateDatabase(adminUrl, { configured: config.TENANT_TEMPLATE_DATABASE, instanceId });
  return new LocalProvisioningDriver({
    adminUrl,
    publicHost: config.TENANT_DATABASE_PUBLIC_HOST,
    templateDatabase: template.name,
    secretStore,
    secretPrefix: config.SILO_TENANT_SECRET_PREFIX,
    protectDatabases: [controlDb],
    pgDumpBin: config.PG_DUMP_BIN,
    secretRecoveryWindowDays: config.SECRET_RECOVERY_WINDOW_DAYS,
    prepareTemplate: extras.prepareTemplate,
    instanceId,
    tenantCerts: config.TENANT_DATABASE_CA_DIR ? new TenantCertIssuer(config.TENANT_DATABASE_CA_DIR) : undefined,
    connectionBudget,
  });
}

/** RUNTIME_REPLICAS and TENANT_CONNECTION_RESERVE, checked against every tier of the catalogue. */
function checkedConnectionBudget(config: ProvisioningConfig): ConnectionBudget {
  const budget = { runtimeReplicas: config.RUNTIME_REPLICAS, reserve: config.TENANT_CONNECTION_RESERVE };
  let tiers;
  try {
    tiers = loadTierCatalogue(config.TIERS_FILE, config.DEFAULT_TIER).tiers;
  } catch (err) {
    if (err instanceof TierFileError) throw new SiloError(ErrorCode.CONFIG_INVALID, err.message, 500);
    throw err;
  }
  const problems = connectionBudgetProblems(budget, tiers);
  if (problems.length) throw new SiloError(ErrorCode.CONFIG_INVALID, `Invalid connection budget:\n  - ${problems.join('\n  - ')}`, 500, { problems });
  return budget;
}

/** CommonJS require for modules only some configurations need (keeps the local default's start-up lean). */
function lazy<T>(id: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(id) as T;
}
