import { randomBytes, randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { createProvisioningDriver } from '../provisioning/create-provisioning-driver';
import { loadControlPlaneConfig } from '../control-plane/config';
import type { LocalProvisioningDriver } from '../provisioning/local/local-provisioning.driver';
import { tenantDbName } from '../provisioning/local/pg-names';
import { resolveTemplateDatabase, templateDatabaseName } from '../provisioning/local/template-name';
import { LocalSecretStore } from '../provisioning/secrets/local-secret-store';
import { testDatabaseUrl, withDatabase } from './support/env';
import { adminQuery, testDatabaseName } from './support/test-db';

describe('the tenant template database name on a real server', () => {
  // A stand-in for the legacy shared name: the real `silo_tenant_template` may belong to an installation on this server.
  const legacyName = testDatabaseName('legacytpl');
  const instanceId = testDatabaseName('inst');
  const derived = templateDatabaseName(instanceId);
  const role = tenantDbName(randomUUID());
  const resolve = () => resolveTemplateDatabase(testDatabaseUrl(), { instanceId, legacyName });

  afterAll(async () => {
    for (const db of [legacyName, derived]) await adminQuery(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await adminQuery(`DROP ROLE IF EXISTS "${role}"`);
  });

  it('moves an installation without tenants to its own name, keeps one with tenants on the legacy template, and prefers its own once it exists', async () => {
    expect(await resolve()).toEqual({ name: derived, source: 'instance' });
    await adminQuery(`CREATE DATABASE "${legacyName}"`);
    expect(await resolve()).toEqual({ name: derived, source: 'instance' });
    // A tenant of this installation, cloned from the legacy template by an older Silo (its role carries the marker).
    await adminQuery(`CREATE ROLE "${role}" NOLOGIN`);
    await adminQuery(`COMMENT ON ROLE "${role}" IS 'silo-instance:${instanceId}'`);
    expect(await resolve()).toEqual({ name: legacyName, source: 'legacy' });
    // Another installation's tenants do not count.
    expect(await resolveTemplateDatabase(testDatabaseUrl(), { instanceId: `${instanceId}_other`, legacyName })).toMatchObject({ source: 'instance' });
    await adminQuery(`CREATE DATABASE "${derived}"`);
    expect(await resolve()).toEqual({ name: derived, source: 'instance' });
    expect(await resolveTemplateDatabase(testDatabaseUrl(), { instanceId, legacyName, configured: 'explicit_tpl' })).toEqual({ name: 'explicit_tpl', source: 'configured' });
  });

  it('gives the local driver a per-installation default (from SILO_INSTANCE_ID, else the control database name) and keeps an explicit setting', async () => {
    const base = { DATABASE_URL: withDatabase(testDatabaseUrl(), 'silo_ctl_example'), ADMIN_TOKEN: randomBytes(16).toString('hex'), SILO_MASTER_KEY: randomBytes(32).toString('base64') };
    const pool = new Pool({ connectionString: testDatabaseUrl(), max: 1 });
    const secrets = new LocalSecretStore(pool, randomBytes(32));
    const driverFor = async (env: Record<string, string>) => {
      const d = (await createProvisioningDriver(loadControlPlaneConfig({ ...base, TENANT_DATABASE_URL: testDatabaseUrl(), ...env }), secrets)) as LocalProvisioningDriver;
      const name = d.templateDatabase;
      await d.close();
      return name;
    };
    try {
      expect(await driverFor({})).toBe(templateDatabaseName('silo_ctl_example'));
      expect(await driverFor({ SILO_INSTANCE_ID: 'blue' })).toBe(templateDatabaseName('blue'));
      expect(await driverFor({ TENANT_TEMPLATE_DATABASE: 'explicit_tpl' })).toBe('explicit_tpl');
    } finally {
      await pool.end();
    }
  });
});
