import { randomUUID } from 'node:crypto';
import { Client, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { createControlDataSource } from '../control-plane/db/data-source';
import { pipelinedTransaction, write } from '../control-plane/db/pipelined-transaction';
import { SlugSource, TenantStatus } from '../control-plane/tenants/tenant-status';
import { Tenant } from '../control-plane/tenants/tenant.entity';
import { TenantRepository } from '../control-plane/tenants/tenant.repository';
import { createTestDatabase, TestDatabase } from './support/test-db';

/**
 * The webhook path's transaction (control-plane/db/pipelined-transaction.ts): statements share round
 * trips, yet it commits all or nothing, keeps statement order, and hands back a clean connection.
 */
describe('pipelinedTransaction on real PostgreSQL', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let repo: TenantRepository;
  beforeAll(async () => {
    db = await createTestDatabase('pipelined');
    ds = createControlDataSource(db.url, { poolSize: 1 }); // one connection: every test reuses the one the last released
    await ds.initialize();
    repo = new TenantRepository(ds);
    await ds.query('CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)');
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });
  beforeEach(() => ds.query('TRUNCATE notes'));

  const notes = async () => (await ds.query('SELECT id, body FROM notes ORDER BY id')) as Array<{ id: number; body: string }>;

  it('commits deferred writes, direct statements and TypeORM calls together', async () => {
    await pipelinedTransaction(ds, async (tx) => {
      tx.defer('INSERT INTO notes VALUES (1, $1)', ['deferred']);
      await tx.query('INSERT INTO notes VALUES (2, $1)', ['direct']);
      await tx.manager.query('INSERT INTO notes VALUES (3, $1)', ['typeorm']);
      await write(tx.manager, 'INSERT INTO notes VALUES (4, $1)', ['write()']);
    });
    expect(await notes()).toEqual([{ id: 1, body: 'deferred' }, { id: 2, body: 'direct' }, { id: 3, body: 'typeorm' }, { id: 4, body: 'write()' }]);
  });

  it('keeps nothing when a deferred write fails, even one nobody awaited, and reports that failure', async () => {
    await expect(pipelinedTransaction(ds, async (tx) => {
      await tx.query('INSERT INTO notes VALUES (1, $1)', ['kept?']);
      tx.defer('INSERT INTO notes VALUES (2, NULL)'); // NOT NULL violation, discovered at commit
    })).rejects.toMatchObject({ code: '23502' });
    expect(await notes()).toEqual([]);
  });

  it('keeps nothing when the callback throws, and the connection it hands back is usable and outside any transaction', async () => {
    await expect(pipelinedTransaction(ds, async (tx) => {
      tx.defer('INSERT INTO notes VALUES (1, $1)', ['lost']);
      throw new Error('changed my mind');
    })).rejects.toThrow('changed my mind');
    expect(await notes()).toEqual([]);
    // The pool's only connection: not in pipeline mode, not in a transaction block.
    const pool = (ds.driver as unknown as { master: Pool }).master;
    const client = await pool.connect();
    try {
      expect((client as unknown as { pipeline: boolean }).pipeline).toBe(false);
      expect((await client.query('SELECT now() = statement_timestamp() AS outside')).rows[0].outside).toBe(true);
    } finally {
      client.release();
    }
  });

  it('runs a statement sent behind a lock-taking one after the lock is held, with a snapshot that sees what the lock holder committed', async () => {
    const holder = new Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(42)');
      await holder.query(`INSERT INTO notes VALUES (7, 'committed while we waited')`);
      const seen = pipelinedTransaction(ds, async (tx) => {
        const lock = tx.query('SELECT pg_advisory_xact_lock(42)');
        const read = tx.query<{ body: string }>('SELECT body FROM notes WHERE id = 7'); // sent at once, runs after the lock
        await lock;
        return read;
      });
      await new Promise((r) => setTimeout(r, 300));
      await holder.query('COMMIT');
      expect(await seen).toEqual([{ body: 'committed while we waited' }]);
    } finally {
      await holder.end();
    }
  });

  it('holds a deferred write until the next statement is sent, and sends it first', async () => {
    const observer = new Client({ connectionString: db.url });
    await observer.connect();
    const lockHeld = async () => (await observer.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4711`)).rows[0].n > 0;
    try {
      const seen: boolean[] = [];
      await pipelinedTransaction(ds, async (tx) => {
        tx.defer('SELECT pg_advisory_xact_lock(4711)');
        await new Promise((r) => setTimeout(r, 50));
        seen.push(await lockHeld()); // not on the wire yet
        await tx.query('SELECT 1');
        seen.push(await lockHeld()); // went out ahead of it
      });
      expect(seen).toEqual([false, true]);
    } finally {
      await observer.end();
    }
  });

  it('never sends the deferred writes still held when the callback throws', async () => {
    await ds.query('CREATE SEQUENCE IF NOT EXISTS held_seq');
    const before = Number((await ds.query(`SELECT last_value FROM held_seq`))[0].last_value);
    await expect(pipelinedTransaction(ds, async (tx) => {
      await tx.query('SELECT 1');
      tx.defer(`SELECT nextval('held_seq')`); // a sequence is not rolled back: sending it would show
      throw new Error('changed my mind');
    })).rejects.toThrow('changed my mind');
    const [row] = await ds.query(`SELECT last_value, is_called FROM held_seq`);
    expect([Number(row.last_value), row.is_called]).toEqual([before, false]);
  });

  it('does not let a TypeORM save inside it commit on its own', async () => {
    const id = randomUUID();
    await expect(pipelinedTransaction(ds, async (tx) => {
      await tx.manager.getRepository(Tenant).save(newTenant(id));
      throw new Error('roll back');
    })).rejects.toThrow('roll back');
    expect(await ds.query('SELECT 1 FROM tenants WHERE id = $1', [id])).toEqual([]);
  });

  it('saves a tenant by writing only the columns changed since it was loaded, so a concurrent change to another column survives', async () => {
    const id = randomUUID();
    await repo.transaction(async (m) => repo.insert(newTenant(id), m));
    const loaded = (await repo.findById(id)) as Tenant;
    await ds.query(`UPDATE tenants SET name = 'renamed elsewhere' WHERE id = $1`, [id]);
    loaded.billingStatus = 'past_due';
    loaded.lastEventCreated = 1_700_000_000;
    await pipelinedTransaction(ds, async (tx) => {
      await repo.save(loaded, tx.manager);
    });
    const [row] = await ds.query('SELECT name, billing_status, last_event_created, version FROM tenants WHERE id = $1', [id]);
    expect(row).toEqual({ name: 'renamed elsewhere', billing_status: 'past_due', last_event_created: '1700000000', version: 2 });
    expect(loaded.version).toBe(2); // the deferred UPDATE's RETURNING reached the entity
    // Nothing changed since: no statement, no version bump.
    await repo.transaction((m) => repo.save(loaded, m));
    expect((await ds.query('SELECT version FROM tenants WHERE id = $1', [id]))[0].version).toBe(2);
  });
});

function newTenant(id: string): Tenant {
  return Object.assign(new Tenant(), {
    id, slug: `t-${id.slice(0, 8)}`, slugSource: SlugSource.Admin, name: 'Pipelined', status: TenantStatus.Pending, tier: 'starter', region: 'local',
    stripeCustomerId: null, stripeSubscriptionId: null, billingStatus: null, pastDueSince: null, suspendReason: null, suspendedBy: null, suspendCause: null,
    offboardAt: null, lastEventCreated: null, failureReason: null, failedDuring: null, customDomain: null, deletedAt: null,
  });
}
