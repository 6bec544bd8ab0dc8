import { randomUUID } from 'node:crypto';
import { ReconcilerService } from '../control-plane/operations/reconciler.service';
import { KV_STORE } from '../control-plane/common/tokens';
import type { KvStore } from '../common/kv-store';
import { directoryKeys } from '../common/tenant-directory';
import { tenantDbName } from '../provisioning/local/pg-names';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { adminQuery } from './support/test-db';

describe('reconciler', () => {
  let t: TestControlPlane;
  let reconciler: ReconcilerService;
  const orphan = tenantDbName(randomUUID());
  const foreign = tenantDbName(randomUUID());

  beforeAll(async () => {
    t = await startTestControlPlane();
    reconciler = t.cp.app.get(ReconcilerService);
    await t.api('POST', '/v1/tenants', { name: 'Kept', slug: 'kept' });
    await t.drainJobs();
  });
  afterAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${orphan}" WITH (FORCE)`);
    await adminQuery(`DROP ROLE IF EXISTS "${orphan}"`);
    await adminQuery(`DROP DATABASE IF EXISTS "${foreign}" WITH (FORCE)`);
    await t.close();
  });

  it('reports no drift on a consistent fleet', async () => {
    const { drift, checked } = await reconciler.run({ apply: false });
    expect(drift).toEqual([]);
    expect(checked.tenants).toBe(1);
  });

  it('finds an orphan database created behind its back, and drops it only with apply', async () => {
    // As if our provisioning created it and the control database then lost its record (e.g. restored from backup).
    await adminQuery(`CREATE ROLE "${orphan}" LOGIN`);
    await adminQuery(`CREATE DATABASE "${orphan}" OWNER "${orphan}"`);
    const marker = `silo-instance:${t.db.name}`;
    await adminQuery(`COMMENT ON DATABASE "${orphan}" IS '${marker}'`);
    await adminQuery(`COMMENT ON ROLE "${orphan}" IS '${marker}'`);
    // Same shape, but another instance's: never touched.
    await adminQuery(`CREATE DATABASE "${foreign}"`);
    await adminQuery(`COMMENT ON DATABASE "${foreign}" IS 'silo-instance:someone-else'`);
    const dry = await reconciler.run({ apply: false });
    expect(dry.drift).toEqual([expect.objectContaining({ kind: 'orphan_database', object: orphan, destructive: true, repaired: false })]);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [orphan])).toHaveLength(1);

    const applied = await reconciler.run({ apply: true });
    expect(applied.drift[0]).toMatchObject({ kind: 'orphan_database', repaired: true });
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [orphan])).toHaveLength(0);
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [orphan])).toHaveLength(0);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [foreign])).toHaveLength(1);
  });

  it('republishes a missing directory mapping without --apply (safe repair)', async () => {
    const kv = t.cp.app.get(KV_STORE) as KvStore;
    await kv.del(directoryKeys.slug('kept'));
    const { drift } = await reconciler.run({ apply: false });
    expect(drift).toEqual([expect.objectContaining({ kind: 'missing_mapping', object: 'kept', repaired: true })]);
    expect(JSON.parse((await kv.get(directoryKeys.slug('kept'))) as string)).toMatchObject({ slug: 'kept', status: 'active' });
    expect(await kv.get(directoryKeys.slug('kept'))).not.toMatch(/password/i);
  });

  it('flags an active tenant whose database vanished and suspends it with apply', async () => {
    const [{ database }] = await t.sql<{ database: string }>(`SELECT database FROM tenant_connections`);
    await adminQuery(`DROP DATABASE "${database}" WITH (FORCE)`);
    const dry = await reconciler.run({ apply: false });
    expect(dry.drift).toEqual([expect.objectContaining({ kind: 'missing_database', object: database, repaired: false })]);
    await reconciler.run({ apply: true });
    expect((await t.api('GET', '/v1/tenants/kept')).body).toMatchObject({ status: 'suspended', suspension: { by: 'system', cause: 'database_missing', reason: expect.stringContaining('missing') } });
  });
});
