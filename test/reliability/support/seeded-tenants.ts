import { randomUUID } from 'node:crypto';
import { decodeKey } from '../../../common/config-schema';
import { LocalProvisioningDriver } from '../../../provisioning/local/local-provisioning.driver';
import { LocalSecretStore } from '../../../provisioning/secrets/local-secret-store';
import { seedTenants, SeededTenant } from '../../../scripts/bench/seed-tenants';
import { testDatabaseUrl } from '../../support/env';
import type { ReliabilityStack } from './stack';

export type { SeededTenant };

/**
 * Many active tenants with an API key each, on a stack, without the control plane: the local driver
 * provisions them `concurrency` at a time (as the runtime benchmark does) with this stack's template,
 * master key and marker, so `stack.cleanup()` drops every database and role, even after a failure.
 * `prepareTemplate` gets an admin URL of the (new) template database: create the tenant schema there,
 * owned by the template owner role (`SET ROLE silo_template_owner`), and every tenant gets a copy it owns.
 */
export async function seedStackTenants(stack: ReliabilityStack, o: {
  count: number;
  slugPrefix: string;
  concurrency?: number;
  prepareTemplate?: (templateUrl: string) => Promise<void>;
}): Promise<{ tenants: SeededTenant[]; seconds: number }> {
  const started = Date.now();
  const key = decodeKey(stack.masterKey);
  if (!key) throw new Error('stack master key is not 32 bytes');
  const secrets = new LocalSecretStore(stack.control, key);
  const driver = new LocalProvisioningDriver({
    adminUrl: testDatabaseUrl(),
    templateDatabase: stack.templateDb,
    secretStore: secrets,
    secretPrefix: 'silo/tenants/',
    protectDatabases: [stack.db.name],
    instanceId: stack.db.name,
    prepareTemplate: o.prepareTemplate,
  });
  try {
    await driver.ensureReady();
    const width = String(o.count).length;
    const specs = Array.from({ length: o.count }, (_, i) => ({ id: randomUUID(), slug: `${o.slugPrefix}-${String(i + 1).padStart(width, '0')}` }));
    const tenants = await seedTenants({ driver, secrets, control: stack.control, specs, concurrency: o.concurrency ?? 6 });
    return { tenants, seconds: (Date.now() - started) / 1000 };
  } finally {
    await driver.close().catch(() => undefined);
  }
}
