import { randomBytes, randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { LocalProvisioningDriver } from '../../provisioning/local/local-provisioning.driver';
import { tenantDbName } from '../../provisioning/local/pg-names';
import { DriverContext } from '../../provisioning/provisioning-driver';
import { LocalSecretStore } from '../../provisioning/secrets/local-secret-store';
import { DEFAULT_TIERS } from '../../provisioning/tiers';
import { testDatabaseUrl } from './env';
import { adminQuery, testDatabaseName } from './test-db';

export interface LocalProvisioningKit {
  pool: Pool;
  secrets: LocalSecretStore;
  driver: LocalProvisioningDriver;
  masterKey: Buffer;
  templateDatabase: string;
  /** Drops every tenant database and role created through `track`, then the template. */
  cleanup(): Promise<void>;
  track(tenantId: string): void;
}

/** A real local driver on the test server, with its own template database and secret table (in `controlDbUrl`). */
export function localProvisioningKit(controlDbUrl: string, controlDbName: string, opts: { prepareTemplate?: (url: string) => Promise<void>; masterKey?: Buffer; pgDumpBin?: string } = {}): LocalProvisioningKit {
  const pool = new Pool({ connectionString: controlDbUrl, max: 4 });
  // Kits sharing a control database share its secrets (e.g. the installation's terminator login): pass the same key.
  const masterKey = opts.masterKey ?? randomBytes(32);
  const secrets = new LocalSecretStore(pool, masterKey);
  const templateDatabase = testDatabaseName('tenanttpl');
  const driver = new LocalProvisioningDriver({
    adminUrl: testDatabaseUrl(),
    templateDatabase,
    secretStore: secrets,
    secretPrefix: 'silo/tenants/',
    protectDatabases: [controlDbName],
    secretRecoveryWindowDays: 7,
    prepareTemplate: opts.prepareTemplate,
    pgDumpBin: opts.pgDumpBin,
  });
  const tenants = new Set<string>();
  return {
    pool, secrets, driver, masterKey, templateDatabase,
    track: (id) => tenants.add(id),
    cleanup: async () => {
      for (const id of tenants) {
        const name = tenantDbName(id);
        await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await adminQuery(`DROP ROLE IF EXISTS "${name}"`);
      }
      await adminQuery(`DROP DATABASE IF EXISTS "${templateDatabase}" WITH (FORCE)`);
      await driver.close();
      await pool.end();
    },
  };
}

/** A DriverContext whose step records live in memory (the job system's DB-backed one is tested separately). */
export function memoryDriverContext(tenantId: string = randomUUID(), tier = DEFAULT_TIERS.starter, failAfterStep?: string): DriverContext & { done: Map<string, unknown>; lines: string[] } {
  const done = new Map<string, unknown>();
  const lines: string[] = [];
  return {
    tenant: { id: tenantId, slug: `t-${tenantId.slice(0, 8)}`, tier, region: 'local' },
    done,
    lines,
    log: (l) => lines.push(l),
    step: async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      if (done.has(name)) return done.get(name) as T;
      const result = await fn();
      if (name === failAfterStep) throw new Error(`simulated crash after ${name}`);
      done.set(name, result);
      return result;
    },
  };
}
