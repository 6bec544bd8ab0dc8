import { Pool } from 'pg';
import { decodeKey } from '../common/config-schema';
import type { KvStore } from '../common/kv-store';
import { MemoryKvStore } from '../common/memory-kv-store';
import { RedisKvStore } from '../common/redis-kv-store';
import { LocalProvisioningDriver } from '../provisioning/local/local-provisioning.driver';
import { TenantCertIssuer } from '../provisioning/local/tenant-certs';
import { resolveTemplateDatabase } from '../provisioning/local/template-name';
import type { ProvisioningDriver } from '../provisioning/provisioning-driver';
import { LocalSecretStore } from '../provisioning/secrets/local-secret-store';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import type { ControlPlaneConfig } from './config';

/** Adapter factories picked by config: shared by main.ts, scripts/start.ts, the CLI and tests. */
export function createKvStore(redisUrl: string | undefined, prefix = ''): KvStore {
  return redisUrl ? new RedisKvStore(redisUrl, prefix) : new MemoryKvStore(prefix);
}

type StoreConfig = Pick<ControlPlaneConfig, 'SECRET_STORE' | 'SILO_MASTER_KEY' | 'AWS_REGION' | 'SILO_TENANT_SECRET_PREFIX'>;

/** `controlPool` holds the local store's ciphertexts (the control database). */
export async function createSecretStore(config: StoreConfig, controlPool: Pool): Promise<SecretStore> {
  if (config.SECRET_STORE === 'aws') {
    const { SecretsManagerClient } = lazy<typeof import('@aws-sdk/client-secrets-manager')>('@aws-sdk/client-secrets-manager');
    const { AwsSecretStore } = lazy<typeof import('../provisioning/secrets/aws-secret-store')>('../provisioning/secrets/aws-secret-store');
    return new AwsSecretStore(new SecretsManagerClient({ region: config.AWS_REGION }), { prefix: config.SILO_TENANT_SECRET_PREFIX });
  }
  const key = config.SILO_MASTER_KEY ? decodeKey(config.SILO_MASTER_KEY) : null;
  if (!key) throw new Error('SILO_MASTER_KEY is required for the local secret store');
  return new LocalSecretStore(controlPool, key);
}

export interface DriverExtras {
  /** Brings the tenant template database to the latest tenant schema (the migration runner). */
  prepareTemplate?: (templateUrl: string) => Promise<void>;
}

export async function createProvisioningDriver(config: ControlPlaneConfig, secretStore: SecretStore, extras: DriverExtras = {}): Promise<ProvisioningDriver> {
  if (config.PROVISIONING_DRIVER === 'aws') {
    // Loaded lazily: cdktf and the provider bindings are not needed by the local default.
    const { AwsProvisioningDriver } = lazy<typeof import('../provisioning/aws/aws-provisioning.driver')>('../provisioning/aws/aws-provisioning.driver');
    const { TerraformRunner } = lazy<typeof import('../provisioning/aws/terraform-runner')>('../provisioning/aws/terraform-runner');
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
