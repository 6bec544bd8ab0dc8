import { createHash } from 'node:crypto';
import { directorySignerFor } from '../common/directory-signer';
import { directoryKeys } from '../common/tenant-directory';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { call, createTenants, issueKey, SeededTenant, startTestRuntime, waitFor } from './support/runtime-fixtures';

/** Someone with write access to Redis but without SILO_DIRECTORY_KEY tries to mint keys and reroute tenants. */
describe('signed directory records in Redis', () => {
  let cp: TestControlPlane;
  let rt: RunningTenantRuntime;
  let acme: SeededTenant, globex: SeededTenant;
  let keyAcme: string;
  const q = (slug: string, key: string) => call(rt.url, `/tenants/${slug}/v1/query`, { key, body: { sql: 'SELECT current_database() AS d' } });

  beforeAll(async () => {
    cp = await startTestControlPlane();
    [acme, globex] = await createTenants(cp, [{ slug: 'acme' }, { slug: 'globex' }]);
    keyAcme = (await issueKey(cp, acme)).key;
    // Short negative/positive freshness so each forged write is read from Redis again.
    rt = await startTestRuntime(cp, { RUNTIME_DIRECTORY_TTL_MS: '1', RUNTIME_DEGRADED_TTL_MS: '1', RUNTIME_NEGATIVE_TTL_MS: '1' });
  });
  afterAll(async () => {
    await rt?.close();
    await cp?.close();
  });

  it('an API-key record written into Redis without the key mints nothing', async () => {
    const prefix = 'abcdef012345';
    const forgedKey = `silo_${prefix}_${'A'.repeat(43)}`;
    const record = { tenantId: acme.id, hash: createHash('sha256').update(forgedKey).digest('hex'), revoked: false, expiresAt: null };
    await cp.cp.kv.set(directoryKeys.apiKey(prefix), JSON.stringify(record), 300);
    expect((await q('acme', forgedKey)).status).toBe(401);
    await cp.cp.kv.set(directoryKeys.apiKey(prefix), JSON.stringify({ ...record, sig: 'x'.repeat(43) }), 300);
    expect((await q('acme', forgedKey)).status).toBe(401);
    expect((await q('acme', keyAcme)).status).toBe(200);
  });

  it('a forged directory entry pointing one tenant at another tenant\'s database does not route', async () => {
    expect((await q('acme', keyAcme)).body.rows).toEqual([{ d: acme.role }]);
    const genuine = JSON.parse((await cp.cp.kv.get(directoryKeys.slug('globex'))) ?? (await (async () => { await q('globex', keyAcme); return cp.cp.kv.get(directoryKeys.slug('globex')); })()) as string);
    const acmeEntry = JSON.parse((await cp.cp.kv.get(directoryKeys.slug('acme'))) as string);
    // acme's slug, acme's tenant id (so acme's key passes), globex's database and secret; with and without globex's signature.
    const forged = { ...acmeEntry, host: genuine.host, port: genuine.port, database: genuine.database, username: genuine.username, secretRef: genuine.secretRef, revision: '999:0' };
    for (const sig of [undefined, genuine.sig, acmeEntry.sig]) {
      await cp.cp.kv.set(directoryKeys.slug('acme'), JSON.stringify({ ...forged, sig }), 300);
      const r = await q('acme', keyAcme);
      expect(r.status).toBe(200);
      expect(r.body.rows).toEqual([{ d: acme.role }]);
    }
    expect(globex.role).not.toBe(acme.role);
  });

  it('what the runtime writes back to Redis is signed and still carries no password', async () => {
    await cp.cp.kv.del(directoryKeys.slug('acme'));
    expect((await q('acme', keyAcme)).status).toBe(200);
    let raw: string | null = null;
    for (let i = 0; i < 40 && !raw; i++) {
      raw = await cp.cp.kv.get(directoryKeys.slug('acme'));
      if (!raw) await new Promise((r) => setTimeout(r, 25));
    }
    expect(JSON.parse(raw as string)).toMatchObject({ slug: 'acme', database: acme.role, sig: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(raw).not.toMatch(/password/i);
  });

  // The runtime finds the key's tenant by id (id → slug record in Redis): a stale or planted record routes nowhere else.
  it('serves the key\'s own tenant and refuses the other one, whatever Redis says acme\'s id maps to', async () => {
    expect((await q('acme', keyAcme)).body.rows).toEqual([{ d: acme.role }]);
    const redisKey = `silo:tenant:id:${acme.id}`;
    const written = await waitFor(() => cp.cp.kv.get(redisKey), (v) => v !== null, 2_000, 20); // written back after the database hit
    expect(JSON.parse(written as string)).toMatchObject({ slug: 'acme', sig: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    // Correctly signed (as a rename would leave it) and unsigned: acme's id "is" globex.
    const signer = directorySignerFor(cp.config.SILO_DIRECTORY_KEY);
    for (const record of [{ slug: 'globex', sig: signer.sign('tenant-id', acme.id, ['globex']) }, { slug: 'globex' }]) {
      await cp.cp.kv.set(redisKey, JSON.stringify(record), 300);
      const other = await q('globex', keyAcme);
      expect({ status: other.status, body: JSON.stringify(other.body) }).toMatchObject({ status: 401, body: expect.stringContaining('"code":"API_KEY_INVALID"') });
      await cp.cp.kv.set(redisKey, JSON.stringify(record), 300);
      const own = await q('acme', keyAcme);
      expect(own.status).toBe(200);
      expect(own.body.rows).toEqual([{ d: acme.role }]);
    }
    expect(globex.role).not.toBe(acme.role);
  });
});
