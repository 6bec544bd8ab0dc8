import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { SchemaMirrorRepository } from '../migrations/schema-mirror.repository';
import { createTestDatabase, TestDatabase } from './support/test-db';

/** `silo migrate --tenant <slug>` after the slug was freed by an offboarding and taken again. */
describe('SchemaMirrorRepository.list with named slugs', () => {
  let db: TestDatabase;
  let pool: Pool;
  beforeAll(async () => {
    db = await createTestDatabase('mirror');
    pool = new Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  const insert = (slug: string, status: string, createdAgo: string) => {
    const id = randomUUID();
    return pool.query(
      `INSERT INTO tenants (id, slug, slug_source, name, status, tier, region, deleted_at, created_at)
       VALUES ($1, $2::text, 'admin', $2::text, $3::text, 'starter', 'local', CASE WHEN $3::text = 'deleted' THEN now() END, now() - $4::interval)`,
      [id, slug, status, createdAgo]).then(() => id);
  };

  it('returns a reused slug once: its live tenant, not the deleted one that had it before (or after)', async () => {
    await insert('reused', 'deleted', '2 days');
    const live = await insert('reused', 'active', '1 day');
    await insert('reused', 'deleted', '1 hour'); // an odd history: a newer deleted row must not win either
    const rows = await new SchemaMirrorRepository(pool).list({ slugs: ['reused'] });
    expect(rows.map((r) => [r.id, r.status])).toEqual([[live, 'active']]);
  });

  it('returns the most recently deleted tenant of a slug nobody holds now', async () => {
    await insert('departed', 'deleted', '3 days');
    const last = await insert('departed', 'deleted', '1 day');
    const rows = await new SchemaMirrorRepository(pool).list({ slugs: ['departed'] });
    expect(rows.map((r) => r.id)).toEqual([last]);
  });
});
