import { DataSource } from 'typeorm';
import { CONTROL_DB_ENTITIES, createControlDataSource } from '../control-plane/db/data-source';
import { createTestDatabase, TestDatabase } from './support/test-db';

/** Every TypeORM entity maps exactly the columns the migrations created (issue #16: an entity lacked one). */
describe('control database: entities match the migrated schema', () => {
  let db: TestDatabase;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDatabase('schema');
    ds = createControlDataSource(db.url, { poolSize: 1 });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it('has, for each entity, the same column names as its table', async () => {
    const mismatches: Record<string, { onlyInTable: string[]; onlyInEntity: string[] }> = {};
    for (const entity of CONTROL_DB_ENTITIES) {
      const meta = ds.getMetadata(entity);
      const mapped = new Set(meta.columns.map((c) => c.databaseName));
      const rows: Array<{ column_name: string }> = await ds.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`, [meta.tableName]);
      expect(rows.length).toBeGreaterThan(0); // the table exists
      const inTable = new Set(rows.map((r) => r.column_name));
      const onlyInTable = [...inTable].filter((c) => !mapped.has(c)).sort();
      const onlyInEntity = [...mapped].filter((c) => !inTable.has(c)).sort();
      if (onlyInTable.length || onlyInEntity.length) mismatches[meta.tableName] = { onlyInTable, onlyInEntity };
    }
    expect(mismatches).toEqual({});
  });
});
