import { childEnv, TERRAFORM_ENV } from './child-env';

describe('childEnv', () => {
  const parent = {
    PATH: '/usr/bin', HOME: '/root', LC_ALL: 'C.UTF-8',
    ADMIN_TOKEN: 'admin-secret', SILO_MASTER_KEY: 'mk', SILO_DIRECTORY_KEY: 'dk', STRIPE_WEBHOOK_SECRET: 'whsec_x',
    DATABASE_URL: 'postgres://u:p@h/db', TENANT_DATABASE_URL: 'postgres://u:p@h/t', REDIS_URL: 'redis://:pw@h', PGPASSWORD: 'control-db-password',
    AWS_REGION: 'eu-west-1', AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/creds', TF_PLUGIN_CACHE_DIR: '/cache', HTTPS_PROXY: 'http://proxy',
  };
  const secrets = ['ADMIN_TOKEN', 'SILO_MASTER_KEY', 'SILO_DIRECTORY_KEY', 'STRIPE_WEBHOOK_SECRET', 'DATABASE_URL', 'TENANT_DATABASE_URL', 'REDIS_URL', 'PGPASSWORD'];

  it('passes the OS basics and nothing of Silo\'s own secrets or URLs', () => {
    const env = childEnv(parent);
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/root', LC_ALL: 'C.UTF-8' });
  });

  it('gives terraform its AWS credentials, region, proxy and TF_ settings, still none of Silo\'s secrets', () => {
    const env = childEnv(parent, TERRAFORM_ENV, { TF_IN_AUTOMATION: '1' });
    expect(env).toMatchObject({ AWS_REGION: 'eu-west-1', AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/creds', TF_PLUGIN_CACHE_DIR: '/cache', HTTPS_PROXY: 'http://proxy', TF_IN_AUTOMATION: '1' });
    for (const k of secrets) expect(env).not.toHaveProperty(k);
  });

  it('lets explicit values win over inherited ones (pg_dump gets the tenant server\'s PGPASSWORD, not the control database\'s)', () => {
    expect(childEnv(parent, {}, { PGPASSWORD: 'tenant-server', PATH: '/opt/bin' })).toMatchObject({ PGPASSWORD: 'tenant-server', PATH: '/opt/bin' });
  });
});
