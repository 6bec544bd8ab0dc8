import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { CONTROL_DB_ENTITIES, CONTROL_DB_MIGRATIONS } from '../control-plane/db/data-source';
import { SuspensionAndFailureState1732660000000 } from '../control-plane/db/migrations/1732660000000-suspension-and-failure-state';
import { createEmptyDatabase, TestDatabase } from './support/test-db';

/** Control-database migrations that convert existing data: what an installation upgrading from the previous release gets. */
describe('control-db migration: who suspended, what failed', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createEmptyDatabase('cpmig');
    // The schema as it was just before this migration (later ones, e.g. audit_log's actor columns, come after it).
    const before = CONTROL_DB_MIGRATIONS.slice(0, CONTROL_DB_MIGRATIONS.indexOf(SuspensionAndFailureState1732660000000));
    ds = new DataSource({ type: 'postgres', url: db.url, entities: CONTROL_DB_ENTITIES, migrations: before, migrationsTableName: 'control_migrations', logging: false });
    await ds.initialize();
    await ds.runMigrations();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('classifies existing suspensions by the audit log\'s cause, not the reason text, and failures by operation', async () => {
    const rows: Array<[string, string, string | null, string | null, { type: string; id: string } | null]> = [
      // slug, status, suspend_reason, failure_reason, cause of the last suspension
      ['admin-fraud', 'suspended', 'billing: fraud', null, { type: 'admin', id: 'admin-api' }],
      ['paused', 'suspended', 'billing: subscription paused', null, { type: 'stripe_event', id: 'evt_1' }],
      ['grace', 'suspended', 'payment past_due', null, { type: 'system', id: 'grace-period' }],
      ['unpaid-old', 'suspended', 'billing: payment unpaid', null, null],
      ['vanished', 'suspended', null, 'reconciler: database t_x is missing', { type: 'system', id: 'reconciler' }],
      ['offboard-failed', 'failed', null, 'offboarding: pg_dump failed', null],
      ['build-failed', 'failed', null, 'template does not exist', null],
      ['fine', 'active', null, null, null],
    ];
    const ids = new Map<string, string>();
    for (const [slug, status, suspendReason, failureReason, cause] of rows) {
      const id = randomUUID();
      ids.set(slug, id);
      await ds.query(`INSERT INTO tenants (id, slug, name, status, tier, region, suspend_reason, failure_reason) VALUES ($1, $2, $3, $4, 'starter', 'local', $5, $6)`, [id, slug, slug, status, suspendReason, failureReason]);
      if (cause) await ds.query(`INSERT INTO audit_log (tenant_id, action, from_status, to_status, cause_type, cause_id) VALUES ($1, 'status_changed', 'active', 'suspended', $2, $3)`, [id, cause.type, cause.id]);
    }
    ds.setOptions({ migrations: CONTROL_DB_MIGRATIONS });
    await ds.destroy();
    await ds.initialize();
    expect((await ds.runMigrations()).map((m) => m.name)).toEqual(CONTROL_DB_MIGRATIONS.slice(CONTROL_DB_MIGRATIONS.indexOf(SuspensionAndFailureState1732660000000)).map((m) => m.name));

    const got = await ds.query(`SELECT slug, suspended_by, suspend_cause, failed_during FROM tenants ORDER BY slug`);
    expect(Object.fromEntries(got.map((r: Record<string, string | null>) => [r.slug, [r.suspended_by, r.suspend_cause, r.failed_during]]))).toEqual({
      'admin-fraud': ['admin', 'admin', null],
      paused: ['billing', 'subscription_paused', null],
      grace: ['billing', 'payment_past_due', null],
      'unpaid-old': ['billing', 'payment_unpaid', null],
      vanished: ['system', 'database_missing', null],
      'offboard-failed': [null, null, 'offboarding'],
      'build-failed': [null, null, 'provisioning'],
      fine: [null, null, null],
    });
  });
});
