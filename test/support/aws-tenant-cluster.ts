import { randomBytes } from 'node:crypto';
import { adminQuery, createEmptyDatabase, dropDatabase } from './test-db';
import { testDatabaseUrl } from './env';

/**
 * The local test server standing in for an Aurora tenant cluster: a throwaway database for the
 * fake terraform's `output -json` to point at, the master login (the test server's superuser,
 * `postgres`), Aurora's `rds_iam` group (created NOLOGIN when absent) and a unique application
 * role name (roles are server-wide; a fixed `tenant_app` would collide between runs).
 */
export interface LocalTenantCluster {
  host: string;
  port: number;
  database: string;
  master: { username: string; password: string };
  appRole: string;
  /** For the fake terraform (pass with FAKE_TERRAFORM_ENV). */
  terraformEnv: Record<string, string>;
  /** Drops the database, the application role and rds_iam if this helper created it and no one else is in it. */
  cleanup(): Promise<void>;
}

export async function localTenantCluster(label = 'awscluster'): Promise<LocalTenantCluster> {
  const url = new URL(testDatabaseUrl());
  const db = await createEmptyDatabase(label);
  const appRole = `tenant_app_t${process.pid}_${randomBytes(4).toString('hex')}`;
  let createdRdsIam = false;
  if ((await adminQuery(`SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'`)).length === 0) {
    try {
      await adminQuery('CREATE ROLE rds_iam NOLOGIN');
      createdRdsIam = true;
    } catch (err) {
      if (!['42710', '23505'].includes((err as { code?: string }).code ?? '')) throw err;
    }
  }
  const host = url.hostname;
  const port = Number(url.port || 5432);
  return {
    host, port, database: db.name, appRole,
    master: { username: decodeURIComponent(url.username || 'postgres'), password: decodeURIComponent(url.password) },
    terraformEnv: { FAKE_TF_ENDPOINT: host, FAKE_TF_PORT: String(port), FAKE_TF_DATABASE: db.name },
    async cleanup() {
      await dropDatabase(db.name);
      await adminQuery(`DROP ROLE IF EXISTS "${appRole}"`);
      if (createdRdsIam) {
        const members = await adminQuery(`SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE r.rolname = 'rds_iam'`);
        if (members.length === 0) await adminQuery('DROP ROLE IF EXISTS rds_iam');
      }
    },
  };
}
