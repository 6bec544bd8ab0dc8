import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Pool } from 'pg';
import { createProvisioningDriver } from '../provisioning/create-provisioning-driver';
import { loadControlPlaneConfig } from '../control-plane/config';
import { ErrorCode } from '../common/error-codes';
import { AwsSecretStore } from '../provisioning/secrets/aws-secret-store';
import { LocalSecretStore } from '../provisioning/secrets/local-secret-store';

const AWS_ENV = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', ADMIN_TOKEN: 'x'.repeat(40), PROVISIONING_DRIVER: 'aws', SECRET_STORE: 'aws', AWS_REGION: 'eu-west-1',
  TENANT_STATE_BUCKET: 'b', TENANT_STATE_LOCK_TABLE: 't', AWS_TENANT_VPC_ID: 'vpc-1', AWS_TENANT_SUBNET_IDS: 'subnet-a,subnet-b', AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS: 'sg-1',
};

// No AWS call: building the driver and its clients contacts nothing.
describe('createProvisioningDriver (PROVISIONING_DRIVER=aws)', () => {
  const awsStore = () => new AwsSecretStore(new SecretsManagerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } }));

  it('builds the AWS driver with a CloudWatch client, so it has the storage capabilities the sweep needs', async () => {
    const driver = await createProvisioningDriver(loadControlPlaneConfig(AWS_ENV), awsStore());
    expect(driver.name).toBe('aws');
    expect(typeof driver.measureStorage).toBe('function');
    expect(driver.templateInfo()).toBeNull();
    await driver.close();
  });

  it('refuses a secret store that cannot rotate RDS-managed master secrets (the local one)', async () => {
    const pool = new Pool({ connectionString: AWS_ENV.DATABASE_URL });
    try {
      const local = new LocalSecretStore(pool, Buffer.alloc(32, 1));
      await expect(createProvisioningDriver(loadControlPlaneConfig(AWS_ENV), local)).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID, message: 'PROVISIONING_DRIVER=aws needs SECRET_STORE=aws' });
    } finally {
      await pool.end();
    }
  });

  it('refuses a connection budget no PostgreSQL server can grant, naming the tier and the numbers', async () => {
    const config = loadControlPlaneConfig({ ...AWS_ENV, RUNTIME_REPLICAS: '10000', TENANT_CONNECTION_RESERVE: '5' });
    const err = await createProvisioningDriver(config, awsStore()).then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    // enterprise: connectionLimit 50 × 10000 replicas + 5 = 500005 > 262143; starter (10) and pro (25) fit.
    expect((err as Error).message).toContain('tier enterprise: connectionLimit 50 × RUNTIME_REPLICAS 10000 + TENANT_CONNECTION_RESERVE 5 = 500005');
    expect((err as Error).message).not.toContain('tier starter');
  });
});

describe('RUNTIME_REPLICAS and TENANT_CONNECTION_RESERVE (control plane config)', () => {
  const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', ADMIN_TOKEN: 'x'.repeat(40), SILO_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') };

  it('default to one replica and a reserve of two', () => {
    expect(loadControlPlaneConfig(base)).toMatchObject({ RUNTIME_REPLICAS: 1, TENANT_CONNECTION_RESERVE: 2 });
  });

  it.each([
    [{ RUNTIME_REPLICAS: '0' }, 'RUNTIME_REPLICAS: must be at least 1'],
    [{ RUNTIME_REPLICAS: '2.5' }, 'RUNTIME_REPLICAS: must be a whole number'],
    [{ RUNTIME_REPLICAS: 'three' }, 'RUNTIME_REPLICAS: '],
    [{ TENANT_CONNECTION_RESERVE: '0' }, 'TENANT_CONNECTION_RESERVE: must be at least 1: silo migrate needs a connection of its own'],
    [{ TENANT_CONNECTION_RESERVE: '-1' }, 'TENANT_CONNECTION_RESERVE: must be at least 1'],
  ])('refuse %j at start-up', (env, message) => {
    expect(() => loadControlPlaneConfig({ ...base, ...env })).toThrow(message);
  });
});
