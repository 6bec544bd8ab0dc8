import { DataSource } from 'typeorm';
import { CONTROL_DB_ENTITIES, CONTROL_DB_MIGRATIONS } from '../control-plane/db/data-source';
import { Operators1732740000000 } from '../control-plane/db/migrations/1732740000000-operators';
import { createEmptyDatabase, TestDatabase } from './support/test-db';

/** Upgrading to operators (issue #18): existing audit rows get an actor from their cause; the new checks hold. */
describe('control-db migration: operators and audit actors', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createEmptyDatabase('opmig');
    ds = new DataSource({ type: 'postgres', url: db.url, entities: CONTROL_DB_ENTITIES, migrations: CONTROL_DB_MIGRATIONS.slice(0, CONTROL_DB_MIGRATIONS.indexOf(Operators1732740000000)), migrationsTableName: 'control_migrations', logging: false });
    await ds.initialize();
    await ds.runMigrations();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('attributes rows written before it (ADMIN_TOKEN was the only admin credential) and refuses an operator row without an operator', async () => {
    for (const [action, cause] of [['a', 'admin'], ['b', 'stripe_event'], ['c', 'system']]) {
      await ds.query(`INSERT INTO audit_log (tenant_id, action, cause_type, cause_id) VALUES (NULL, $1, $2, 'x')`, [action, cause]);
    }
    ds.setOptions({ migrations: CONTROL_DB_MIGRATIONS });
    await ds.destroy();
    await ds.initialize();
    expect((await ds.query(`SELECT 1 FROM information_schema.tables WHERE table_name = 'operators'`)).length).toBe(0);
    // It and the migrations after it (console_sessions refers to operators).
    expect((await ds.runMigrations()).map((m) => m.name)).toEqual(CONTROL_DB_MIGRATIONS.slice(CONTROL_DB_MIGRATIONS.indexOf(Operators1732740000000)).map((m) => m.name));

    const rows: Array<{ action: string; actor_kind: string }> = await ds.query(`SELECT action, actor_kind FROM audit_log ORDER BY action`);
    expect(rows.map((r) => [r.action, r.actor_kind])).toEqual([['a', 'break-glass'], ['b', 'billing'], ['c', 'system']]);
    await expect(ds.query(`INSERT INTO audit_log (tenant_id, action, cause_type, actor_kind) VALUES (NULL, 'd', 'admin', 'operator')`)).rejects.toThrow(/audit_log_actor_operator/);
    await expect(ds.query(`INSERT INTO audit_log (tenant_id, action, cause_type, actor_kind) VALUES (NULL, 'd', 'admin', 'someone')`)).rejects.toThrow(/audit_log_actor_kind/);
    await ds.query(`INSERT INTO operators (id, email, name, role) VALUES (gen_random_uuid(), 'A@example.com', 'A', 'admin')`);
    await expect(ds.query(`INSERT INTO operators (id, email, name, role) VALUES (gen_random_uuid(), 'a@EXAMPLE.com', 'B', 'viewer')`)).rejects.toThrow(/operators_email_key/);

    // Undo back to before it (the later migrations first).
    for (let i = CONTROL_DB_MIGRATIONS.indexOf(Operators1732740000000); i < CONTROL_DB_MIGRATIONS.length; i++) await ds.undoLastMigration();
    expect((await ds.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'audit_log' AND column_name LIKE 'actor%'`)).length).toBe(0);
  });
});
