import { createProvisioningDriver } from '../control-plane/bootstrap';
import { loadControlPlaneConfig } from '../control-plane/config';

// No AWS call: building the driver and its clients contacts nothing.
describe('createProvisioningDriver (PROVISIONING_DRIVER=aws)', () => {
  it('builds the AWS driver with a CloudWatch client, so it has the storage capabilities the sweep needs', async () => {
    const config = loadControlPlaneConfig({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', ADMIN_TOKEN: 'x'.repeat(40), PROVISIONING_DRIVER: 'aws', SECRET_STORE: 'aws', AWS_REGION: 'eu-west-1',
      TENANT_STATE_BUCKET: 'b', TENANT_STATE_LOCK_TABLE: 't', AWS_TENANT_VPC_ID: 'vpc-1', AWS_TENANT_SUBNET_IDS: 'subnet-a,subnet-b', AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS: 'sg-1',
    });
    const store = { kind: 'aws', rotateManaged: async () => undefined } as never;
    const driver = await createProvisioningDriver(config, store);
    expect(driver.name).toBe('aws');
    expect(typeof driver.measureStorage).toBe('function');
    expect(typeof driver.setWriteFreeze).toBe('function');
  });
});
