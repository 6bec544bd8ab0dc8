import { LocalProvisioningDriver } from '../provisioning/local/local-provisioning.driver';
import { TenantCertIssuer } from '../provisioning/local/tenant-certs';
import { resolveTemplateDatabase } from '../provisioning/local/template-name';
import type { ProvisioningDriver } from '../provisioning/provisioning-driver';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import type { ControlPlaneConfig } from './config';

export { createKvStore } from '../common/create-kv-store';
export { createSecretStore } from '../provisioning/secrets/create-secret-store';

export interface DriverExtras {
  /** Brings the tenant template database to the latest tenant schema (the migration runner). */
  prepareTemplate?: (templateUrl: string) => Promise<void>;
}

export async function createProvisioningDriver(config: ControlPlaneConfig, secretStore: SecretStore, extras: DriverExtras = {}): Promise<ProvisioningDriver> {
  if (config.PROVISIONING_DRIVER === 'aws') {
    // Loaded lazily: cdktf and the provider bindings are not needed by the local default.
    const { AwsProvisioningDriver } = lazy<typeof import('../provisioning/aws/aws-provisioning.driver')>('../provisioning/aws/aws-provisioning.driver');
    const { TerraformRunner } = lazy<typeof import('../provisioning/aws/terraform-runner')>('../provisioning/aws/terraform-runner');
    const { CloudWatchClient } = lazy<typeof import('@aws-sdk/client-cloudwatch')>('@aws-sdk/client-cloudwatch');
    const rotator = secretStore as unknown as { rotateManaged?: (ref: string) => Promise<void> };
    if (typeof rotator.rotateManaged !== 'function') throw new Error('PROVISIONING_DRIVER=aws needs SECRET_STORE=aws');
    return new AwsProvisioningDriver({
      runner: new TerraformRunner({ binary: config.TERRAFORM_BIN, timeoutsMs: { apply: config.TERRAFORM_TIMEOUT_SECONDS * 1000, destroy: config.TERRAFORM_TIMEOUT_SECONDS * 1000 } }),
      secrets: secretStore as SecretStore & { rotateManaged: (ref: string) => Promise<void> },
      network: { vpcId: config.AWS_TENANT_VPC_ID ?? '', subnetIds: config.AWS_TENANT_SUBNET_IDS, allowedSecurityGroupIds: config.AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS },
      backend: { bucket: config.TENANT_STATE_BUCKET ?? '', lockTable: config.TENANT_STATE_LOCK_TABLE ?? '', region: config.AWS_REGION ?? '', keyPrefix: 'tenants' },
      outdir: config.CDKTF_OUTDIR,
      engineVersion: config.AURORA_ENGINE_VERSION,
      secretPrefix: config.SILO_TENANT_SECRET_PREFIX,
      secretRecoveryWindowDays: config.SECRET_RECOVERY_WINDOW_DAYS,
      // Storage quotas: each tenant cluster's VolumeBytesUsed, in the configured region.
      cloudWatch: new CloudWatchClient({ region: config.AWS_REGION }),
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
  });
}

/** CommonJS require for modules only some configurations need (keeps the local default's start-up lean). */
function lazy<T>(id: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(id) as T;
}
