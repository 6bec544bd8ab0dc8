import { Client } from 'pg';
import { LocalProvisioningDriver } from '../provisioning/local/local-provisioning.driver';
import type { TenantConnectionInfo } from '../provisioning/provisioning-driver';
import { DEFAULT_TIERS, TierSettings } from '../provisioning/tiers';
import { testDatabaseUrl } from './support/env';
import { localProvisioningKit, LocalProvisioningKit, memoryDriverContext } from './support/provisioning';
import { adminQuery, createTestDatabase, TestDatabase } from './support/test-db';

/**
 * The tenant role's CONNECTION LIMIT holds every runtime replica's pool plus the reserve for
 * `silo migrate` (provisioning/connection-budget.ts), on provision, on a tier change (a
 * reconfigure runs provision again) and after a rotation. Real Postgres: pg_roles.rolconnlimit,
 * and the server refusing the connection past it.
 */
describe('tenant role connection limit = per-replica cap × RUNTIME_REPLICAS + TENANT_CONNECTION_RESERVE (local driver, real Postgres)', () => {
  let db: TestDatabase;
  let kit: LocalProvisioningKit;
  const drivers: LocalProvisioningDriver[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('connbudget');
    kit = localProvisioningKit(db.url, db.name);
  });
  afterAll(async () => {
    for (const d of drivers) await d.close();
    await kit.cleanup();
    await db.drop();
  });

  const driverWith = (runtimeReplicas: number, reserve: number) => {
    const d = new LocalProvisioningDriver({
      adminUrl: testDatabaseUrl(), templateDatabase: kit.templateDatabase, secretStore: kit.secrets, secretPrefix: 'silo/tenants/',
      protectDatabases: [db.name], connectionBudget: { runtimeReplicas, reserve },
    });
    drivers.push(d);
    return d;
  };
  const connLimit = async (role: string) => (await adminQuery<{ rolconnlimit: number }>('SELECT rolconnlimit FROM pg_roles WHERE rolname = $1', [role]))[0].rolconnlimit;
  const connect = async (conn: TenantConnectionInfo) => {
    const { password } = await kit.secrets.get(conn.secretRef);
    const c = new Client({ host: conn.host, port: conn.port, user: conn.username, password, database: conn.database, connectionTimeoutMillis: 3_000 });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };

  it('is set on provision, follows a tier change, and survives a rotation', async () => {
    const driver = driverWith(3, 2);
    const ctx = memoryDriverContext(undefined, DEFAULT_TIERS.starter);
    kit.track(ctx.tenant.id);
    const conn = await driver.provision(ctx);
    expect(await connLimit(conn.username)).toBe(DEFAULT_TIERS.starter.connectionLimit * 3 + 2); // 32

    // A tier change is a reconfigure job: provision again as a new operation (fresh steps), on the new tier.
    const reconfigure = memoryDriverContext(ctx.tenant.id, DEFAULT_TIERS.pro);
    await driver.provision(reconfigure);
    expect(await connLimit(conn.username)).toBe(DEFAULT_TIERS.pro.connectionLimit * 3 + 2); // 77

    // A rotation converges the role again (and a tenant's own ALTER ROLE cannot have changed the limit: no CREATEROLE).
    await driver.rotateCredentials(memoryDriverContext(ctx.tenant.id, DEFAULT_TIERS.pro), conn);
    expect(await connLimit(conn.username)).toBe(DEFAULT_TIERS.pro.connectionLimit * 3 + 2);
  });

  it('lets in exactly every replica\'s pool plus the reserve, and refuses the next connection', async () => {
    const tiny: TierSettings = { ...DEFAULT_TIERS.starter, name: 'tiny', connectionLimit: 2 };
    const driver = driverWith(2, 1); // 2 × 2 + 1 = 5
    const ctx = memoryDriverContext(undefined, tiny);
    kit.track(ctx.tenant.id);
    const conn = await driver.provision(ctx);
    const open: Client[] = [];
    try {
      for (let i = 0; i < 5; i++) open.push(await connect(conn));
      await expect(connect(conn)).rejects.toMatchObject({ code: '53300' }); // too many connections for role
    } finally {
      for (const c of open) await c.end().catch(() => undefined);
    }
  });
});
