import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { ApiKey } from '../api-keys/api-key.entity';
import { WebhookEvent } from '../billing/webhook-event.entity';
import { Job } from '../jobs/job.entity';
import { Operator } from '../operators/operator.entity';
import { OperatorToken } from '../operators/operator-token.entity';
import { JobRun } from '../jobs/job-run.entity';
import { PeriodicTask } from '../jobs/periodic-task.entity';
import { ProvisioningStep } from '../jobs/provisioning-step.entity';
import { AuditEntry } from '../tenants/audit-entry.entity';
import { TenantConnection } from '../tenants/tenant-connection.entity';
import { TenantSchemaVersion } from '../tenants/tenant-schema-version.entity';
import { TenantStorage } from '../tenants/tenant-storage.entity';
import { Tenant } from '../tenants/tenant.entity';
import { InitialSchema1732300000000 } from './migrations/1732300000000-initial-schema';
import { TenantSchemaLedgerDigest1732460000000 } from './migrations/1732460000000-tenant-schema-ledger-digest';
import { TenantStorage1732550000000 } from './migrations/1732550000000-tenant-storage';
import { JobRuns1732640000000 } from './migrations/1732640000000-job-runs';
import { PeriodicTasks1732650000000 } from './migrations/1732650000000-periodic-tasks';
import { SuspensionAndFailureState1732660000000 } from './migrations/1732660000000-suspension-and-failure-state';
import { TenantSlugSource1732680000000 } from './migrations/1732680000000-tenant-slug-source';
import { WebhookRawBody1732690000000 } from './migrations/1732690000000-webhook-raw-body';
import { TenantPublishedVersion1732720000000 } from './migrations/1732720000000-tenant-published-version';
import { TenantSlugUnpaid1732710000000 } from './migrations/1732710000000-tenant-slug-unpaid';
import { WebhookEventSource1732700000000 } from './migrations/1732700000000-webhook-event-source';
import { ApiKeyScramVerifier1732730000000 } from './migrations/1732730000000-api-key-scram-verifier';
import { Operators1732740000000 } from './migrations/1732740000000-operators';
import { ConsoleSessions1732750000000 } from './migrations/1732750000000-console-sessions';
import { ConsoleSsoSessions1732760000000 } from './migrations/1732760000000-console-sso-sessions';

export const CONTROL_DB_ENTITIES = [Tenant, TenantConnection, AuditEntry, TenantSchemaVersion, TenantStorage, WebhookEvent, Job, JobRun, PeriodicTask, ProvisioningStep, ApiKey, Operator, OperatorToken];
export const CONTROL_DB_MIGRATIONS = [InitialSchema1732300000000, TenantSchemaLedgerDigest1732460000000, TenantStorage1732550000000, JobRuns1732640000000, PeriodicTasks1732650000000, SuspensionAndFailureState1732660000000, TenantSlugSource1732680000000, WebhookRawBody1732690000000, WebhookEventSource1732700000000, TenantSlugUnpaid1732710000000, TenantPublishedVersion1732720000000, ApiKeyScramVerifier1732730000000, Operators1732740000000, ConsoleSessions1732750000000, ConsoleSsoSessions1732760000000];

export function createControlDataSource(url: string, opts: { poolSize?: number; applicationName?: string } = {}): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities: CONTROL_DB_ENTITIES,
    migrations: CONTROL_DB_MIGRATIONS,
    migrationsTableName: 'control_migrations',
    synchronize: false,
    logging: false,
    extra: { max: opts.poolSize ?? 10, application_name: opts.applicationName ?? 'silo-control-plane', connectionTimeoutMillis: 5_000 },
  });
}

// Arbitrary constant: serialises migration runs from several replicas starting at once.
const MIGRATION_LOCK_KEY = 7_301_120_001;

/** Applies pending control-db migrations under an advisory lock. Returns the names applied. */
export async function migrateControlDb(ds: DataSource): Promise<string[]> {
  // The lock lives on its own connection so a pool of one can still run the migrations.
  const lock = new Client({ connectionString: (ds.options as { url: string }).url });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await ds.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await lock.end().catch(() => undefined);
  }
}
