import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger } from '../common/logger';
import { MemoryKvStore } from '../common/memory-kv-store';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { ReconcilerService } from '../control-plane/operations/reconciler.service';
import { TenantService } from '../control-plane/tenants/tenant.service';
import { KV_STORE } from '../control-plane/common/tokens';
import type { KvStore } from '../common/kv-store';
import { directoryKeys } from '../common/tenant-directory';
import { tenantDbName } from '../provisioning/local/pg-names';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { adminQuery } from './support/test-db';
import { call, createTenants, issueKey, startTestRuntime } from './support/runtime-fixtures';
import { silo } from './support/migration-fixtures';

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

  it('does not count an absent directory entry as drift (a cache miss: the runtime reads the control database)', async () => {
    const kv = t.cp.app.get(KV_STORE) as KvStore;
    await kv.del(directoryKeys.slug('kept'));
    expect((await reconciler.run({ apply: false })).drift).toEqual([]);
  });

  it('republishes an outdated directory entry without --apply (safe repair)', async () => {
    const kv = t.cp.app.get(KV_STORE) as KvStore;
    await t.cp.app.get(TenantService).publish({ id: (await t.sql<{ id: string }>(`SELECT id FROM tenants WHERE slug = 'kept'`))[0].id });
    const good = (await kv.get(directoryKeys.slug('kept'))) as string;
    await kv.set(directoryKeys.slug('kept'), JSON.stringify({ ...JSON.parse(good), database: 'someone_elses' }));
    const { drift } = await reconciler.run({ apply: false });
    expect(drift).toEqual([expect.objectContaining({ kind: 'stale_mapping', slug: 'kept', object: 'kept', repaired: true })]);
    expect(await kv.get(directoryKeys.slug('kept'))).toBe(good);
    expect(await kv.get(directoryKeys.slug('kept'))).not.toMatch(/password/i);
    expect((await reconciler.run({ apply: false })).drift).toEqual([]);
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

/**
 * The default setup (`npm start` without REDIS_URL): one in-process KvStore shared by the control
 * plane and the runtime, and no SILO_DIRECTORY_KEY (each process signs with a key of its own).
 * The runtime deletes a slug's cache entry whenever the control plane announces a change, so an
 * absent entry is the normal state, not drift.
 */
describe('reconciler in the default setup (in-process cache shared with the runtime)', () => {
  const unset = { REDIS_URL: undefined, SILO_DIRECTORY_KEY: undefined } as unknown as Record<string, string>;
  const lines: string[] = [];
  let kv: MemoryKvStore;
  let t: TestControlPlane;
  let rt: RunningTenantRuntime;
  let reconciler: ReconcilerService;
  const keys = new Map<string, string>();
  const readAll = async () => {
    for (const [slug, key] of keys) expect((await call(rt.url, '/v1/query', { host: `${slug}.localhost`, key, body: { sql: 'SELECT 1 AS one' } })).status).toBe(200);
    await new Promise((r) => setImmediate(r)); // invalidations are delivered on the next turn, like Redis pub/sub
  };

  beforeAll(async () => {
    kv = new MemoryKvStore();
    const logger = createLogger({ name: 'test-control-plane', level: 'warn', destination: new Writable({ write: (c, _e, cb) => { lines.push(c.toString()); cb(); } }) });
    t = await startTestControlPlane(unset, { kv, logger });
    reconciler = t.cp.app.get(ReconcilerService);
    rt = await startTestRuntime(t, unset, { kv });
    for (const s of await createTenants(t, [{ slug: 'alpha' }, { slug: 'beta' }, { slug: 'gamma' }])) keys.set(s.slug, (await issueKey(t, s)).key);
    await new Promise((r) => setImmediate(r));
  });
  afterAll(async () => {
    try {
      await rt?.close();
    } finally {
      await t?.close();
      await kv?.close();
    }
  });

  it('reports nothing on two passes over an unchanged, idle fleet (the runtime dropped every entry it was told changed)', async () => {
    const first = await reconciler.run({ apply: false });
    await new Promise((r) => setImmediate(r));
    const second = await reconciler.run({ apply: false });
    expect([first.drift.map((d) => d.kind), second.drift.map((d) => d.kind)]).toEqual([[], []]);
  });

  it('reports nothing on two passes over an unchanged fleet, with the runtime reading the directory before and in between', async () => {
    await readAll();
    // The runtime wrote its reads back (signed with its own key): entries to compare, not misses.
    for (const slug of keys.keys()) expect(JSON.parse((await kv.get(directoryKeys.slug(slug))) as string)).toMatchObject({ slug, status: 'active' });
    const first = await reconciler.run({ apply: false });
    await readAll();
    const second = await reconciler.run({ apply: false });
    expect(first.drift).toEqual([]);
    expect(second.drift).toEqual([]);
    expect(second.checked).toMatchObject({ tenants: 3, directory: true });
  });

  it('repairs an outdated directory entry once, names the tenant in its warning, and the next pass is clean', async () => {
    const [beta] = await t.sql<{ id: string }>(`SELECT id FROM tenants WHERE slug = 'beta'`);
    const real = JSON.parse((await kv.get(directoryKeys.slug('beta'))) ?? 'null') ?? { slug: 'beta', tenantId: beta.id };
    await kv.set(directoryKeys.slug('beta'), JSON.stringify({ ...real, status: 'suspended' }));
    lines.length = 0;
    const found = await reconciler.run({ apply: false });
    expect(found.drift).toEqual([expect.objectContaining({ kind: 'stale_mapping', tenantId: beta.id, slug: 'beta', object: 'beta', repaired: true })]);
    const warn = lines.map((l) => JSON.parse(l)).find((l) => l.event === 'reconcile.drift');
    expect(warn).toMatchObject({ count: 1, kinds: { stale_mapping: 1 }, tenants: ['beta'] });
    await readAll();
    expect((await reconciler.run({ apply: false })).drift).toEqual([]);
    expect((await reconciler.run({ apply: false })).drift).toEqual([]);
  });
  it('silo reconcile runs the same checks and says it cannot see the in-process directory cache', async () => {
    const env = {
      DATABASE_URL: t.config.DATABASE_URL, SILO_MASTER_KEY: t.config.SILO_MASTER_KEY as string,
      TENANT_DATABASE_URL: t.config.TENANT_DATABASE_URL as string, TENANT_TEMPLATE_DATABASE: t.config.TENANT_TEMPLATE_DATABASE as string,
    };
    const json = await silo(['reconcile', '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ drift: [], checked: { tenants: 3, directory: false } });
    expect(json.stderr).toMatch(/Directory cache not checked: REDIS_URL is unset/);
    const text = await silo(['reconcile'], env);
    expect(text.stdout).toMatch(/Checked 3 tenants, .* \(not the directory cache\)\.\nNo drift\./);
  });
});
