import type { Pool } from 'pg';
import { decodeKey } from '../../common/config-schema';
import { LocalSecretStore } from './local-secret-store';
import type { SecretStore } from './secret-store';

/** The settings that pick and configure a secret store (the control plane's and the runtime's configs both have them). */
export interface SecretStoreConfig {
  SECRET_STORE: 'local' | 'aws';
  SILO_MASTER_KEY?: string;
  AWS_REGION?: string;
  SILO_TENANT_SECRET_PREFIX: string;
}

/**
 * The secret store config picks: AWS Secrets Manager, or the local store whose ciphertexts live in
 * the control database (`controlPool`). Shared by the control plane, the runtime and the CLI; the
 * AWS SDK is loaded only when it is used.
 */
export async function createSecretStore(config: SecretStoreConfig, controlPool: Pool): Promise<SecretStore> {
  if (config.SECRET_STORE === 'aws') {
    const { SecretsManagerClient } = lazy<typeof import('@aws-sdk/client-secrets-manager')>('@aws-sdk/client-secrets-manager');
    const { AwsSecretStore } = lazy<typeof import('./aws-secret-store')>('./aws-secret-store');
    return new AwsSecretStore(new SecretsManagerClient({ region: config.AWS_REGION }), { prefix: config.SILO_TENANT_SECRET_PREFIX });
  }
  const key = config.SILO_MASTER_KEY ? decodeKey(config.SILO_MASTER_KEY) : null;
  if (!key) throw new Error('SILO_MASTER_KEY is required for the local secret store');
  return new LocalSecretStore(controlPool, key);
}

function lazy<T>(id: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(id) as T;
}
